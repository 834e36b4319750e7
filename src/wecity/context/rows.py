"""Entity rows: read by id (one, or many in a few statements), and the column values written for an
entity (its types, attributes, scope and the `location` bounding box with its grid cell)."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.attributes import location_bbox
from wecity.context.bulk import driver, loads, run, utc
from wecity.context.entity import Entity
from wecity.context.env import Stored
from wecity.context.errors import already_exists, resource_not_found
from wecity.context.models import entities as t
from wecity.context.models import geo_cell
from wecity.context.transient import earliest_expiry, is_expired, live
from wecity.core.errors import AlreadyExists, NotFound

COLUMNS = (t.c.pk, t.c.entity_id, t.c.type, t.c.extra_types, t.c.attrs, t.c.created_at, t.c.modified_at, t.c.scope,
           t.c.expires_at, t.c.attrs_expire_at)

# Built once: constructing Core statements costs more than running them on the hot paths.
GET = sa.select(*COLUMNS).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.entity_id == sa.bindparam("b_id"))
_ROW_COLUMNS = ("geo_cell", "geo_large", "type", "extra_types", "multi_typed", "attrs", "scope", "min_lon", "min_lat", "max_lon", "max_lat", "modified_at",
                "expires_at", "attrs_expire_at")
SAVE = t.update().where(t.c.pk == sa.bindparam("b_pk")).values({c: sa.bindparam(c) for c in _ROW_COLUMNS})

_RAW_COLUMNS = "pk, entity_id, type, extra_types, attrs, created_at, modified_at, scope, expires_at, attrs_expire_at"
_RAW_GET = f"SELECT {_RAW_COLUMNS} FROM ngsild_entities WHERE tenant = ? AND entity_id = ?"


def not_found(entity_id: str) -> NotFound:
    return resource_not_found(f"entity {entity_id} not found", f"实体 {entity_id} 不存在")


def entity_exists(entity_id: str) -> AlreadyExists:
    return already_exists(f"entity {entity_id} already exists", f"实体 {entity_id} 已存在")


def stored(row: Any) -> Stored:
    """A row read through SQLAlchemy Core."""
    types = [row.type] + list(row.extra_types or [])
    return Stored(row.pk, row.entity_id, types, row.attrs, row.created_at, row.modified_at, row.scope,
                  row.expires_at, row.attrs_expire_at)


def _stored_raw(row: tuple[Any, ...], *, attrs: bool = True) -> Stored:
    """A row read through the driver (SQLite): JSON and timestamps decoded as the column types would."""
    pk, entity_id, kind, extra, document, created, modified, scope, expires, prune_at = row
    types = [kind, *(loads(extra) or ())] if extra is not None else [kind]
    return Stored(pk, entity_id, types, loads(document) if attrs else {}, utc(created), utc(modified),  # type: ignore[arg-type]
                  loads(scope) if scope is not None else None, utc(expires), utc(prune_at))


def get(conn: Connection, tenant: str, entity_id: str, now: datetime | None = None, *,
        lock: bool = False) -> Stored | None:
    """The entity as a reader at `now` (default: the wall clock) sees it; None when absent or expired."""
    return live(get_row(conn, tenant, entity_id, lock=lock), now)


# Two-key advisory locks of entity writes on PostgreSQL: this namespace, and a bucket of the entity's id.
LOCK_NAMESPACE = 0x4E474C44  # "NGLD"
# Buckets, not one lock per id: advisory locks live in the server's shared lock table (about 6,400 entries at
# the default settings), and a batch of 10,000 entities would take them all. Two entities sharing a bucket
# are written one after the other, nothing worse.
LOCK_BUCKETS = 256


def lock_entities(conn: Connection, entities: Iterable[tuple[str, str]]) -> None:
    """Before a write reads entities to change them: on PostgreSQL, hold the transaction locks of their
    (tenant, id)s, taken in one order, so that two updates of one entity run one after the other instead of
    both merging into the same old attributes (the second would drop the first's change), and two creations
    of one id are an AlreadyExists, not a unique-constraint failure. A lock of the id, not the row: it holds
    for an entity not yet created too. A transaction that writes entities in several statements takes all
    of their locks first (`iot.service.ingest`, `cases.ngsild`), so that two of them cannot each wait for the
    other. SQLite has one writer: nothing to do."""
    if conn.dialect.name != "postgresql":
        return
    buckets = sorted({zlib.crc32(f"{tenant}\x1f{entity_id}".encode()) % LOCK_BUCKETS for tenant, entity_id in entities})
    if buckets:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:namespace, b) FROM unnest(CAST(:buckets AS int[])) AS b"),
                     {"namespace": LOCK_NAMESPACE, "buckets": buckets})


def lock_ids(conn: Connection, tenant: str, ids: Iterable[str]) -> None:
    """`lock_entities` of these ids in one tenant."""
    lock_entities(conn, ((tenant, entity_id) for entity_id in ids))


def get_row(conn: Connection, tenant: str, entity_id: str, *, lock: bool = False) -> Stored | None:
    """The entity's row as stored, expired or not; with `lock`, under `lock_ids` (a write about to change it)."""
    if lock:
        lock_ids(conn, tenant, [entity_id])
    raw = driver(conn)
    if raw is not None:
        found = run(raw, _RAW_GET, (tenant, entity_id)).fetchone()
        return _stored_raw(found) if found else None
    row = conn.execute(GET, {"b_tenant": tenant, "b_id": entity_id}).first()
    return stored(row) if row else None


def require(conn: Connection, tenant: str, entity_id: str, selector: list[str] | None = None,
            now: datetime | None = None, *, lock: bool = False) -> Stored:
    """The stored entity; NotFound when absent, or not of one of the `selector` types when given."""
    found = get(conn, tenant, entity_id, now, lock=lock)
    if found is None or (selector and not set(selector).intersection(found.types)):
        raise not_found(entity_id)
    return found


def existing(conn: Connection, tenant: str, ids: list[str], *, attrs: bool = True, now: datetime | None = None,
             expired: list[int] | None = None, lock: bool = False) -> dict[str, Stored]:
    """The live entities among `ids` (as a reader at `now` sees them), by id, in a few statements; without
    `attrs`, their attributes are left empty (not decoded). The rows of expired ones go to `expired`. With
    `lock`, under `lock_ids` (a batch about to write them)."""
    if lock:
        lock_ids(conn, tenant, ids)
    found: dict[str, Stored] = {}
    stale: list[Stored] = []
    raw = driver(conn)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if raw is not None:
            sql = f"SELECT {_RAW_COLUMNS} FROM ngsild_entities WHERE tenant = ? AND entity_id IN ({', '.join('?' * len(chunk))})"
            for values in run(raw, sql, (tenant, *chunk)):
                entity = _stored_raw(values, attrs=attrs)
                found[entity.id] = entity
            continue
        for row in conn.execute(sa.select(*COLUMNS).where(t.c.tenant == tenant, t.c.entity_id.in_(chunk))):
            found[row.entity_id] = stored(row)
    for entity_id, entity in list(found.items()):
        if entity.expires_at is None and entity.prune_at is None:
            continue
        if is_expired(entity, now):
            stale.append(found.pop(entity_id))
        elif attrs:
            live(entity, now)
    if expired is not None:
        expired.extend(s.pk for s in stale)
    return found


def entities_by_id(conn: Connection, tenant: str, ids: list[str], now: datetime | None = None) -> dict[str, Stored]:
    """The live entities with these ids, by id (a few statements for many ids)."""
    return existing(conn, tenant, ids, now=now)


def row_values(entity: Entity | Stored, attrs: dict[str, Any]) -> dict[str, Any]:
    """The columns of an entity's row besides its id, tenant and times."""
    min_lon, min_lat, max_lon, max_lat = location_bbox(attrs)
    cell = large = None
    if min_lon is not None and min_lat is not None and max_lon is not None and max_lat is not None:
        cell = geo_cell(min_lon, min_lat)
        if geo_cell(max_lon, max_lat) != cell:
            cell, large = None, True
    return dict(expires_at=entity.expires_at, attrs_expire_at=earliest_expiry(attrs),
                geo_cell=cell, geo_large=bool(large), type=entity.types[0], extra_types=entity.types[1:] or None, multi_typed=len(entity.types) > 1,
                attrs=attrs, scope=entity.scope,
                min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat)
