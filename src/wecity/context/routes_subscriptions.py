"""NGSI-LD subscription endpoints: create, list, retrieve, update, delete."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import subscriptions
from wecity.context.entity import check_entity_id
from wecity.context.protocol import env_of, incoming, no_content, paging, respond, tenant_of
from wecity.context.routes_entities import URI_SAFE
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/subscriptions", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/subscriptions/"


@router.post("", status_code=201, summary="Create a subscription")
@router.post("/", include_in_schema=False)
async def create_subscription(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    sub = subscriptions.validate(data.body, data.terms)
    sub_id = await ctx.db.write(subscriptions.create, env, sub, data.context)
    return Response(status_code=201, headers={"Location": BASE + quote(sub_id, safe=URI_SAFE)})


@router.get("", summary="List subscriptions")
@router.get("/", include_in_schema=False)
async def list_subscriptions(request: Request, ctx: Ctx) -> Response:
    limit, offset, count = paging(request)
    rows, total = await ctx.db.read(lambda conn: subscriptions.list_all(conn, tenant_of(request), ctx.clock.now(),
                                                                         limit=limit, offset=offset))
    headers = {"NGSILD-Results-Count": str(total)} if count else None
    return respond(request, rows, None, headers=headers)


@router.get("/{sub_id}", summary="Retrieve a subscription")
async def retrieve_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    body = await ctx.db.read(subscriptions.get, tenant_of(request), sub_id, ctx.clock.now())
    return respond(request, body, None)


@router.patch("/{sub_id}", status_code=204, summary="Update a subscription")
async def update_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    fragment = subscriptions.validate(data.body, data.terms, partial=True)
    await ctx.db.write(subscriptions.update, env, sub_id, fragment)
    return no_content()


@router.delete("/{sub_id}", status_code=204, summary="Delete a subscription")
async def delete_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    await ctx.db.write(subscriptions.delete, tenant_of(request), sub_id)
    return no_content()
