"""Snapshots (ETSI GS CIM 009 clause 5.16): the entities some queries match, copied at one time into
rows of their own, so that queries naming the snapshot (NGSILD-Snapshot header) keep answering with
them whatever happens to the live entities. The copy is made in the request that creates the snapshot
(its status is "success" once the 201 is sent), unless context sources take part in its queries: then the
snapshot is "preparing" until they have answered (wecity.context.routes_snapshots)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.env import Stored
from wecity.context.errors import resource_not_found, too_many_results
from wecity.context.models import snapshot_entities as se
from wecity.context.models import snapshots as s
from wecity.context.rows import stored
from wecity.context.search import Page, Query, query, select_matching
from wecity.core.errors import NotFound, ValidationFailed

PREFIX = "urn:ngsi-ld:Snapshot:"
DEFAULT_PRIORITY = 5
MAX_ENTITIES = 100_000  # entities one snapshot query may copy: a query that matches more is refused, not cut
MAX_QUERIES = 10  # snapshotQueries of one snapshot
# A fill runs in the process that answered the create, after the answer; one still "preparing" this long
# after (context sources answer or time out within seconds) was lost with that process.
ABANDONED = timedelta(minutes=10)
_COPIED = ("entity_id", "type", "extra_types", "scope", "attrs", "created_at", "modified_at", "expires_at",
           "attrs_expire_at")
_READ = (se.c.pk, se.c.entity_id, se.c.type, se.c.extra_types, se.c.attrs, se.c.created_at, se.c.modified_at,
         se.c.scope, se.c.expires_at, se.c.attrs_expire_at)


@dataclass
class Snapshot:
    pk: int
    snapshot_id: str
    status: str
    priority: int
    body: dict[str, Any]
    details: list[dict[str, Any]]
    created_at: datetime
    last_used_at: datetime


def not_found(snapshot_id: str) -> NotFound:
    return resource_not_found(f"snapshot {snapshot_id} not found", f"快照 {snapshot_id} 不存在")


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(row.pk, row.snapshot_id, row.status, row.priority, dict(row.body), list(row.details),
                    row.created_at, row.last_used_at)


def get(conn: Connection, tenant: str, snapshot_id: str) -> Snapshot | None:
    row = conn.execute(sa.select(s).where(s.c.tenant == tenant, s.c.snapshot_id == snapshot_id)).first()
    return _snapshot(row) if row else None


def require(conn: Connection, tenant: str, snapshot_id: str) -> Snapshot:
    found = get(conn, tenant, snapshot_id)
    if found is None:
        raise not_found(snapshot_id)
    return found


def all_of(conn: Connection, tenant: str) -> list[Snapshot]:
    return [_snapshot(r) for r in conn.execute(sa.select(s).where(s.c.tenant == tenant).order_by(s.c.pk))]


def _insert(conn: Connection, tenant: str, body: dict[str, Any], priority: int, now: datetime) -> Snapshot:
    snapshot_id = PREFIX + uuid.uuid4().hex
    pk = conn.execute(s.insert().values(tenant=tenant, snapshot_id=snapshot_id, status="preparing", priority=priority,
                                        body=body, details=[], created_at=now, last_used_at=now)).inserted_primary_key[0]  # type: ignore[index]
    return Snapshot(int(pk), snapshot_id, "preparing", priority, body, [], now, now)


def _finish(conn: Connection, snap: Snapshot, details: list[dict[str, Any]]) -> Snapshot:
    snap.status = "success" if all(d["resultStatus"] == "success" for d in details) else "failed"
    snap.details = details
    conn.execute(s.update().where(s.c.pk == snap.pk).values(status=snap.status, details=details))
    return snap


def create(conn: Connection, tenant: str, body: dict[str, Any], specs: list[Query], priority: int,
           now: datetime) -> Snapshot:
    """A snapshot of what `specs` (the snapshotQueries) match now, copied in this transaction."""
    snap = _insert(conn, tenant, body, priority, now)
    found = [query(conn, tenant, spec, limit=MAX_ENTITIES + 1, offset=0, count=False, now=now)[0] for spec in specs]
    if any(len(entities) > MAX_ENTITIES for entities in found):
        raise too_large()
    return fill(conn, snap, found)


def too_large() -> ValidationFailed:
    return too_many_results(f"a snapshot query matches more than {MAX_ENTITIES} entities: narrow it",
                            f"快照查询匹配的实体超过 {MAX_ENTITIES} 个：请缩小查询范围")


def begin(conn: Connection, tenant: str, body: dict[str, Any], priority: int, now: datetime) -> Snapshot:
    """A snapshot whose entities come later (`fill`, `failed`): its status is "preparing" meanwhile."""
    return _insert(conn, tenant, body, priority, now)


def fill(conn: Connection, snap: Snapshot, found: list[list[Stored]]) -> Snapshot:
    """Copy what each of the snapshotQueries found (one list per query), each entity once."""
    copied: set[str] = set()
    details = []
    for entities in found:
        if len(entities) > MAX_ENTITIES:  # the sources held more than a snapshot keeps: none of it is kept
            details.append({"resultStatus": "failed", "entityCount": 0})
            continue
        fresh = [e for e in entities if e.id not in copied]
        copied.update(e.id for e in fresh)
        if fresh:
            conn.execute(se.insert(), [_copy(snap.pk, e) for e in fresh])
        details.append({"resultStatus": "success", "entityCount": len(entities)})
    return _finish(conn, snap, details)


def failed(conn: Connection, snap: Snapshot) -> Snapshot:
    return _finish(conn, snap, [{"resultStatus": "failed", "entityCount": 0}])


def fail_abandoned(conn: Connection, now: datetime) -> int:
    """Snapshots whose fill was lost (its process stopped before it finished): "failed", so that a client
    waiting for them is told, instead of "preparing" for ever. How many."""
    rows = conn.execute(sa.select(s).where(s.c.status == "preparing", s.c.created_at < now - ABANDONED)).all()
    for row in rows:
        failed(conn, _snapshot(row))
    return len(rows)


def _copy(snapshot_pk: int, e: Stored) -> dict[str, Any]:
    return dict(snapshot_pk=snapshot_pk, entity_id=e.id, type=e.types[0], extra_types=e.types[1:] or None,
                scope=e.scope, attrs=e.attrs, created_at=e.created_at, modified_at=e.modified_at,
                expires_at=e.expires_at, attrs_expire_at=e.prune_at)


def clone(conn: Connection, tenant: str, original: Snapshot, priority: int, now: datetime) -> Snapshot:
    """A new snapshot holding the same frozen entities as `original` (which may go without it)."""
    snap = _insert(conn, tenant, original.body, priority, now)
    columns = [getattr(se.c, c) for c in _COPIED]
    conn.execute(se.insert().from_select(["snapshot_pk", *_COPIED], sa.select(sa.literal(snap.pk), *columns)
                                         .where(se.c.snapshot_pk == original.pk)))
    return _finish(conn, snap, original.details)


def set_priority(conn: Connection, snap: Snapshot, priority: int) -> None:
    snap.priority = priority
    conn.execute(s.update().where(s.c.pk == snap.pk).values(priority=priority))


def delete(conn: Connection, snap: Snapshot) -> None:
    conn.execute(se.delete().where(se.c.snapshot_pk == snap.pk))
    conn.execute(s.delete().where(s.c.pk == snap.pk))


def _used(conn: Connection, tenant: str, snapshot_id: str, now: datetime) -> Snapshot:
    snap = require(conn, tenant, snapshot_id)
    conn.execute(s.update().where(s.c.pk == snap.pk).values(last_used_at=now))
    return snap


def query_page(conn: Connection, tenant: str, snapshot_id: str, spec: Query, *, limit: int, offset: int,
               count: bool, now: datetime) -> Page:
    """A query answered from a snapshot's frozen entities (NotFound when there is no such snapshot)."""
    snap = _used(conn, tenant, snapshot_id, now)
    stmt = sa.select(*_READ).where(se.c.snapshot_pk == snap.pk)
    if spec.ids is not None:
        stmt = stmt.where(se.c.entity_id.in_(spec.ids))
    rows = list(conn.execute(stmt.order_by(se.c.pk)))
    if spec.types is not None:
        wanted = set(spec.types)
        rows = [r for r in rows if r.type in wanted or wanted.intersection(r.extra_types or ())]
    matched = select_matching(rows, spec, now)
    if spec.order is not None:
        matched = spec.order.sort(matched)
    return Page(matched[offset:offset + limit], len(matched) if count else None, limit > 0 and len(matched) > offset + limit)


def entity(conn: Connection, tenant: str, snapshot_id: str, entity_id: str, now: datetime) -> Stored | None:
    """One frozen entity of a snapshot; None when the snapshot does not hold it."""
    snap = _used(conn, tenant, snapshot_id, now)
    row = conn.execute(sa.select(*_READ).where(se.c.snapshot_pk == snap.pk, se.c.entity_id == entity_id)).first()
    return stored(row) if row else None
