"""Every case the public sees is also an NGSI-LD entity of type `ServiceRequest`, so FIWARE tools can query
the city's cases and subscribe to their changes through the context broker. An enterprise's 诉求 is not
one (`queries.PUBLISHED`); an entity kept from before is deleted when its case is next written or backfilled.

The entity follows the Smart Data Models `Open311_ServiceRequest` model (dataModel.IssueTracking): the
Open311 attribute names (`service_request_id`, `service_code`, `service_name`, `description`, `status`,
`requested_datetime`, `updated_datetime`, `expected_datetime`, `agency_responsible`, `address_string`,
`location`), plus `areaServed` and, for a case merged into another, the Relationship `mergedInto`. It
shows exactly what the public case page shows (`queries._public_view`) and nothing about the reporters:
no name, phone, e-mail, device, account or tracking code.

The runner keeps the entities in step from the case events (`consume`, every PUBLISH_SECONDS), not the
case engine's own transactions: intake is the platform's hot path and a broker write costs more than the
intake's own. Each status an event moved a case to is written in turn, at the event's time, so a
subscriber hears every step (returned, then dispatched again) and the temporal API keeps each one even when
both happened between two runs; the steps of one instant (the intake's submitted-and-dispatched) are one. Writes go through the broker's own batch upsert: the entity, its attribute
history and the notifications of the subscriptions it meets. Only the attributes whose value changed are
written, so a subscription watching `status` hears of status changes only. The broker refuses writes to
these entities through its API (`Registry.own_entities`, `wecity.context.owned`). The change is told to
nobody else: the events passed are empty, so sensor rules never see a case's own entity (a rule on
`ServiceRequest` would otherwise open cases from cases).
"""
from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from wecity.cases.models import cases
from wecity.cases.queries import PUBLISHED, _case_select
from wecity.context import service as context
from wecity.context.entity import Entity, normalize_entity, now_text
from wecity.context.ldcontext import ContextStore
from wecity.context.models import contexts as contexts_table
from wecity.core.registry import Events

ENTITY_TYPE = "ServiceRequest"
ID_PREFIX = f"urn:ngsi-ld:{ENTITY_TYPE}:"
TENANT = ""  # the default tenant
OWNER = "cases"
# Stamped on every change of what the entity shows; not compared (it would always differ).
UPDATED = "updated_datetime"
_PAYLOAD_KEYS = ("type", "value", "object", "languageMap")
_CHUNK = 500

# The @context store of each database's app (the web app shares its own, which knows every hosted and
# fetched context); elsewhere (the runner, a command) one reading contexts from the database, never the
# network. A subscription's @context is needed to tell whether a change meets it.
_stores: weakref.WeakKeyDictionary[Engine, ContextStore] = weakref.WeakKeyDictionary()


def use_store(engine: Engine, store: ContextStore) -> None:
    _stores[engine] = store


# The connection a publish runs on, for the store's reads of a context it does not hold yet (the same
# transaction: a second connection could wait for the writer's own lock).
_running = threading.local()


def _from_table(url: str) -> Any:
    conn: Connection | None = getattr(_running, "conn", None)
    body = None if conn is None else conn.execute(
        sa.select(contexts_table.c.body).where(contexts_table.c.url == url)).scalar()
    if body is None:
        raise LookupError(url)
    return body


@contextmanager
def _lent(conn: Connection) -> Iterator[ContextStore]:
    """The @context store, reading any context it does not hold on `conn` while the block runs."""
    _running.conn = conn
    try:
        yield _store_for(conn)
    finally:
        _running.conn = None


def _store_for(conn: Connection) -> ContextStore:
    store = _stores.get(conn.engine)
    if store is None:
        store = _stores.setdefault(conn.engine, ContextStore(fetcher=_from_table))
    return store


def entity_id(case_id: int) -> str:
    return f"{ID_PREFIX}{case_id}"


def _time(at: datetime | None) -> dict[str, Any] | None:
    return None if at is None else {"type": "Property", "value": {"@type": "DateTime", "@value": now_text(at)}}


def _text(value: Any) -> dict[str, Any] | None:
    return None if value in (None, "") else {"type": "Property", "value": value}


def _both(zh: str | None, en: str | None) -> dict[str, Any] | None:
    names = {k: v for k, v in (("zh", zh), ("en", en)) if v}
    return {"type": "LanguageProperty", "languageMap": names} if names else None


def body(row: Any) -> dict[str, Any]:
    """The entity (normalized NGSI-LD, core @context) of a case row of `queries._case_select`: the public
    view's fields, no personal data."""
    attrs: dict[str, dict[str, Any] | None] = {
        "service_request_id": _text(str(row.id)),
        "service_code": _text(row.category_code),
        "service_name": _both(row.category_zh, row.category_en),
        "status": _text(row.status),
        "description": _text(row.description),
        "requested_datetime": _time(row.created_at),
        "expected_datetime": _time(row.resolve_due_at),
        "agency_responsible": _both(row.department_zh, row.department_en),
        "areaServed": _both(row.area_zh, row.area_en),
        "address_string": _text(row.address),
        "location": None if row.lat is None or row.long is None else {
            "type": "GeoProperty", "value": {"type": "Point", "coordinates": [row.long, row.lat]}},
        "mergedInto": None if row.merged_into_id is None else {
            "type": "Relationship", "object": entity_id(row.merged_into_id)},
    }
    return {"id": entity_id(row.id), "type": ENTITY_TYPE, **{k: v for k, v in attrs.items() if v is not None}}


def _payload(instance: Any) -> Any:
    if isinstance(instance, dict):
        return {k: instance[k] for k in _PAYLOAD_KEYS if k in instance}
    return [_payload(i) for i in instance]


PUBLISH_SECONDS = 2.0  # subscribers hear of a case's change this long after it at most (when keeping up)
CURSOR = "ngsild"
BATCH = 500


def consume(conn: Connection, *, now: datetime, batch: int = BATCH) -> int:
    """Write the entities of the cases whose events follow the cursor; returns how many events were taken."""
    from wecity.cases import event_feed

    events = event_feed.take(conn, CURSOR, now=now, batch=batch)
    by_case: dict[int, list[Any]] = {}
    for e in events:
        by_case.setdefault(e.case_id, []).append(e)
    # Every entity the batch may write, locked at once in one order (PostgreSQL): case by case, the buckets
    # would be taken in the cases' order, and a batch upsert taking them in its own would deadlock with it.
    context.lock_ids(conn, TENANT, [entity_id(case_id) for case_id in by_case])
    with _lent(conn) as store:
        _withdraw(conn, context.Env(TENANT, now, store, Events()), list(by_case))
        for row in conn.execute(_published().where(cases.c.id.in_(list(by_case)))) if by_case else ():
            steps = _status_steps(by_case[row.id])
            for e in steps:
                _publish_rows(conn, context.Env(TENANT, e.at, store, Events()), [row], e.at, status=e.to_status)
            if not steps or steps[-1].to_status != row.status:
                _publish_rows(conn, context.Env(TENANT, now, store, Events()), [row], now)
    return len(events)


def _status_steps(events: list[Any]) -> list[Any]:
    """The statuses the events moved a case to, in order, each at its event's time; of several at the same
    instant (one transaction: the intake's submitted-and-dispatched) only the last, which is what anyone
    could have seen. The last step shows the case as it is now, so it needs no write of its own after it."""
    steps = [e for e in events if e.to_status]
    return [e for i, e in enumerate(steps) if i + 1 == len(steps) or steps[i + 1].at != e.at]


def publish_many(conn: Connection, case_ids: Iterable[int], now: datetime) -> int:
    """Bring the entities of these cases in step; how many were created or changed."""
    ids = list(dict.fromkeys(case_ids))
    written = 0
    context.lock_ids(conn, TENANT, [entity_id(i) for i in ids])  # all at once, in one order (see `consume`)
    with _lent(conn) as store:
        env = context.Env(TENANT, now, store, Events())
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start:start + _CHUNK]
            _withdraw(conn, env, chunk)
            rows = conn.execute(_published().where(cases.c.id.in_(chunk))).all()
            written += _publish_rows(conn, env, rows, now)
    return written


def _published() -> Any:
    """The cases the public sees (an enterprise's 诉求 is not one of them), as the public case page shows them."""
    return _case_select().where(PUBLISHED)


def _withdraw(conn: Connection, env: context.Env, case_ids: list[int]) -> None:
    """Delete the entities of those of these cases the public does not see (kept from before they were
    left out, or a case that became unpublished)."""
    hidden = list(conn.execute(sa.select(cases.c.id).where(cases.c.id.in_(case_ids), sa.not_(PUBLISHED))).scalars())
    if not hidden:
        return
    held = context.entities_by_id(conn, TENANT, [entity_id(i) for i in hidden])
    for held_id in held:
        context.delete(conn, env, held_id)


def _publish_rows(conn: Connection, env: context.Env, rows: Iterable[Any], now: datetime, *,
                  status: str | None = None) -> int:
    """Write what differs between these cases (with `status` in place of theirs, for a step between two
    runs) and their entities; how many entities were written."""
    terms = env.store.core
    updated_iri = terms.expand(UPDATED)
    written = 0
    rows = list(rows)
    # All of them locked at once, in one order, before the attributes removed one by one and the batch.
    context.lock_ids(conn, TENANT, [entity_id(r.id) for r in rows])
    found = context.entities_by_id(conn, TENANT, [entity_id(r.id) for r in rows])
    items: list[Entity] = []
    for row in rows:
        shown = body(row)
        if status is not None:
            shown["status"] = _text(status)
        wanted = normalize_entity(shown, terms, now)
        old = found.get(wanted.id)
        if old is None:
            changed = wanted.attrs
        else:
            changed = {iri: a for iri, a in wanted.attrs.items()
                       if iri not in old.attrs or _payload(old.attrs[iri]) != _payload(a)}
            for iri in set(old.attrs) - set(wanted.attrs) - {updated_iri}:
                context.delete_attr(conn, env, wanted.id, iri, delete_all=True)
            if not changed:
                continue
        changed[updated_iri] = normalize_entity({"id": wanted.id, "type": ENTITY_TYPE,
                                                 UPDATED: _time(now)}, terms, now).attrs[updated_iri]
        items.append(Entity(wanted.id, wanted.types, changed))
    if items:
        context.batch_upsert(conn, env, items, mode="update")
        written += len(items)
    return written


def publish_all(conn: Connection, now: datetime, *, after_id: int = 0, limit: int = 2000) -> tuple[int, int]:
    """The backfill (`wecity cases publish-ngsild`): the next `limit` cases by id after `after_id`; returns
    (the last case id seen, how many entities were written), (after_id, 0) when none is left."""
    ids = list(conn.execute(sa.select(cases.c.id).where(cases.c.id > after_id).order_by(cases.c.id).limit(limit))
               .scalars())
    if not ids:
        return after_id, 0
    return ids[-1], publish_many(conn, ids, now)
