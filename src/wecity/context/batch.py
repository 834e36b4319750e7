"""Batch operations (POST /entityOperations/create, upsert, update, merge, delete): many entities with a
handful of bulk statements, each entity's success or error reported on its own."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.context import history, matching
from wecity.context.attributes import put_instances
from wecity.context.bulk import insert_many, update_many
from wecity.context.entity import Entity
from wecity.context.env import Env, Stored
from wecity.context.errors import already_exists, bad_request_data
from wecity.context.models import entities as t
from wecity.context.owned import refusal
from wecity.context.rows import SAVE, entity_exists, existing, not_found, row_values
from wecity.context.verbs import KEEP, merge_stored

# A change a batch made: the entity as it was right after it, the attributes changed, the attributes before
# the change (None: not read) and whether the entity is new.
_Change = tuple[Stored, dict[str, Any], dict[str, Any] | None, bool]


@dataclass
class BatchResult:
    success: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    errors: list[tuple[str, Exception]] = field(default_factory=list)


def batch_create(conn: Connection, env: Env, items: list[Entity]) -> BatchResult:
    return batch_upsert(conn, env, items, mode="create")


def batch_upsert(conn: Connection, env: Env, items: list[Entity], *, mode: str = "replace") -> BatchResult:
    """Create, upsert (mode replace or update) or update (mode update-only / noOverwrite) many entities
    with a few bulk statements."""
    result = BatchResult()
    # A replace throws the old attributes away: they are not even decoded.
    expired: list[int] = []
    found = existing(conn, env.tenant, list(dict.fromkeys(e.id for e in items)), attrs=mode != "replace", lock=True,
                     now=env.now, expired=expired)
    if expired and mode not in ("update-only", "no-overwrite"):
        conn.execute(t.delete().where(t.c.pk.in_(expired)))  # expired, not yet swept: their ids are free
    changes: list[_Change] = []
    pending: dict[str, Stored] = {}  # entity id -> its state after this batch
    for entity in items:
        refused = refusal(env, entity.id) if env.owned else None
        if refused is not None:
            result.errors.append((entity.id, refused))
            continue
        old = pending.get(entity.id) or found.get(entity.id)
        if old is None:
            if mode in ("update-only", "no-overwrite"):
                result.errors.append((entity.id, not_found(entity.id)))
            elif not entity.types:
                result.errors.append((entity.id, bad_request_data("entity type is missing", "缺少实体类型")))
            else:
                # Its own copy of the attributes: a later item for the same id must not rewrite this change.
                pending[entity.id] = Stored(0, entity.id, entity.types, dict(entity.attrs), env.now, env.now,
                                            entity.scope, entity.expires_at)
                changes.append((_as_now(pending[entity.id]), entity.attrs, None, True))
                result.created.append(entity.id)
                result.success.append(entity.id)
            continue
        if mode == "create":
            result.errors.append((entity.id, entity_exists(entity.id)))
            continue
        changed, previous, kept = _write_over(old, entity, mode, env.now)
        pending[entity.id] = old
        changes.append((_as_now(old), changed, previous, False))
        if kept:
            result.errors.append((entity.id, already_exists(
                f"attributes of {entity.id} exist and noOverwrite was given: {', '.join(kept)}",
                f"实体 {entity.id} 的属性已存在且指定了 noOverwrite：{'、'.join(kept)}")))
        else:
            result.success.append(entity.id)
    _write(conn, env, pending, changes)
    return result


def _as_now(stored: Stored) -> Stored:
    """The entity as this item left it. A later item for the same entity changes `stored` in place, and
    who hears of this change (a sensor rule, a subscription) must see this reading, not the batch's last:
    a fault followed by a healthy reading in one burst is still a fault."""
    return replace(stored, attrs=dict(stored.attrs), types=list(stored.types))


def _write_over(old: Stored, entity: Entity, mode: str,
                now: datetime) -> tuple[dict[str, Any], dict[str, Any] | None, list[str]]:
    """An item of the batch written over the entity it names (in place): the attributes changed, the
    attributes before (None for a replace, which did not read them) and those kept (noOverwrite)."""
    changed: dict[str, Any] = {}
    kept: list[str] = []
    previous = dict(old.attrs) if mode != "replace" else None
    if mode == "replace":
        old.attrs = dict(entity.attrs)
        changed = entity.attrs
        old.scope = entity.scope
        old.expires_at = entity.expires_at
        if entity.types:
            old.types = entity.types
    else:
        overwrite = mode != "no-overwrite"
        for iri, attr in entity.attrs.items():
            after, written = put_instances(old.attrs.get(iri), attr, now, overwrite=overwrite)
            if written is not None:
                old.attrs[iri] = after
                changed[iri] = written
            else:
                kept.append(iri)
        if entity.scope is not None:
            old.scope = entity.scope
        if entity.expires_at is not None:
            old.expires_at = entity.expires_at
        if entity.types:
            old.types = list(dict.fromkeys(old.types + entity.types))
    old.modified_at = now
    return changed, previous, kept


def _write(conn: Connection, env: Env, pending: dict[str, Stored], changes: list[_Change]) -> None:
    """One row written per entity, in its final state, however often the batch names it (device readings
    come in bursts from the same devices); then the history and the notifications of every change."""
    insert_many(conn, t, [dict(tenant=env.tenant, entity_id=s.id, created_at=env.now, modified_at=env.now,
                               **row_values(s, s.attrs)) for s in pending.values() if not s.pk])
    update_many(conn, t, [dict(b_pk=s.pk, modified_at=env.now, **row_values(s, s.attrs))
                          for s in pending.values() if s.pk], key="pk", statement=SAVE)
    history.record_many(conn, env, [(s.id, s.type, c) for s, c, _, _ in changes])
    if matching.has_any(conn, env.tenant):
        for stored, changed, before, created in changes:
            matching.on_change(conn, env, stored, set(changed), previous=before, created=created)
    else:
        for stored, changed, _, _ in changes:
            matching.emit_change(conn, env, stored, set(changed))


def batch_merge(conn: Connection, env: Env, items: list[Entity]) -> BatchResult:
    """POST /entityOperations/merge: merge each entity (as PATCH /entities/{id} does); an entity
    that does not exist is an error of its own."""
    result = BatchResult()
    found = existing(conn, env.tenant, list(dict.fromkeys(e.id for e in items)), now=env.now, lock=True)
    for entity in items:
        stored = found.get(entity.id)
        refused = refusal(env, entity.id) if env.owned else None
        if refused is not None:
            result.errors.append((entity.id, refused))
            continue
        if stored is None:
            result.errors.append((entity.id, not_found(entity.id)))
            continue
        merge_stored(conn, env, stored, entity.attrs, types=entity.types, scope=entity.scope,
                     expires_at=entity.expires_at if entity.expires_at is not None else KEEP)
        result.success.append(entity.id)
    return result


def batch_delete(conn: Connection, env: Env, ids: list[str]) -> BatchResult:
    result = BatchResult()
    found = existing(conn, env.tenant, list(dict.fromkeys(ids)), now=env.now, lock=True)
    gone: set[str] = set()
    for entity_id in ids:
        stored = found.get(entity_id)
        refused = refusal(env, entity_id) if env.owned else None
        if refused is not None:
            result.errors.append((entity_id, refused))
            continue
        if stored is None or entity_id in gone:
            result.errors.append((entity_id, not_found(entity_id)))
            continue
        conn.execute(t.delete().where(t.c.pk == stored.pk))
        gone.add(entity_id)
        matching.on_change(conn, env, stored, set(), deleted=True)
        result.success.append(entity_id)
    return result
