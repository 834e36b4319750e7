"""The context broker's verbs on entities: each change writes the entity, its attribute history and the
notifications it triggers in one transaction."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import history
from wecity.context.bulk import driver, insert_many, loads, run, update_many, utc
from wecity.context.entity import (
    NULL,
    Entity,
    bad,
    has_null,
    instances,
    is_null,
    location_bbox,
    merge_attribute,
    merge_patch,
    now_text,
    null_instance,
    pack,
    patch_attribute,
    put_instances,
)
from wecity.context.geo import GeoQuery
from wecity.context.ldcontext import ContextStore
from wecity.context.models import CELL_ROW, GEO_CELL, geo_cell
from wecity.context.models import entities as t
from wecity.context.ordering import Ordering
from wecity.context.query import linked_entities
from wecity.core.errors import AlreadyExists, NotFound, ValidationFailed


@dataclass
class Env:
    """Who and when: the tenant, the time of the change, and where @contexts come from."""

    tenant: str
    now: datetime
    store: ContextStore


@dataclass
class Stored:
    pk: int
    id: str
    types: list[str]
    attrs: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    scope: Any = None

    @property
    def type(self) -> str:
        return self.types[0]


@dataclass
class UpdateResult:
    updated: list[str] = field(default_factory=list)  # expanded attribute IRIs
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (IRI, reason)


_COLUMNS = (t.c.pk, t.c.entity_id, t.c.type, t.c.extra_types, t.c.attrs, t.c.created_at, t.c.modified_at, t.c.scope)


def _stored(row: Any) -> Stored:
    types = [row.type] + list(row.extra_types or [])
    return Stored(row.pk, row.entity_id, types, row.attrs, row.created_at, row.modified_at, row.scope)


def not_found(entity_id: str) -> NotFound:
    return NotFound(f"entity {entity_id} not found", message_zh=f"实体 {entity_id} 不存在", code="ngsild.not_found")


# Built once: constructing Core statements costs more than running them on the hot paths.
_GET = sa.select(*_COLUMNS).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.entity_id == sa.bindparam("b_id"))
_ROW_COLUMNS = ("geo_cell", "geo_large", "type", "extra_types", "multi_typed", "attrs", "scope", "min_lon", "min_lat", "max_lon", "max_lat", "modified_at")
_SAVE = t.update().where(t.c.pk == sa.bindparam("b_pk")).values({c: sa.bindparam(c) for c in _ROW_COLUMNS})


_RAW_COLUMNS = "pk, entity_id, type, extra_types, attrs, created_at, modified_at, scope"
_RAW_GET = f"SELECT {_RAW_COLUMNS} FROM ngsild_entities WHERE tenant = ? AND entity_id = ?"


def _stored_raw(row: tuple[Any, ...], *, attrs: bool = True) -> Stored:
    """A row read through the driver (SQLite): JSON and timestamps decoded as the column types would."""
    pk, entity_id, kind, extra, document, created, modified, scope = row
    types = [kind, *(loads(extra) or ())] if extra is not None else [kind]
    return Stored(pk, entity_id, types, loads(document) if attrs else {}, utc(created), utc(modified),  # type: ignore[arg-type]
                  loads(scope) if scope is not None else None)


def get(conn: Connection, tenant: str, entity_id: str) -> Stored | None:
    raw = driver(conn)
    if raw is not None:
        found = run(raw, _RAW_GET, (tenant, entity_id)).fetchone()
        return _stored_raw(found) if found else None
    row = conn.execute(_GET, {"b_tenant": tenant, "b_id": entity_id}).first()
    return _stored(row) if row else None


def require(conn: Connection, tenant: str, entity_id: str, selector: list[str] | None = None) -> Stored:
    """The stored entity; NotFound when absent, or not of one of the `selector` types when given."""
    found = get(conn, tenant, entity_id)
    if found is None or (selector and not set(selector).intersection(found.types)):
        raise not_found(entity_id)
    return found


def get_many(conn: Connection, tenant: str, ids: list[str]) -> dict[str, Stored]:
    """The entities with these ids that exist, by id."""
    return _existing(conn, tenant, ids)


def _row_values(entity: Entity | Stored, attrs: dict[str, Any]) -> dict[str, Any]:
    min_lon, min_lat, max_lon, max_lat = location_bbox(attrs)
    cell = large = None
    if min_lon is not None and min_lat is not None and max_lon is not None and max_lat is not None:
        cell = geo_cell(min_lon, min_lat)
        if geo_cell(max_lon, max_lat) != cell:
            cell, large = None, True
    return dict(geo_cell=cell, geo_large=bool(large), type=entity.types[0], extra_types=entity.types[1:] or None, multi_typed=len(entity.types) > 1,
                attrs=attrs, scope=entity.scope,
                min_lon=min_lon, min_lat=min_lat, max_lon=max_lon, max_lat=max_lat)


def _after_change(conn: Connection, env: Env, entity: Stored, changed: dict[str, Any],
                  *, previous: dict[str, Any] | None = None, created: bool = False) -> None:
    history.record(conn, env, entity.id, entity.type, changed)
    from wecity.context import subscriptions

    subscriptions.on_change(conn, env, entity, set(changed), previous=previous, created=created)


def create(conn: Connection, env: Env, entity: Entity) -> None:
    if not entity.types:
        raise bad("entity type is missing", "缺少实体类型")
    if get(conn, env.tenant, entity.id) is not None:
        raise AlreadyExists(f"entity {entity.id} already exists", message_zh=f"实体 {entity.id} 已存在",
                            code="ngsild.already_exists")
    inserted = conn.execute(t.insert().values(tenant=env.tenant, entity_id=entity.id, created_at=env.now,
                                              modified_at=env.now, **_row_values(entity, entity.attrs)))
    pk = inserted.inserted_primary_key[0]  # type: ignore[index]
    stored = Stored(int(pk), entity.id, entity.types, entity.attrs, env.now, env.now, entity.scope)
    _after_change(conn, env, stored, entity.attrs, created=True)


def _save(conn: Connection, env: Env, stored: Stored, changed: dict[str, Any],
          previous: dict[str, Any] | None = None) -> None:
    """Write the entity back; `previous` is its attributes as they were (a shallow copy)."""
    update_many(conn, t, [{"b_pk": stored.pk, "modified_at": env.now, **_row_values(stored, stored.attrs)}],
                key="pk", statement=_SAVE)
    stored.modified_at = env.now
    if changed:
        _after_change(conn, env, stored, changed, previous=previous)


def replace(conn: Connection, env: Env, entity: Entity) -> None:
    """PUT /entities/{id}: every attribute replaced; type kept when none is given."""
    stored = require(conn, env.tenant, entity.id)
    previous = stored.attrs
    if entity.types:
        stored.types = entity.types
    stored.attrs = entity.attrs
    stored.scope = entity.scope
    _save(conn, env, stored, entity.attrs, previous)


def delete(conn: Connection, env: Env, entity_id: str, types: list[str] | None = None) -> None:
    """DELETE /entities/{id}; with `types`, only an entity of one of those types (else NotFound)."""
    stored = require(conn, env.tenant, entity_id)
    if types and not set(types).intersection(stored.types):
        raise not_found(entity_id)
    conn.execute(t.delete().where(t.c.pk == stored.pk))
    from wecity.context import subscriptions

    subscriptions.on_change(conn, env, stored, set(), deleted=True)


def _scopes(scope: Any) -> list[Any]:
    return scope if isinstance(scope, list) else [] if scope is None else [scope]


def append(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *,
           no_overwrite: bool = False, types: list[str] | None = None, scope: Any = None,
           selector: list[str] | None = None) -> UpdateResult:
    """POST /entities/{id}/attrs: add attributes (instances by datasetId), overwriting existing ones
    unless `no_overwrite`; a scope given replaces the entity's, or joins it with `no_overwrite`."""
    stored = require(conn, env.tenant, entity_id, selector)
    previous = dict(stored.attrs)
    if scope is not None:
        if no_overwrite and stored.scope is not None:
            joined = list(dict.fromkeys(_scopes(stored.scope) + _scopes(scope)))
            stored.scope = joined[0] if len(joined) == 1 else joined
        else:
            stored.scope = scope
    result = UpdateResult()
    changed: dict[str, Any] = {}
    for iri, attr in attrs.items():
        after, written = put_instances(stored.attrs.get(iri), attr, env.now, overwrite=not no_overwrite)
        if written is None:
            result.not_updated.append((iri, "attribute exists and noOverwrite was given"))
            continue
        stored.attrs[iri] = after
        changed[iri] = written
        result.updated.append(iri)
    if types:
        stored.types = list(dict.fromkeys(stored.types + types))
    if changed or types or scope is not None:
        _save(conn, env, stored, changed, previous)
    return result


def _remove(stored: Stored, iri: str, dataset: str | None, *, every: bool = False) -> list[dict[str, Any]]:
    """Take the instance of `dataset` (None: the default; `every`: all) out of an attribute; the
    instances removed."""
    items = instances(stored.attrs[iri]) if iri in stored.attrs else []
    gone = items if every else [i for i in items if i.get("datasetId") == dataset]
    if gone:
        after = pack([i for i in items if i not in gone])
        if after is None:
            del stored.attrs[iri]
        else:
            stored.attrs[iri] = after
    return gone


def _notify_removed(conn: Connection, env: Env, stored: Stored, removed: dict[str, list[dict[str, Any]]],
                    previous: dict[str, Any] | None = None) -> None:
    """attributeDeleted notifications: the entity shows each removed instance with the NGSI-LD Null
    as its value; `previous` (the attributes before) lets showChanges tell what they were."""
    if not removed:
        return
    from wecity.context import subscriptions

    attrs = dict(stored.attrs)
    for iri, gone in removed.items():
        if iri in attrs:
            attrs[iri] = pack(instances(attrs[iri]) + [null_instance(i) for i in gone])
        elif len(gone) == 1:
            attrs[iri] = null_instance(gone[0])
        else:  # every instance went: the attribute itself is shown deleted
            attrs[iri] = {k: v for k, v in null_instance(gone[0]).items() if k != "datasetId"}
    shown = Stored(stored.pk, stored.id, stored.types, attrs, stored.created_at, stored.modified_at, stored.scope)
    subscriptions.on_change(conn, env, shown, set(removed), trigger="attributeDeleted", previous=previous)


def update(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *, types: list[str] | None = None,
           scope: Any = None, selector: list[str] | None = None) -> UpdateResult:
    """PATCH /entities/{id}/attrs: existing attribute instances are replaced, attributes the entity does
    not have yet are appended (as the ETSI conformance suite reads clause 5.6.2: 011_01_03 "update existing
    attributes and append non-existing attributes"); an instance whose value is the NGSI-LD Null is
    deleted. Types given are added; a scope replaces the entity's existing one."""
    stored = require(conn, env.tenant, entity_id, selector)
    previous = dict(stored.attrs)
    result = UpdateResult()
    if types:
        stored.types = list(dict.fromkeys(stored.types + types))
    if scope is not None:
        if stored.scope is None:
            result.not_updated.append(("scope", "the entity has no scope to update"))
        else:
            stored.scope = scope
            result.updated.append("scope")
    changed: dict[str, Any] = {}
    removed: dict[str, list[dict[str, Any]]] = {}
    for iri, attr in attrs.items():
        old = stored.attrs.get(iri)
        written = None
        if old is not None and type(attr) is dict and is_null(attr):
            gone = _remove(stored, iri, attr.get("datasetId"))
            if gone:
                removed[iri] = gone
                result.updated.append(iri)
                continue
        elif old is not None:
            # An existing attribute: its instances are replaced, and one with a new datasetId is added.
            after, written = put_instances(old, attr, env.now)
        elif not (type(attr) is dict and is_null(attr)):
            after, written = put_instances(None, attr, env.now)  # a new attribute: appended
        if written is None:
            result.not_updated.append((iri, "attribute does not exist"))
            continue
        stored.attrs[iri] = after
        changed[iri] = written
        result.updated.append(iri)
    if result.updated or types:
        _save(conn, env, stored, changed, previous)
    _notify_removed(conn, env, stored, removed, previous)
    return result


def _merge_into(old: Any, new: Any, now: datetime) -> tuple[Any, Any, list[dict[str, Any]]]:
    """Merge-patch `new` instances into `old`: members not given are kept, an NGSI-LD Null value
    deletes its instance; the stored attribute after (None when no instance is left), the instances
    written and the instances removed."""
    items = instances(old) if old is not None else []
    where = {i.get("datasetId"): n for n, i in enumerate(items)}
    out: list[dict[str, Any] | None] = list(items)
    written: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    for inst in instances(new):
        n = where.get(inst.get("datasetId"))
        prior = out[n] if n is not None else None
        if is_null(inst):
            if n is not None and prior is not None:
                removed.append(prior)
                out[n] = None
            continue
        if n is None or prior is None:
            if isinstance(inst.get("value"), dict) and has_null(inst["value"]):
                inst["value"] = merge_patch({}, inst["value"])  # the Null is never stored
            where[inst.get("datasetId")] = len(out)
            out.append(inst)
            written.append(inst)
            continue
        merged = patch_attribute(prior, inst, now, merge=True) if inst.get("type") == prior.get("type") \
            else merge_attribute(prior, inst, now)
        out[n] = merged
        written.append(merged)
    return pack([i for i in out if i is not None]), pack(written), removed


def merge(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *,
          types: list[str] | None = None, scope: Any = None) -> None:
    """PATCH /entities/{id}: merge the fragment into the entity (NGSI-LD Null deletes)."""
    stored = require(conn, env.tenant, entity_id)
    _merge(conn, env, stored, attrs, types=types, scope=scope)


def _merge(conn: Connection, env: Env, stored: Stored, attrs: dict[str, Any], *,
           types: list[str] | None = None, scope: Any = None) -> None:
    changed: dict[str, Any] = {}
    removed: dict[str, list[dict[str, Any]]] = {}
    for iri, attr in attrs.items():
        after, written, gone = _merge_into(stored.attrs.get(iri), attr, env.now)
        if gone:
            removed[iri] = gone
        if after is None:
            stored.attrs.pop(iri, None)
            continue
        stored.attrs[iri] = after
        if written is not None:
            changed[iri] = written
    if types:
        stored.types = list(dict.fromkeys(stored.types + types))
    if scope is not None:
        stored.scope = None if scope == NULL else scope
    _save(conn, env, stored, changed)
    _notify_removed(conn, env, stored, removed)


def _attr_not_found(entity_id: str, iri: str) -> NotFound:
    return NotFound(f"attribute {iri} of entity {entity_id} not found",
                    message_zh=f"实体 {entity_id} 没有属性 {iri}", code="ngsild.not_found")


def _instance_at(stored: Stored, iri: str, dataset: str | None) -> tuple[int, list[dict[str, Any]]]:
    """Where the instance of `dataset` (None: the default) of an attribute is; NotFound when absent."""
    items = instances(stored.attrs[iri]) if iri in stored.attrs else []
    for n, inst in enumerate(items):
        if inst.get("datasetId") == dataset:
            return n, items
    raise _attr_not_found(stored.id, iri)


def patch_attr(conn: Connection, env: Env, entity_id: str, iri: str, fragment: dict[str, Any], *,
               selector: list[str] | None = None) -> None:
    """PATCH /entities/{id}/attrs/{attrId}: only the members given change (of the instance the
    fragment's datasetId names, the default one without); the NGSI-LD Null as value deletes it."""
    stored = require(conn, env.tenant, entity_id, selector)
    n, items = _instance_at(stored, iri, fragment.get("datasetId"))
    if is_null(dict(fragment, type=items[n].get("type", "Property"))):
        gone = _remove(stored, iri, fragment.get("datasetId"))
        _save(conn, env, stored, {})
        _notify_removed(conn, env, stored, {iri: gone}, {iri: items[n]})
        return
    items = list(items)
    old = items[n]
    items[n] = new = patch_attribute(old, fragment, env.now)
    stored.attrs[iri] = pack(items)
    _save(conn, env, stored, {iri: new}, {iri: old})


def replace_attr(conn: Connection, env: Env, entity_id: str, iri: str, attr: dict[str, Any]) -> None:
    stored = require(conn, env.tenant, entity_id)
    n, items = _instance_at(stored, iri, attr.get("datasetId"))
    items = list(items)
    old = items[n]
    items[n] = new = merge_attribute(old, attr, env.now)
    stored.attrs[iri] = pack(items)
    _save(conn, env, stored, {iri: new}, {iri: old})


def delete_attr(conn: Connection, env: Env, entity_id: str, iri: str, *, dataset: str | None = None,
                delete_all: bool = False, selector: list[str] | None = None) -> None:
    """DELETE /entities/{id}/attrs/{attrId}: the default instance, the one of `dataset`, or all;
    `scope` as the attribute removes the entity's scope."""
    stored = require(conn, env.tenant, entity_id, selector)
    if iri == "scope" and iri not in stored.attrs:
        if stored.scope is None:
            raise _attr_not_found(entity_id, iri)
        stored.scope = None
        _save(conn, env, stored, {})
        return
    gone = _remove(stored, iri, dataset, every=delete_all)
    if not gone:
        raise _attr_not_found(entity_id, iri)
    _save(conn, env, stored, {})
    _notify_removed(conn, env, stored, {iri: gone}, {iri: gone[0]} if len(gone) == 1 else None)


# -- batch operations -------------------------------------------------------------------------------

@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, Exception]] = field(default_factory=list)


def _existing(conn: Connection, tenant: str, ids: list[str], *, attrs: bool = True) -> dict[str, Stored]:
    """The stored entities among `ids`; without `attrs`, their attributes are left empty (not decoded)."""
    found: dict[str, Stored] = {}
    raw = driver(conn)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        if raw is not None:
            sql = f"SELECT {_RAW_COLUMNS} FROM ngsild_entities WHERE tenant = ? AND entity_id IN ({', '.join('?' * len(chunk))})"
            for values in run(raw, sql, (tenant, *chunk)):
                stored = _stored_raw(values, attrs=attrs)
                found[stored.id] = stored
            continue
        for row in conn.execute(sa.select(*_COLUMNS).where(t.c.tenant == tenant, t.c.entity_id.in_(chunk))):
            found[row.entity_id] = _stored(row)
    return found


def entities_by_id(conn: Connection, tenant: str, ids: list[str]) -> dict[str, Stored]:
    """The entities with these ids that exist, by id (a few statements for many ids)."""
    return _existing(conn, tenant, ids)


def batch_create(conn: Connection, env: Env, items: list[Entity]) -> BatchResult:
    return batch_upsert(conn, env, items, mode="create")


def batch_upsert(conn: Connection, env: Env, items: list[Entity], *, mode: str = "replace") -> BatchResult:
    """Create, upsert (mode replace or update) or update (mode update-only / noOverwrite) many entities
    with a few bulk statements."""
    result = BatchResult()
    # A replace throws the old attributes away: they are not even decoded.
    existing = _existing(conn, env.tenant, list(dict.fromkeys(e.id for e in items)), attrs=mode != "replace")
    # (entity, changed attributes, attributes before the change (None: not read), created)
    changes: list[tuple[Stored, dict[str, Any], dict[str, Any] | None, bool]] = []
    pending: dict[str, Stored] = {}  # entity id -> its state after this batch
    for entity in items:
        old = pending.get(entity.id) or existing.get(entity.id)
        if old is None:
            if mode in ("update-only", "no-overwrite"):
                result.errors.append((entity.id, not_found(entity.id)))
                continue
            if not entity.types:
                result.errors.append((entity.id, bad("entity type is missing", "缺少实体类型")))
                continue
            # Its own copy of the attributes: a later item for the same id must not rewrite this change.
            pending[entity.id] = Stored(0, entity.id, entity.types, dict(entity.attrs), env.now, env.now, entity.scope)
            changes.append((pending[entity.id], entity.attrs, None, True))
            result.created.append(entity.id)
            result.success.append(entity.id)
            continue
        if mode == "create":
            result.errors.append((entity.id, AlreadyExists(f"entity {entity.id} already exists",
                                                           message_zh=f"实体 {entity.id} 已存在",
                                                           code="ngsild.already_exists")))
            continue
        changed: dict[str, Any] = {}
        kept: list[str] = []
        previous = dict(old.attrs) if mode != "replace" else None  # a replace did not read them
        if mode == "replace":
            old.attrs = dict(entity.attrs)
            changed = entity.attrs
            old.scope = entity.scope
            if entity.types:
                old.types = entity.types
        else:
            overwrite = mode != "no-overwrite"
            for iri, attr in entity.attrs.items():
                after, written = put_instances(old.attrs.get(iri), attr, env.now, overwrite=overwrite)
                if written is not None:
                    old.attrs[iri] = after
                    changed[iri] = written
                else:
                    kept.append(iri)
            if entity.scope is not None:
                old.scope = entity.scope
            if entity.types:
                old.types = list(dict.fromkeys(old.types + entity.types))
        old.modified_at = env.now
        pending[entity.id] = old
        changes.append((old, changed, previous, False))
        if kept:
            result.errors.append((entity.id, AlreadyExists(
                f"attributes of {entity.id} exist and noOverwrite was given: {', '.join(kept)}",
                message_zh=f"实体 {entity.id} 的属性已存在且指定了 noOverwrite：{'、'.join(kept)}",
                code="ngsild.already_exists")))
        else:
            result.success.append(entity.id)
    # One row written per entity, in its final state, however often the batch names it (device readings
    # come in bursts from the same devices).
    insert_many(conn, t, [dict(tenant=env.tenant, entity_id=s.id, created_at=env.now, modified_at=env.now,
                               **_row_values(s, s.attrs)) for s in pending.values() if not s.pk])
    update_many(conn, t, [dict(b_pk=s.pk, modified_at=env.now, **_row_values(s, s.attrs))
                          for s in pending.values() if s.pk], key="pk", statement=_SAVE)
    history.record_many(conn, env, [(s.id, s.type, c) for s, c, _, _ in changes])
    from wecity.context import subscriptions

    if subscriptions.has_any(conn, env.tenant):
        for stored, changed, before, created in changes:
            subscriptions.on_change(conn, env, stored, set(changed), previous=before, created=created)
    else:
        for stored, changed, _, _ in changes:
            subscriptions.emit_change(conn, env, stored, set(changed))
    return result


def batch_merge(conn: Connection, env: Env, items: list[Entity]) -> BatchResult:
    """POST /entityOperations/merge: merge each entity (as PATCH /entities/{id} does); an entity
    that does not exist is an error of its own."""
    result = BatchResult()
    existing = _existing(conn, env.tenant, list(dict.fromkeys(e.id for e in items)))
    for entity in items:
        stored = existing.get(entity.id)
        if stored is None:
            result.errors.append((entity.id, not_found(entity.id)))
            continue
        _merge(conn, env, stored, entity.attrs, types=entity.types, scope=entity.scope)
        result.success.append(entity.id)
    return result


def batch_delete(conn: Connection, env: Env, ids: list[str]) -> BatchResult:
    result = BatchResult()
    existing = _existing(conn, env.tenant, list(dict.fromkeys(ids)))
    gone: set[str] = set()
    for entity_id in ids:
        stored = existing.get(entity_id)
        if stored is None or entity_id in gone:
            result.errors.append((entity_id, not_found(entity_id)))
            continue
        conn.execute(t.delete().where(t.c.pk == stored.pk))
        gone.add(entity_id)
        from wecity.context import subscriptions

        subscriptions.on_change(conn, env, stored, set(), deleted=True)
        result.success.append(entity_id)
    return result


# -- queries --------------------------------------------------------------------------------------

@dataclass
class Query:
    """What GET /entities and POST /entityOperations/query ask for (types and attributes expanded)."""

    types: list[str] | None = None
    ids: list[str] | None = None
    id_pattern: str | None = None
    attrs: list[str] | None = None
    q: Callable[[dict[str, Any]], bool] | None = None
    geo: GeoQuery | None = None
    scope_q: Callable[[Any], bool] | None = None
    # A type selection with `;` (an entity must have all those types): tested on the entity's types after
    # the SQL pre-filter on `types` (every type the selection names).
    type_test: Callable[[list[str]], bool] | None = None
    order: Ordering | None = None
    # Several entity selectors of a Query body: each entity must match one of them as a whole.
    entity_test: Callable[[Stored], bool] | None = None

    def needs_python(self) -> bool:
        return bool(self.id_pattern or self.attrs or self.q or self.geo or self.scope_q or self.type_test
                    or (self.order is not None and self.order.columns() is None) or self.entity_test)


def compile_pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValidationFailed(f"invalid idPattern {text!r}", message_zh=f"idPattern 无效：{text!r}",
                               code="ngsild.bad_request_data") from exc


def _cells(minx: float, miny: float, maxx: float, maxy: float, limit: int = 1600) -> list[int] | None:
    """The grid cells a box covers, or None when there are too many to list (then no cell filter)."""
    import math

    xs = range(math.floor(minx / GEO_CELL), math.floor(maxx / GEO_CELL) + 1)
    ys = range(math.floor(miny / GEO_CELL), math.floor(maxy / GEO_CELL) + 1)
    if len(xs) * len(ys) > limit:
        return None
    return [x * CELL_ROW + y for x in xs for y in ys]


@dataclass
class Page:
    rows: list[Stored]
    total: int | None  # how many match in all, when counted
    more: bool  # whether entities follow this page


def _sql_order(conn: Connection, order: Ordering | None) -> list[Any]:
    """ORDER BY for an ordering on the entity's own columns (creation order when there is none); ids and
    types compare by code point on both databases, as the ordering in Python does."""
    columns = {"id": t.c.entity_id, "type": t.c.type, "createdAt": t.c.created_at, "modifiedAt": t.c.modified_at}
    out: list[Any] = []
    for member, descending in (order.columns() or []) if order is not None else []:
        column: Any = columns[member]
        if member in ("id", "type") and conn.dialect.name == "postgresql":
            column = column.collate("C")
        out.append(column.desc() if descending else column.asc())
    return [*out, t.c.pk]


def query(conn: Connection, tenant: str, spec: Query, *, limit: int, offset: int,
          count: bool) -> tuple[list[Stored], int | None]:
    """A page of matching entities and how many match in all when `count`."""
    page = query_page(conn, tenant, spec, limit=limit, offset=offset, count=count)
    return page.rows, page.total


def query_page(conn: Connection, tenant: str, spec: Query, *, limit: int, offset: int, count: bool) -> Page:
    """Matching entities (in creation order unless `spec.order` says otherwise): one page of them, how
    many match in all when `count`, and whether more follow."""
    where = [t.c.tenant == tenant]
    multi: list[Any] | None = None
    if spec.types is not None:
        # Single-typed entities by the indexed `type`; multi-typed ones (rare) by their JSON list of types.
        extra = sa.cast(t.c.extra_types, sa.String)
        multi = [t.c.multi_typed.is_(True), t.c.type.not_in(spec.types),
                 sa.or_(*[extra.contains(json.dumps(x)) for x in spec.types])]
        if not conn.execute(sa.select(t.c.pk).where(t.c.tenant == tenant, *multi).limit(1)).first():
            multi = None
    if spec.ids is not None:
        where.append(t.c.entity_id.in_(spec.ids))
    type_variants: list[list[Any]] = [[]]
    if spec.types is not None:
        type_variants = [[t.c.type.in_(spec.types)]] + ([multi] if multi is not None else [])
    geo_variants: list[list[Any]] = [[]]
    box = spec.geo.bbox() if spec.geo is not None and spec.geo.geoproperty.endswith("/location") else None
    if box is not None:
        minx, miny, maxx, maxy = box
        overlap = [t.c.min_lon <= maxx, t.c.max_lon >= minx, t.c.min_lat <= maxy, t.c.max_lat >= miny]
        geo_variants = [[*overlap, t.c.geo_large.is_(False)]]
        cells = _cells(minx, miny, maxx, maxy)
        if cells is not None:
            geo_variants = [[*overlap, t.c.geo_cell.in_(cells)]]
        large = [t.c.geo_large.is_(True)]
        if conn.execute(sa.select(t.c.pk).where(t.c.tenant == tenant, *large).limit(1)).first():
            geo_variants.append([*overlap, *large])
    selects = [sa.select(*_COLUMNS).where(*where, *tv, *gv) for tv in type_variants for gv in geo_variants]
    if not spec.needs_python() and len(selects) == 1:
        total = None
        if count:
            total = int(conn.execute(sa.select(sa.func.count()).select_from(selects[0].subquery())).scalar_one())
        if limit == 0:
            return Page([], total, False)
        stmt = selects[0].order_by(*_sql_order(conn, spec.order)).limit(limit + 1).offset(offset)
        found = [_stored(r) for r in conn.execute(stmt)]
        return Page(found[:limit], total, len(found) > limit)
    rows = [r for s in selects for r in conn.execute(s.order_by(t.c.pk))]
    if len(selects) > 1:
        rows.sort(key=lambda r: r.pk)
    cache: dict[str, Stored | None] = {}

    def resolve(ids: list[str]) -> list[tuple[list[str], dict[str, Any]]]:
        """Targets of linked-entity terms in `q`, each entity read once per query."""
        missing = [i for i in ids if i not in cache]
        if missing:
            found = _existing(conn, tenant, missing)
            cache.update({i: found.get(i) for i in missing})
        return [(s.types, s.attrs) for s in (cache[i] for i in ids) if s is not None]

    with linked_entities(resolve):
        matched = _matching(rows, spec)
    if spec.order is not None:
        matched = spec.order.sort(matched)
    return Page(matched[offset:offset + limit], len(matched) if count else None,
                limit > 0 and len(matched) > offset + limit)


def _matching(rows: list[Any], spec: Query) -> list[Stored]:
    pattern = compile_pattern(spec.id_pattern) if spec.id_pattern else None
    attrs = spec.attrs
    matched: list[Stored] = []
    for row in rows:
        stored = _stored(row)
        if pattern is not None and not pattern.search(stored.id):
            continue
        if spec.type_test is not None and not spec.type_test(stored.types):
            continue
        if spec.scope_q is not None and not spec.scope_q(stored.scope):
            continue
        if spec.entity_test is not None and not spec.entity_test(stored):
            continue
        if attrs and not any(a in stored.attrs for a in attrs):
            continue
        if spec.q is not None and not spec.q(stored.attrs):
            continue
        if spec.geo is not None:
            geo_attr = stored.attrs.get(spec.geo.geoproperty)
            if geo_attr is None or not any(spec.geo.matches(i.get("value")) for i in instances(geo_attr)):
                continue
        matched.append(stored)
    return matched


def entity_types(conn: Connection, tenant: str) -> list[str]:
    rows = conn.execute(sa.select(t.c.type).where(t.c.tenant == tenant).distinct().order_by(t.c.type))
    return [r.type for r in rows]


def stamp(value: datetime) -> str:
    return now_text(value)
