"""The verbs on one entity: create, replace, merge, delete, and the attribute verbs (append, update,
patch, replace, delete). Each change writes the entity row, one history row per changed attribute and
the notifications it triggers in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.context import history, matching
from wecity.context.attributes import (
    merge_attribute,
    merge_patch,
    null_instance,
    pack,
    patch_attribute,
    put_instances,
)
from wecity.context.bulk import update_many
from wecity.context.entity import NULL, Entity, has_null, instances, is_null
from wecity.context.env import Env, Stored
from wecity.context.errors import bad_request_data, resource_not_found
from wecity.context.models import entities as t
from wecity.context.owned import refusal, require_writable
from wecity.context.rows import (
    SAVE,
    entity_exists,
    existing,
    get_row,
    lock_ids,
    not_found,
    require,
    row_values,
)
from wecity.context.transient import is_expired
from wecity.core.errors import NotFound


@dataclass
class UpdateResult:
    updated: list[str] = field(default_factory=list)  # expanded attribute IRIs
    not_updated: list[tuple[str, str]] = field(default_factory=list)  # (IRI, reason)


def after_change(conn: Connection, env: Env, entity: Stored, changed: dict[str, Any],
                 *, previous: dict[str, Any] | None = None, created: bool = False) -> None:
    """The history of the changed attributes, and the notifications the change triggers."""
    history.record(conn, env, entity.id, entity.type, changed)
    matching.on_change(conn, env, entity, set(changed), previous=previous, created=created)


def create(conn: Connection, env: Env, entity: Entity) -> None:
    require_writable(env, entity.id)
    if not entity.types:
        raise bad_request_data("entity type is missing", "缺少实体类型")
    found = get_row(conn, env.tenant, entity.id, lock=True)
    if found is not None:
        if not is_expired(found, env.now):
            raise entity_exists(entity.id)
        conn.execute(t.delete().where(t.c.pk == found.pk))  # expired, not yet swept: its id is free
    inserted = conn.execute(t.insert().values(tenant=env.tenant, entity_id=entity.id, created_at=env.now,
                                              modified_at=env.now, **row_values(entity, entity.attrs)))
    pk = inserted.inserted_primary_key[0]  # type: ignore[index]
    stored = Stored(int(pk), entity.id, entity.types, entity.attrs, env.now, env.now, entity.scope,
                    entity.expires_at)
    after_change(conn, env, stored, entity.attrs, created=True)
    if entity.scope is not None:
        history.record_scope(conn, env, stored.id, stored.type, entity.scope)


def _save(conn: Connection, env: Env, stored: Stored, changed: dict[str, Any],
          previous: dict[str, Any] | None = None) -> None:
    """Write the entity back; `previous` is its attributes as they were (a shallow copy)."""
    update_many(conn, t, [{"b_pk": stored.pk, "modified_at": env.now, **row_values(stored, stored.attrs)}],
                key="pk", statement=SAVE)
    stored.modified_at = env.now
    if changed:
        after_change(conn, env, stored, changed, previous=previous)


def replace(conn: Connection, env: Env, entity: Entity) -> None:
    """PUT /entities/{id}: every attribute replaced; type kept when none is given."""
    require_writable(env, entity.id)
    stored = require(conn, env.tenant, entity.id, now=env.now, lock=True)
    previous = stored.attrs
    if entity.types:
        stored.types = entity.types
    stored.attrs = entity.attrs
    scope_changed = stored.scope != entity.scope
    stored.scope = entity.scope
    stored.expires_at = entity.expires_at  # a whole replace leaves a transient entity durable unless it says again
    _save(conn, env, stored, entity.attrs, previous)
    if scope_changed:
        history.record_scope(conn, env, stored.id, stored.type, stored.scope)


def delete(conn: Connection, env: Env, entity_id: str, types: list[str] | None = None) -> None:
    """DELETE /entities/{id}; with `types`, only an entity of one of those types (else NotFound)."""
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, now=env.now, lock=True)
    if types and not set(types).intersection(stored.types):
        raise not_found(entity_id)
    conn.execute(t.delete().where(t.c.pk == stored.pk))
    matching.on_change(conn, env, stored, set(), deleted=True)


def _scopes(scope: Any) -> list[Any]:
    return scope if isinstance(scope, list) else [] if scope is None else [scope]


def append(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *,
           no_overwrite: bool = False, types: list[str] | None = None, scope: Any = None,
           selector: list[str] | None = None) -> UpdateResult:
    """POST /entities/{id}/attrs: add attributes (instances by datasetId), overwriting existing ones
    unless `no_overwrite`; a scope given replaces the entity's, or joins it with `no_overwrite`."""
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, selector, now=env.now, lock=True)
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
    if scope is not None:
        history.record_scope(conn, env, stored.id, stored.type, stored.scope)
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
    as its value; `previous` (the attributes before) lets showChanges tell what they were. The history
    keeps when each instance was deleted."""
    if not removed:
        return
    history.record_deleted(conn, env, stored.id, stored.type, removed)
    attrs = dict(stored.attrs)
    for iri, gone in removed.items():
        if iri in attrs:
            attrs[iri] = pack(instances(attrs[iri]) + [null_instance(i) for i in gone])
        elif len(gone) == 1:
            attrs[iri] = null_instance(gone[0])
        else:  # every instance went: the attribute itself is shown deleted
            attrs[iri] = {k: v for k, v in null_instance(gone[0]).items() if k != "datasetId"}
    shown = Stored(stored.pk, stored.id, stored.types, attrs, stored.created_at, stored.modified_at, stored.scope)
    matching.on_change(conn, env, shown, set(removed), trigger="attributeDeleted", previous=previous)


def update(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *, types: list[str] | None = None,
           scope: Any = None, selector: list[str] | None = None) -> UpdateResult:
    """PATCH /entities/{id}/attrs: existing attribute instances are replaced, attributes the entity does
    not have yet are appended (as the ETSI conformance suite reads clause 5.6.2: 011_01_03 "update existing
    attributes and append non-existing attributes"); an instance whose value is the NGSI-LD Null is
    deleted. Types given are added; a scope replaces the entity's existing one."""
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, selector, now=env.now, lock=True)
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
    if "scope" in result.updated:
        history.record_scope(conn, env, stored.id, stored.type, stored.scope)
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


KEEP = object()  # a merge that leaves the entity's expiresAt as it is


def merge(conn: Connection, env: Env, entity_id: str, attrs: dict[str, Any], *,
          types: list[str] | None = None, scope: Any = None, expires_at: Any = KEEP) -> None:
    """PATCH /entities/{id}: merge the fragment into the entity (NGSI-LD Null deletes)."""
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, now=env.now, lock=True)
    merge_stored(conn, env, stored, attrs, types=types, scope=scope, expires_at=expires_at)


def merge_stored(conn: Connection, env: Env, stored: Stored, attrs: dict[str, Any], *,
                 types: list[str] | None = None, scope: Any = None, expires_at: Any = KEEP) -> None:
    """The merge of PATCH /entities/{id} on an entity already read (a batch merge reads them all at once);
    `expires_at` a new expiry (None: durable again), KEEP to leave it."""
    if expires_at is not KEEP:
        stored.expires_at = expires_at
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
    if scope is not None:
        history.record_scope(conn, env, stored.id, stored.type, stored.scope)
    _notify_removed(conn, env, stored, removed)


def _attr_not_found(entity_id: str, iri: str) -> NotFound:
    return resource_not_found(f"attribute {iri} of entity {entity_id} not found", f"实体 {entity_id} 没有属性 {iri}")


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
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, selector, now=env.now, lock=True)
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
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, now=env.now, lock=True)
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
    require_writable(env, entity_id)
    stored = require(conn, env.tenant, entity_id, selector, now=env.now, lock=True)
    if iri == "scope" and iri not in stored.attrs:
        if stored.scope is None:
            raise _attr_not_found(entity_id, iri)
        stored.scope = None
        _save(conn, env, stored, {})
        history.record_scope(conn, env, stored.id, stored.type, None)
        return
    gone = _remove(stored, iri, dataset, every=delete_all)
    if not gone:
        raise _attr_not_found(entity_id, iri)
    _save(conn, env, stored, {})
    _notify_removed(conn, env, stored, {iri: gone}, {iri: gone[0]} if len(gone) == 1 else None)




def purge(conn: Connection, env: Env, found: list[Stored], *, keep: set[str] | None = None,
          drop: set[str] | None = None) -> int:
    """DELETE /entities (5.6.21): the entities a query found deleted, or with `drop` those attributes
    taken out of them, with `keep` every attribute but those; entities another domain keeps are left
    alone. How many entities changed."""
    changed = 0
    if keep is not None or drop is not None:
        # Attributes are taken out of the entities as they are now: under their locks, read again (the query
        # found them before, and a change meanwhile would be written over).
        lock_ids(conn, env.tenant, [s.id for s in found])
        fresh = existing(conn, env.tenant, [s.id for s in found], now=env.now)
        found = [fresh[s.id] for s in found if s.id in fresh]
    for stored in found:
        if refusal(env, stored.id) is not None:
            continue
        if keep is None and drop is None:
            conn.execute(t.delete().where(t.c.pk == stored.pk))
            matching.on_change(conn, env, stored, set(), deleted=True)
            changed += 1
            continue
        names = [i for i in stored.attrs if (i in drop if drop is not None else i not in (keep or set()))]
        if not names:
            continue
        previous = dict(stored.attrs)
        removed = {iri: _remove(stored, iri, None, every=True) for iri in names}
        _save(conn, env, stored, {})
        _notify_removed(conn, env, stored, removed, previous)
        changed += 1
    return changed
