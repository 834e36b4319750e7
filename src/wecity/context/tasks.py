"""The context broker's background work: the "ngsild" outbox channel that delivers notifications, and
the periodic notifications of subscriptions with a timeInterval."""

from __future__ import annotations

import httpx

from wecity.context import periodic
from wecity.context.delivery import make_deliver
from wecity.context.subscriptions import CHANNEL
from wecity.core import outbox
from wecity.core.context import AppContext
from wecity.core.runner import register_periodic, wake

PERIODIC_CHECK_SECONDS = 1.0  # how often due periodic subscriptions are looked for


def ensure_delivery(ctx: AppContext) -> None:
    """An HTTP client for notifications (unless one was injected) and the channel bound to this context."""
    if "ngsild_http" not in ctx.services:
        ctx.services["ngsild_http"] = httpx.AsyncClient(timeout=10.0)
        ctx.services["ngsild_http_owned"] = True
    outbox.register_channel(CHANNEL, make_deliver(ctx))


async def close_delivery(ctx: AppContext) -> None:
    if ctx.services.pop("ngsild_http_owned", False):
        await ctx.services.pop("ngsild_http").aclose()


async def periodic_notifications(ctx: AppContext) -> None:
    """Queue the notifications of periodic subscriptions that are due."""
    if "ngsild_contexts" not in ctx.services:
        from wecity.context.api import load_store

        await load_store(ctx)
    sent = await ctx.db.write(periodic.run_due, ctx.services["ngsild_contexts"], ctx.clock.now())
    if sent:
        wake(ctx)


register_periodic("context.periodic_notifications", PERIODIC_CHECK_SECONDS, periodic_notifications)


async def on_runner_start(ctx: AppContext) -> None:
    ensure_delivery(ctx)


async def on_runner_stop(ctx: AppContext) -> None:
    await close_delivery(ctx)
