"""Where context sources send the notifications of the subscription copies this broker gave them
(`wecity.context.subforward`): `POST /ngsi-ld/ex/remote-notify`.

Not behind the API's credentials: a source holds no key of this broker. What lets a notification in is
the copy's id, made at random by this broker and told only to that source (as a webhook's secret URL);
an unknown id is a 404 before anything else is read. Counted per client address (WECITY_RATE_LIMIT_NGSILD_REMOTE)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import subforward
from wecity.context.env import Env
from wecity.context.errors import bad_request_data, resource_not_found
from wecity.context.protocol import incoming, read_json, store_of
from wecity.core.http import Ctx, client_address
from wecity.core.runner import wake

router = APIRouter(tags=["ngsi-ld"])


@router.post(subforward.NOTIFY_PATH, summary="A context source's notification for a forwarded subscription",
             include_in_schema=False)
async def remote_notify(request: Request, ctx: Ctx) -> Response:
    await ctx.limits.hit("ngsild_remote", client_address(request) or "-")
    # The copy's id first: an unknown caller gets its 404 before any @context it names is fetched or kept.
    body, _ = await read_json(request)
    remote_id = body.get("subscriptionId") if isinstance(body, dict) else None
    if not isinstance(remote_id, str):
        raise bad_request_data("a notification needs subscriptionId", "通知需要 subscriptionId")
    if not await ctx.db.read(lambda c: subforward.copy_exists(c, remote_id)):
        raise resource_not_found(f"no subscription copy {remote_id}", f"没有订阅副本 {remote_id}")
    data = await incoming(request, ctx)
    now = ctx.clock.now()

    def env_for(tenant: str) -> Env:
        return Env(tenant, now, store_of(ctx), ctx.registry.events, ctx.registry.owned_entities)

    if await ctx.db.write(subforward.receive, env_for, data.body, data.terms):
        wake(ctx)
    return Response(status_code=200)
