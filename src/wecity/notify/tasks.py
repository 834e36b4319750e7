"""Runner hooks of the notification domain: register the channels with an HTTP client."""

from __future__ import annotations

from wecity.core import outbound
from wecity.core.context import AppContext
from wecity.core.outbound import OutboundPolicy
from wecity.notify.channels import install

_OWNED = "notify.own_http_client"


async def on_runner_start(ctx: AppContext) -> None:
    # Tests (and embedders) put their own client, e.g. on httpx.MockTransport, in ctx.services.
    client = ctx.services.get("http_client")
    if client is None:
        client = outbound.async_client(OutboundPolicy.from_settings(ctx.settings))
        ctx.services["http_client"] = client
        ctx.services[_OWNED] = True
    install(ctx, client=client)


async def on_runner_stop(ctx: AppContext) -> None:
    if ctx.services.pop(_OWNED, False):
        await ctx.services.pop("http_client").aclose()
