"""Each entity change matched against the tenant's subscriptions (entities, watchedAttributes,
notificationTrigger, q, geoQ, expiresAt, throttling), and the notification it triggers put in the
platform's outbox in the change's transaction. Other platforms hear of every change as an event."""

from __future__ import annotations

import uuid
from functools import lru_cache, partial
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import mqttnotify, notification
from wecity.context.bulk import driver, run
from wecity.context.entity import instances, now_text
from wecity.context.env import Env, Stored
from wecity.context.geo import parse_geoq
from wecity.context.ldcontext import TermMap
from wecity.context.models import subscriptions as t
from wecity.context.query import compile_stored_q, linked_entities
from wecity.context.rows import entities_by_id
from wecity.context.selection import TypeSelection, parse_type_selection
from wecity.context.subscriptions import CHANNEL, DEFAULT_TRIGGERS, ENTITY
from wecity.core import outbox
from wecity.core.patterns import BadPattern, compile_pattern

# Periodic subscriptions are left to the periodic runner: a change does not notify them.
# Subscriptions to context source registrations are matched against registrations (csourcenotify.py).
_ACTIVE = sa.select(t).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.is_active.is_(True),
                             t.c.time_interval.is_(None), t.c.kind == ENTITY)
_RAW_ANY = "SELECT 1 FROM ngsild_subscriptions WHERE tenant = ? AND is_active = 1 AND kind = 'entity' LIMIT 1"
_ANY = sa.select(t.c.pk).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.is_active.is_(True),
                               t.c.kind == ENTITY).limit(1)


def has_any(conn: Connection, tenant: str) -> bool:
    """Whether the tenant has an active subscription: one indexed look-up, through the driver on SQLite,
    so a change in a tenant without subscriptions (the usual case for sensor readings) reads nothing more."""
    raw = driver(conn)
    if raw is not None:
        return run(raw, _RAW_ANY, (tenant,)).fetchone() is not None
    return conn.execute(_ANY, {"b_tenant": tenant}).first() is not None


@lru_cache(maxsize=1024)
def _selection_test(text: str, terms: TermMap) -> TypeSelection:
    """The test of a type selection with `;` (all of these types), parsed once per text and @context."""
    return parse_type_selection(text, terms)


def entity_matches(items: list[dict[str, Any]] | None, entity_id: str, types: list[str],
                   terms: TermMap | None = None) -> bool:
    if not items:
        return True
    for item in items:
        if item.get("type"):
            if item["type"] not in types:
                continue
        elif item.get("types") is not None and not any(x in types for x in item["types"]):
            continue
        elif item.get("selection") and terms is not None:
            selection = _selection_test(item["selection"], terms)
            if selection.test is not None and not selection.test(types):
                continue
        if item.get("id") and item["id"] != entity_id:
            continue
        if item.get("idPattern") and not _id_matches(item["idPattern"], entity_id):
            continue
        return True
    return False


def _id_matches(pattern: str, entity_id: str) -> bool:
    """The whole id matches the subscription's idPattern, run on RE2 (wecity.core.patterns). A pattern
    stored before patterns were checked with RE2 (a lookahead, say) matches nothing rather than failing
    the write that is being matched."""
    try:
        return compile_pattern(pattern).fullmatch(entity_id)
    except BadPattern:
        return False


def emit_change(conn: Connection, env: Env, entity: Stored, changed: set[str], *, deleted: bool = False) -> None:
    """Other platforms (the case engine's sensor rules) hear of every change, in this transaction."""
    env.events.emit("context.entity_changed", conn, tenant=env.tenant, now=env.now, terms=env.store.core,
                entity=entity, changed=changed, deleted=deleted)


def change_kinds(changed: set[str], previous: dict[str, Any] | None, *, created: bool, deleted: bool,
                 trigger: str | None) -> dict[str, str]:
    """What happened to each attribute (attributeCreated / Updated / Deleted); when the entity goes,
    `changed` names its attributes, all deleted with it."""
    if deleted:
        return dict.fromkeys(changed, "attributeDeleted")
    if trigger == "attributeDeleted":
        return dict.fromkeys(changed, "attributeDeleted")
    if created:
        return dict.fromkeys(changed, "attributeCreated")
    if previous is None:
        return dict.fromkeys(changed, "attributeUpdated")
    return {iri: ("attributeUpdated" if iri in previous else "attributeCreated") for iri in changed}


def _fires(triggers: Any, watched: list[str] | None, kinds: dict[str, str], entity: Stored, *,
           created: bool, deleted: bool) -> bool:
    relevant = {iri: k for iri, k in kinds.items() if iri in watched} if watched else kinds
    if deleted:
        return "entityDeleted" in triggers or ("attributeDeleted" in triggers and bool(relevant))
    relevant = {iri: k for iri, k in kinds.items() if iri in watched} if watched else kinds
    if created and "entityCreated" in triggers and (not watched or any(w in entity.attrs for w in watched)):
        return True
    if not created and relevant and "entityUpdated" in triggers:
        return True
    return any(k in triggers for k in relevant.values())


def on_change(conn: Connection, env: Env, entity: Stored, changed: set[str], *, deleted: bool = False,
              trigger: str | None = None, previous: dict[str, Any] | None = None, created: bool = False) -> int:
    """Queue a notification for every subscription the change triggers; returns how many.

    `previous` holds the attributes as they were before the change (for attributeCreated against
    attributeUpdated, and for showChanges); `created` says the entity is new."""
    emit_change(conn, env, entity, changed, deleted=deleted)
    if not has_any(conn, env.tenant):
        return 0
    rows = conn.execute(_ACTIVE, {"b_tenant": env.tenant}).all()
    if not rows:
        return 0
    kinds = change_kinds(set(entity.attrs) if deleted else changed, previous, created=created, deleted=deleted,
                         trigger=trigger)
    sent = 0
    for row in rows:
        sub = row.body
        if row.expires_at is not None and row.expires_at <= env.now:
            continue
        triggers = sub.get("notificationTrigger") or DEFAULT_TRIGGERS
        if not _fires(triggers, sub.get("_watched"), kinds, entity, created=created, deleted=deleted):
            continue
        terms = env.subscription_terms(conn, row, row.context)
        note_terms = env.subscription_terms(conn, row, notification.context_of(row))
        if terms is None or note_terms is None:
            continue
        if not entity_matches(sub.get("_entities"), entity.id, entity.types, terms):
            continue
        if not deleted and not filters_hold(conn, env, row, entity, terms):
            continue
        if row.throttling and row.last_triggered is not None and \
                (env.now - row.last_triggered).total_seconds() < row.throttling:
            continue
        change = notification.Change(kinds=kinds, previous=previous or {}, deleted=deleted, now=env.now)
        data = notification.entities(sub, [(entity, change)], note_terms,
                                     partial(entities_by_id, conn, env.tenant))
        if data:
            enqueue(conn, env, row, data)
            sent += 1
    return sent


def filters_hold(conn: Connection, env: Env, row: Any, entity: Stored, terms: TermMap | None = None) -> bool:
    """The subscription `row`'s q and geoQ on the entity as it is now (a deleted one is not judged);
    `terms`, the term map of the subscription's @context when the caller has it already."""
    sub = row.body
    if not sub.get("q") and not sub.get("geoQ"):
        return True
    terms = terms or env.subscription_terms(conn, row, row.context)
    if terms is None:
        return False
    if sub.get("q") and not _q_holds(conn, env.tenant, compile_stored_q(unquote(sub["q"]), terms), entity):
        return False
    return not (sub.get("geoQ") and not _geo_matches(sub["geoQ"], terms, entity))


def _q_holds(conn: Connection, tenant: str, q: Any, entity: Stored) -> bool:
    """`q` on the changed entity; linked-entity terms (`rel{attr}`, 4.9) read their targets here."""

    def resolve(ids: list[str]) -> list[tuple[list[str], dict[str, Any]]]:
        found = entities_by_id(conn, tenant, ids)
        return [(s.types, s.attrs) for s in (found.get(i) for i in ids) if s is not None]

    with linked_entities(resolve):
        return bool(q(entity.attrs))


def _geo_matches(geo: dict[str, Any], terms: TermMap, entity: Stored) -> bool:
    query = parse_geoq(geo, terms.expand, required=False)
    if query is None:  # stored before an incomplete geoQ was refused: it narrows nothing
        return True
    attr = entity.attrs.get(query.geoproperty)
    return attr is not None and any(query.matches(i.get("value")) for i in instances(attr))


def enqueue(conn: Connection, env: Env, row: Any, data: list[dict[str, Any]], *, note_type: str = "Notification",
            extra: dict[str, Any] | None = None) -> None:
    """Put one notification of `row` carrying `data` in the outbox, in the caller's transaction; a
    ContextSourceNotification (5.3.2) has its own `note_type` and a triggerReason in `extra`."""
    note = row.body.get("notification", {})
    endpoint = note["endpoint"]
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": note_type,
                            "subscriptionId": row.subscription_id, "notifiedAt": now_text(env.now), "data": data,
                            **(extra or {})}
    # An MQTT endpoint's password stays with the subscription: the outbox (logged, listed) has it masked.
    payload = {"tenant": env.tenant, "subscriptionId": row.subscription_id, "notification": body,
               "accept": endpoint.get("accept", "application/json"), "context": notification.context_of(row),
               "receiverInfo": endpoint.get("receiverInfo") or []}
    if endpoint.get("notifierInfo"):
        payload["notifierInfo"] = endpoint["notifierInfo"]
    outbox.enqueue(conn, channel=CHANNEL, target=mqttnotify.masked(endpoint["uri"]), now=env.now, payload=payload)
    conn.execute(t.update().where(t.c.pk == row.pk).values(last_triggered=env.now))
