"""NGSI-LD subscriptions to context source registrations (clauses 5.11, 6.10, 6.11): create, query,
retrieve, update, delete. They are subscriptions (`subscriptions.py`, kind CSOURCE) checked, stored,
counted and delivered as the others are; what they match is `csourcenotify.py`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from wecity.context import csourcenotify, subscriptions
from wecity.context.entity import check_entity_id
from wecity.context.env import Env
from wecity.context.openapi import HEADERS, PAGING, operation
from wecity.context.protocol import (
    JSON_LD,
    created,
    env_of,
    incoming,
    no_content,
    outgoing_terms,
    paging,
    respond,
    tenant_of,
)
from wecity.context.routes_entities import URI_SAFE
from wecity.context.routes_subscriptions import (
    check_endpoint,
    check_jsonld_context,
    page_links,
    preference_headers,
)
from wecity.context.subscriptions import CSOURCE
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/csourceSubscriptions", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/csourceSubscriptions/"


def _create(conn: Connection, env: Env, sub: dict[str, Any], context: Any) -> str:
    """The subscription, and its first notification with every registration it matches, in one go."""
    sub_id = subscriptions.create(conn, env, sub, context, CSOURCE)
    csourcenotify.after_subscription_write(conn, env, sub_id)
    return sub_id


def _update(conn: Connection, env: Env, sub_id: str, fragment: dict[str, Any]) -> None:
    subscriptions.update(conn, env, sub_id, fragment, CSOURCE)
    csourcenotify.after_subscription_write(conn, env, sub_id)


@router.post("", status_code=201, summary="Subscribe to context source registrations",
             openapi_extra=operation(*HEADERS, body="NgsiLdSubscription"))
@router.post("/", include_in_schema=False)
async def create_csource_subscription(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    sub = subscriptions.validate(data.body, data.terms, now=env.now, kind=CSOURCE)
    check_endpoint(ctx, sub)
    await check_jsonld_context(ctx, sub)
    sub_id = await ctx.db.write(_create, env, sub, data.context)
    return created(BASE + quote(sub_id, safe=URI_SAFE))


@router.get("", summary="List subscriptions to context source registrations",
            openapi_extra=operation(*PAGING, *HEADERS, answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def list_csource_subscriptions(request: Request, ctx: Ctx) -> Response:
    limit, offset, count = paging(request)
    link, terms = await outgoing_terms(request, ctx)
    rows, total = await ctx.db.read(lambda conn: subscriptions.list_all(
        conn, tenant_of(request), ctx.clock.now(), limit=limit, offset=offset, terms=terms, kind=CSOURCE))
    headers = dict(preference_headers(request) or {})
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    pages = page_links(limit, offset, total, BASE)
    if pages:
        headers["Link"] = pages
    return respond(request, rows, [link] if link else None, headers=headers)


@router.get("/{sub_id}", summary="Retrieve a subscription to context source registrations",
            openapi_extra=operation(*HEADERS, answers=JSON_LD))
async def retrieve_csource_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    link, terms = await outgoing_terms(request, ctx)
    body = await ctx.db.read(subscriptions.get, tenant_of(request), sub_id, ctx.clock.now(), terms, CSOURCE)
    return respond(request, body, [link] if link else None)


@router.patch("/{sub_id}", status_code=204, summary="Update a subscription to context source registrations",
              openapi_extra=operation(*HEADERS, body="NgsiLdSubscriptionFragment"))
async def update_csource_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    # An expiresAt in the past is taken: it ends the subscription now (its status becomes expired).
    fragment = subscriptions.validate(data.body, data.terms, partial=True, kind=CSOURCE)
    check_endpoint(ctx, fragment)
    await check_jsonld_context(ctx, fragment)
    await ctx.db.write(_update, env, sub_id, fragment)
    return no_content()


@router.delete("/{sub_id}", status_code=204, summary="Delete a subscription to context source registrations",
               openapi_extra=operation("tenant"))
async def delete_csource_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    await ctx.db.write(subscriptions.delete, tenant_of(request), sub_id, CSOURCE)
    return no_content()
