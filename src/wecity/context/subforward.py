"""Subscriptions forwarded to context sources (GS CIM 009 clauses 5.8.1.4, 5.8.5.4, 5.8.6).

A subscription made here may be about entities that registered context sources hold. Unless it says
`localOnly`, the broker then:

- sends each matching source (a registration that supports `createSubscription`) a reduced copy: the
  subscription's entities, watched attributes and filters under an id of the broker's own, notifying
  this broker (`/ngsi-ld/ex/remote-notify`), never the original subscriber, and without `q` when
  `splitEntities` asks for the entities to be judged whole here;
- keeps an internal subscription to context source registrations (5.11.2) for the same entities, so that
  a source registered later gets its copy too, and one that goes away has its copy withdrawn;
- on delete, deletes the copies at the sources (5.8.5.4) and the internal subscription.

A notification from a source names the copy's id; it is turned into a notification of the subscription
the copy stands for (`receive`): with `splitEntities`, each entity is merged with what this broker holds
of it and judged again by the subscription's `q` and `geoQ`.

The copies are sent and withdrawn by the runner's jobs (`JOB_FORWARD`, `JOB_WITHDRAW`), queued in the
transaction that creates or deletes the subscription: an answer to the subscriber never waits for a
source, and a copy is not lost to a source that is down for a while (the job is retried).

The copy's id is made here at random and known only to this broker and that source: it is what lets
a notification in, as the secret in a webhook's URL does (the source holds no API key of this broker).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import matching, notification, subscriptions
from wecity.context.env import Env, Stored
from wecity.context.errors import bad_request_data, resource_not_found
from wecity.context.federation import Registration, parse_registration
from wecity.context.forwarding import Outgoing
from wecity.context.ldcontext import TermMap
from wecity.context.models import forwarded_subscriptions as ft
from wecity.context.models import subscriptions as st
from wecity.context.rows import entities_by_id
from wecity.core.context import AppContext
from wecity.core.jobs import enqueue_job

log = logging.getLogger(__name__)

NOTIFY_PATH = "/ngsi-ld/ex/remote-notify"
JOB_FORWARD = "context.forward_subscription"
JOB_WITHDRAW = "context.withdraw_subscription"
# Marks an internal subscription to registrations: the id of the subscription it finds sources for.
WATCHES = "_forwards"
# Members of a subscription the copy carries as they are (q apart: see `reduced_copy`).
_COPIED = ("entities", "watchedAttributes", "notificationTrigger", "geoQ", "scopeQ", "lang", "datasetId",
           "expiresAt", "throttling", "timeInterval", "isActive", "splitEntities")
_NOTIFICATION_COPIED = ("attributes", "sysAttrs", "pick", "omit")


def forwards(sub: dict[str, Any]) -> bool:
    return sub.get("localOnly") is not True


def internal_id(tenant: str, sub_id: str) -> str:
    """The id of the internal subscription to registrations that serves `sub_id`: derived from it, so
    that it is found again without being stored twice."""
    return f"urn:ngsi-ld:Subscription:sources:{uuid.uuid5(uuid.NAMESPACE_URL, f'{tenant}|{sub_id}')}"


def _items(sub: dict[str, Any]) -> list[dict[str, Any]]:
    return sub.get("_entities") or [{}]  # watchedAttributes alone: any entity


def covers(reg: Registration, sub: dict[str, Any]) -> bool:
    """Whether the registration takes subscriptions and holds some of the entities the subscription is
    about (a type selection is not held against it: the source judges it)."""
    if not reg.supports("createSubscription"):
        return False
    for item in _items(sub):
        types = [item["type"]] if item.get("type") else None if item.get("selection") else item.get("types")
        if reg.match(item.get("id"), types, sub.get("_watched")) is not None:
            return True
    return False


def reduced_copy(sub: dict[str, Any], remote_id: str, notify_uri: str) -> dict[str, Any]:
    """What a source is asked to subscribe to: the subscription's selection and filters, notifying this
    broker in the normalized form. With splitEntities the source holds only part of each entity, so `q`
    is judged here on the whole entity, not there on a part (5.8.6)."""
    copy: dict[str, Any] = {"id": remote_id, "type": "Subscription"}
    copy.update({k: sub[k] for k in _COPIED if k in sub})
    if sub.get("q") and not sub.get("splitEntities"):
        copy["q"] = sub["q"]
    note = sub.get("notification") or {}
    copy["notification"] = {"endpoint": {"uri": notify_uri, "accept": "application/json"}, "format": "normalized",
                            **{k: note[k] for k in _NOTIFICATION_COPIED if k in note}}
    return copy


# -- in the transaction of the subscription's write ----------------------------------------------------

NOTIFY_URI = "_notify_uri"  # kept in a forwarding subscription: where its copies notify this broker


def prepare(sub: dict[str, Any], notify_uri: str) -> None:
    """Before a new subscription is stored: where its copies, if it ever has some, will notify."""
    if forwards(sub):
        sub[NOTIFY_URI] = notify_uri


def on_created(conn: Connection, env: Env, sub: dict[str, Any], context: Any,
               registrations: Iterable[Registration]) -> int:
    """After `sub` (prepared) is stored: a copy for each source that holds some of its entities, with the
    internal subscription to registrations that stands for them. Returns how many sources it goes to."""
    if not forwards(sub) or not sub.get(NOTIFY_URI):
        return 0
    sent = 0
    for reg in registrations:
        if covers(reg, sub):
            _plan_copy(conn, env, sub, context, reg)
            sent += 1
    return sent


def _ensure_watcher(conn: Connection, env: Env, sub: dict[str, Any], context: Any) -> None:
    """The internal subscription to registrations for the entities of `sub` (5.8.1.4, 5.11.2): shown with
    the others, it says that the broker follows the sources of those entities."""
    watcher_id = internal_id(env.tenant, sub["id"])
    if conn.execute(sa.select(st.c.pk).where(st.c.tenant == env.tenant, st.c.subscription_id == watcher_id)).first():
        return
    watcher = {"id": watcher_id, "type": "Subscription",
               "description": f"finds the context sources of subscription {sub['id']}",
               "notification": {"endpoint": {"uri": sub[NOTIFY_URI], "accept": "application/json"}},
               WATCHES: sub["id"]}
    for key in ("entities", "_entities", "watchedAttributes", "_watched"):
        if key in sub:
            watcher[key] = sub[key]
    subscriptions.create(conn, env, watcher, context, kind=subscriptions.CSOURCE)


def _plan_copy(conn: Connection, env: Env, sub: dict[str, Any], context: Any, reg: Registration) -> None:
    _ensure_watcher(conn, env, sub, context)
    remote_id = f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
    conn.execute(ft.insert().values(tenant=env.tenant, subscription_id=sub["id"], remote_id=remote_id,
                                    registration_id=reg.id, endpoint=reg.endpoint, created_at=env.now))
    enqueue_job(conn, name=JOB_FORWARD, args={"tenant": env.tenant, "remote_id": remote_id,
                                              "notify_uri": sub[NOTIFY_URI]}, now=env.now)


def _withdraw(conn: Connection, env: Env, rows: Iterable[Any]) -> None:
    for row in rows:
        conn.execute(ft.delete().where(ft.c.pk == row.pk))
        enqueue_job(conn, name=JOB_WITHDRAW, args={"tenant": row.tenant, "remote_id": row.remote_id,
                                                   "registration_id": row.registration_id, "endpoint": row.endpoint},
                    now=env.now)


def on_updated(conn: Connection, env: Env, sub_id: str, registrations: Iterable[Registration],
               notify_uri: str) -> None:
    """After `sub_id` is changed: each copy is replaced by one of the subscription as it is now (withdrawn,
    and a new copy sent: a PATCH could not take away a member the change removed, `q` say); a source that
    now holds its entities gets its first copy; and with `localOnly` there are none any more."""
    row = conn.execute(sa.select(st.c.pk, st.c.body, st.c.context).where(
        st.c.tenant == env.tenant, st.c.subscription_id == sub_id, st.c.kind == subscriptions.ENTITY)).first()
    if row is None:
        return
    sub = dict(row.body)
    copies = conn.execute(sa.select(ft).where(ft.c.tenant == env.tenant, ft.c.subscription_id == sub_id)).all()
    _withdraw(conn, env, copies)
    if not forwards(sub):
        conn.execute(st.delete().where(st.c.tenant == env.tenant, st.c.kind == subscriptions.CSOURCE,
                                       st.c.subscription_id == internal_id(env.tenant, sub_id)))
        return
    if not sub.get(NOTIFY_URI):  # made local only at first
        sub[NOTIFY_URI] = notify_uri
        conn.execute(st.update().where(st.c.pk == row.pk).values(body=sub))
    for reg in registrations:
        if covers(reg, sub):
            _plan_copy(conn, env, sub, row.context, reg)


def on_deleted(conn: Connection, env: Env, sub_id: str) -> None:
    """After a subscription is deleted: its copies withdrawn and its internal subscription gone."""
    _withdraw(conn, env, conn.execute(sa.select(ft).where(ft.c.tenant == env.tenant,
                                                           ft.c.subscription_id == sub_id)).all())
    conn.execute(st.delete().where(st.c.tenant == env.tenant, st.c.kind == subscriptions.CSOURCE,
                                   st.c.subscription_id == internal_id(env.tenant, sub_id)))


def on_registration(conn: Connection, env: Env, reg_id: str, registration: dict[str, Any] | None) -> None:
    """A registration was created, changed (`registration` as it is now) or removed (None): each
    forwarding subscription of the tenant whose entities it now holds gets a copy there, one whose
    entities it no longer holds has its copy withdrawn. Registrations change seldom; subscriptions are
    read only then."""
    reg = parse_registration(registration, None) if registration is not None else None
    copies = {row.subscription_id: row for row in conn.execute(
        sa.select(ft).where(ft.c.tenant == env.tenant, ft.c.registration_id == reg_id))}
    for row in conn.execute(sa.select(st.c.subscription_id, st.c.body, st.c.context).where(
            st.c.tenant == env.tenant, st.c.kind == subscriptions.ENTITY)):
        sub = row.body
        if not forwards(sub) or not sub.get(NOTIFY_URI):
            continue
        held = reg is not None and covers(reg, sub)
        if held and row.subscription_id not in copies:
            assert reg is not None
            _plan_copy(conn, env, sub, row.context, reg)
        elif not held and row.subscription_id in copies:
            _withdraw(conn, env, [copies[row.subscription_id]])


# -- the runner's jobs ---------------------------------------------------------------------------------

async def _registration(ctx: AppContext, tenant: str, reg_id: str) -> Registration | None:
    from wecity.context.distributed import cache_of

    cache = cache_of(ctx)
    regs = await cache.for_tenant(tenant) if cache is not None else ()
    return next((r for r in regs if r.id == reg_id), None)


def _forwarder(ctx: AppContext) -> Any:
    from wecity.context.tasks import ensure_delivery, ensure_forwarding

    if "ngsild_forwarder" not in ctx.services:  # a runner of its own, without the web app's start-up
        ensure_delivery(ctx)
        ensure_forwarding(ctx)
    return ctx.services["ngsild_forwarder"]


async def forward(ctx: AppContext, args: dict[str, Any]) -> None:
    """Send one copy (JOB_FORWARD). Nothing to do when it was withdrawn before it left; a source that
    refuses it is logged and not asked again, one that cannot be reached is tried again."""
    tenant, remote_id = args["tenant"], args["remote_id"]

    def read(conn: Connection) -> Any:
        return conn.execute(sa.select(ft.c.registration_id, st.c.body, st.c.context)
                            .select_from(ft.join(st, sa.and_(st.c.tenant == ft.c.tenant,
                                                             st.c.subscription_id == ft.c.subscription_id,
                                                             st.c.kind == subscriptions.ENTITY)))
                            .where(ft.c.remote_id == remote_id)).first()

    found = await ctx.db.read(read)
    if found is None:
        return
    forwarder = _forwarder(ctx)
    reg = await _registration(ctx, tenant, found.registration_id)
    if reg is None:
        return  # the registration went meanwhile (its copies are withdrawn with it)
    body = reduced_copy(found.body, remote_id, args["notify_uri"])
    answer = await forwarder.send(Outgoing(reg, "POST", "/subscriptions", body=body), {}, found.context)
    if answer.ok or answer.status == 409:  # 409: sent before, by an attempt whose answer was lost
        return
    if answer.status is not None and 400 <= answer.status < 500 and answer.status != 429:
        log.warning("context source %s refused subscription copy %s: %s %s", reg.id, remote_id, answer.status,
                    answer.body)
        return
    raise RuntimeError(f"context source {reg.id} did not take subscription copy {remote_id} ({answer.status})")


async def withdraw(ctx: AppContext, args: dict[str, Any]) -> None:
    """Delete one copy at its source (JOB_WITHDRAW); gone already (404) is done too."""
    forwarder = _forwarder(ctx)
    reg = await _registration(ctx, args["tenant"], args["registration_id"]) or Registration(
        id=args["registration_id"], endpoint=args["endpoint"], mode="inclusive", operations=frozenset(),
        information=())
    answer = await forwarder.send(Outgoing(reg, "DELETE", "/subscriptions/" + quote(args["remote_id"], safe="")),
                                  {}, None)
    if not (answer.ok or answer.status == 404):
        raise RuntimeError(f"context source {reg.id} did not delete subscription copy {args['remote_id']} "
                           f"({answer.status})")


# -- notifications from sources ------------------------------------------------------------------------

def copy_exists(conn: Connection, remote_id: str) -> bool:
    """Whether `remote_id` names a subscription copy this broker gave a source (the route's first check)."""
    return conn.execute(sa.select(ft.c.remote_id).where(ft.c.remote_id == remote_id)).first() is not None


def receive(conn: Connection, env_for: Any, note: Any, terms: TermMap) -> int:
    """A notification a source sent for a copy: queued as a notification of the subscription the copy
    stands for, under that subscription's id. `env_for(tenant)` gives the Env of the copy's tenant.
    Returns how many entities it carries (none when all were filtered out)."""
    from wecity.context.distributed import merge, to_stored

    if not isinstance(note, dict) or not isinstance(note.get("subscriptionId"), str) \
            or not isinstance(note.get("data"), list):
        raise bad_request_data("a notification needs subscriptionId and a data list",
                               "通知需要 subscriptionId 和 data 列表")
    copy = conn.execute(sa.select(ft).where(ft.c.remote_id == note["subscriptionId"])).first()
    row = None if copy is None else conn.execute(sa.select(st).where(
        st.c.tenant == copy.tenant, st.c.subscription_id == copy.subscription_id,
        st.c.kind == subscriptions.ENTITY)).first()
    if copy is None or row is None:
        raise resource_not_found(f"no subscription copy {note['subscriptionId']}",
                                 f"没有订阅副本 {note['subscriptionId']}")
    env: Env = env_for(copy.tenant)
    if not row.is_active or (row.expires_at is not None and row.expires_at <= env.now):
        return 0  # paused or expired here, whatever the source's copy says
    received = [s for s in (to_stored(raw, terms, env.now) for raw in note["data"]) if s is not None]
    sub = row.body
    entities: list[Stored] = received
    if sub.get("splitEntities"):
        held = entities_by_id(conn, env.tenant, [s.id for s in received])
        entities = merge([held[s.id] for s in received if s.id in held], received)
        entities = [s for s in entities if matching.filters_hold(conn, env, row, s)]
    if not entities:
        return 0
    note_terms = env.subscription_terms(conn, row, notification.context_of(row))
    if note_terms is None:
        return 0
    change = notification.Change(now=env.now)
    data = notification.entities(sub, [(s, change) for s in entities], note_terms,
                                 lambda ids: entities_by_id(conn, env.tenant, ids))
    matching.enqueue(conn, env, row, data)
    return len(data)
