"""Runner hooks of the notification domain: register the channels with an HTTP client."""

from __future__ import annotations

import httpx

from wecity.core.context import AppContext
from wecity.notify.channels import install

_OWNED = "notify.own_http_client"


async def on_runner_start(ctx: AppContext) -> None:
    # Tests (and embedders) put their own client, e.g. on httpx.MockTransport, in ctx.services.
    client = ctx.services.get("http_client")
    if client is None:
        client = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
        ctx.services["http_client"] = client
        ctx.services[_OWNED] = True
    install(ctx, client=client)


async def on_runner_stop(ctx: AppContext) -> None:
    if ctx.services.pop(_OWNED, False):
        await ctx.services.pop("http_client").aclose()
