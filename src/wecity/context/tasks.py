"""The context broker's background work: the "ngsild" outbox channel that delivers notifications, and
the periodic notifications of subscriptions with a timeInterval."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import sqlalchemy as sa

from wecity.context import entitymaps, periodic, snapshots, transient
from wecity.context.delivery import make_deliver
from wecity.context.forwarding import Forwarder, RegistrationCache, RegistrationRow, new_identity
from wecity.context.ldcontext import ContextStore
from wecity.context.models import contexts, registrations
from wecity.context.mqttnotify import Publisher
from wecity.context.subscriptions import CHANNEL
from wecity.core import outbound
from wecity.core.context import AppContext
from wecity.core.outbound import OutboundPolicy
from wecity.core.runner import wake

PERIODIC_CHECK_SECONDS = 1.0  # how often due periodic subscriptions are looked for


def ensure_delivery(ctx: AppContext) -> None:
    """An HTTP client and an MQTT publisher for notifications (unless injected) and the channel, on this
    app's registry."""
    policy = OutboundPolicy.from_settings(ctx.settings)
    if "ngsild_http" not in ctx.services:
        ctx.services["ngsild_http"] = outbound.async_client(policy)
        ctx.services["ngsild_http_owned"] = True
    if "ngsild_mqtt" not in ctx.services:
        ctx.services["ngsild_mqtt"] = Publisher(policy)
    ctx.registry.add_channel(CHANNEL, make_deliver(ctx))


def ensure_forwarding(ctx: AppContext) -> None:
    """What distributed operations need (`wecity.context.distributed`): the registrations in memory (the
    registration store gives the loader as the service "ngsild_registration_loader", or its own cache)
    and a forwarder that sends through the same outbound client as notifications."""
    if "ngsild_registrations" not in ctx.services:
        loader = ctx.services.get("ngsild_registration_loader") or partial(_stored_registrations, ctx)
        ctx.services["ngsild_registrations"] = RegistrationCache(loader)
    if "ngsild_forwarder" not in ctx.services:
        policy = OutboundPolicy.from_settings(ctx.settings, max_bytes=ctx.settings.max_batch_bytes)
        ctx.services["ngsild_forwarder"] = Forwarder(ctx.services["ngsild_http"], policy, new_identity(),
                                                     max_bytes=ctx.settings.max_batch_bytes)


async def _stored_registrations(ctx: AppContext) -> list[RegistrationRow]:
    """Every registration that has not expired, in the spec form the store keeps (names expanded)."""
    now = ctx.clock.now()

    def read(conn: sa.Connection) -> list[RegistrationRow]:
        rows = conn.execute(sa.select(registrations)).all()
        return [(row.tenant, {**row.body, "mode": row.mode, "@context": row.context}, None) for row in rows
                if row.expires_at is None or row.expires_at > now]

    return await ctx.db.read(read)


async def close_delivery(ctx: AppContext) -> None:
    if ctx.services.pop("ngsild_http_owned", False):
        await ctx.services.pop("ngsild_http").aclose()
    publisher = ctx.services.pop("ngsild_mqtt", None)
    if publisher is not None:
        await publisher.close()


def context_fetcher(settings: Any) -> Callable[[str], Any]:
    """Fetch a user @context once (the store keeps it, and the database across restarts), through the
    outbound policy: never an internal address, at most WECITY_CONTEXT_MAX_BYTES. The store calls it off
    the event loop."""
    policy = OutboundPolicy.from_settings(settings)
    return partial(outbound.fetch_json, policy, accept="application/ld+json, application/json")


def _load_contexts(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(contexts.c.context_id, contexts.c.url, contexts.c.kind, contexts.c.body)))


async def load_store(ctx: AppContext) -> ContextStore:
    """The @context store, with the contexts the database keeps (the app's, or a runner's on its own)."""
    store = ContextStore(fetcher=ctx.services.get("ngsild_fetcher") or context_fetcher(ctx.settings))
    for row in await ctx.db.read(_load_contexts):
        store.keep(row.url, row.body)
    ctx.services["ngsild_contexts"] = store
    return store


async def periodic_notifications(ctx: AppContext) -> None:
    """Queue the notifications of periodic subscriptions that are due."""
    if "ngsild_contexts" not in ctx.services:
        await load_store(ctx)
    sent = await ctx.db.write(periodic.run_due, ctx.services["ngsild_contexts"], ctx.clock.now(),
                              ctx.registry.events)
    if sent:
        wake(ctx)


async def sweep_expired(ctx: AppContext) -> None:
    """Remove for good the transient entities and attribute instances that have expired (reads already
    hide them) and the EntityMaps past their expiry; mark as failed the snapshots whose fill was lost."""
    now = ctx.clock.now()
    await ctx.db.write(transient.sweep, now)
    await ctx.db.write(entitymaps.sweep, now)
    await ctx.db.write(snapshots.fail_abandoned, now)


async def on_runner_start(ctx: AppContext) -> None:
    ensure_delivery(ctx)


async def on_runner_stop(ctx: AppContext) -> None:
    await close_delivery(ctx)
