"""The context broker's background work: the "ngsild" outbox channel that delivers notifications, and
the periodic notifications of subscriptions with a timeInterval."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa

from wecity.context import periodic
from wecity.context.delivery import make_deliver
from wecity.context.ldcontext import ContextStore
from wecity.context.models import contexts
from wecity.context.subscriptions import CHANNEL
from wecity.core.context import AppContext
from wecity.core.runner import wake

PERIODIC_CHECK_SECONDS = 1.0  # how often due periodic subscriptions are looked for


def ensure_delivery(ctx: AppContext) -> None:
    """An HTTP client for notifications (unless one was injected) and the channel, on this app's registry."""
    if "ngsild_http" not in ctx.services:
        ctx.services["ngsild_http"] = httpx.AsyncClient(timeout=10.0)
        ctx.services["ngsild_http_owned"] = True
    ctx.registry.add_channel(CHANNEL, make_deliver(ctx))


async def close_delivery(ctx: AppContext) -> None:
    if ctx.services.pop("ngsild_http_owned", False):
        await ctx.services.pop("ngsild_http").aclose()


def _fetch(url: str) -> Any:
    """Fetch a user @context once; the store keeps it (and the database, across restarts)."""
    response = httpx.get(url, headers={"Accept": "application/ld+json, application/json"}, timeout=10.0,
                         follow_redirects=True)
    response.raise_for_status()
    return response.json()


def _load_contexts(conn: sa.Connection) -> list[Any]:
    return list(conn.execute(sa.select(contexts.c.context_id, contexts.c.url, contexts.c.kind, contexts.c.body)))


async def load_store(ctx: AppContext) -> ContextStore:
    """The @context store, with the contexts the database keeps (the app's, or a runner's on its own)."""
    store = ContextStore(fetcher=ctx.services.get("ngsild_fetcher", _fetch))
    for row in await ctx.db.read(_load_contexts):
        store.documents[row.url] = row.body
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


async def on_runner_start(ctx: AppContext) -> None:
    ensure_delivery(ctx)


async def on_runner_stop(ctx: AppContext) -> None:
    await close_delivery(ctx)
