"""NGSI-LD subscription endpoints: create, list, retrieve, update, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import Connection

from wecity.context import delivery, distributed, mqttnotify, routes_contexts, subforward, subscriptions
from wecity.context.entity import check_entity_id
from wecity.context.errors import bad_request_data, jsonld_context_unreachable
from wecity.context.openapi import HEADERS, PAGING, operation
from wecity.context.protocol import (
    JSON_LD,
    env_of,
    incoming,
    no_content,
    outgoing_terms,
    paging,
    preferred_version,
    resolve,
    respond,
    tenant_of,
)
from wecity.context.routes_entities import URI_SAFE
from wecity.core.context import AppContext
from wecity.core.errors import DependencyUnavailable
from wecity.core.http import Ctx
from wecity.core.outbound import OutboundPolicy
from wecity.core.runner import wake

router = APIRouter(prefix="/ngsi-ld/v1/subscriptions", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/subscriptions/"


def check_endpoint(ctx: AppContext, sub: dict[str, Any]) -> None:
    """An endpoint on this host, or on an internal address the operator did not allow, is refused now;
    a name is checked on every delivery, when it is resolved (wecity.core.outbound)."""
    uri = ((sub.get("notification") or {}).get("endpoint") or {}).get("uri")
    schemes = mqttnotify.SCHEMES if mqttnotify.is_mqtt(uri) else ("http", "https")
    if uri and OutboundPolicy.from_settings(ctx.settings).refuses_outright(uri, schemes):
        raise bad_request_data("notification.endpoint.uri names an internal address this broker does not send to "
                               "(WECITY_OUTBOUND_ALLOW lists the allowed ones)",
                               "notification.endpoint.uri 指向内部地址，本代理不向其发送通知（允许的地址见 WECITY_OUTBOUND_ALLOW）")


async def check_jsonld_context(ctx: AppContext, sub: dict[str, Any]) -> None:
    """A jsonldContext must be a context the broker can fetch now, or notifications could never be
    compacted with it; fetched once, it is kept with the others."""
    url = sub.get("jsonldContext")
    if not url:
        return
    try:
        await resolve(ctx, url)
    except DependencyUnavailable as exc:
        raise jsonld_context_unreachable(f"jsonldContext {url} cannot be fetched",
                                         f"无法获取 jsonldContext {url}") from exc


def preference_headers(request: Request) -> dict[str, str] | None:
    """A subscription has no older forms (4.3.6.8): whatever version is preferred, it is served as is,
    and Preference-Applied says so."""
    version = preferred_version(request)
    return {"Preference-Applied": f"ngsi-ld={version}"} if version else None


@router.post("", status_code=201, summary="Create a subscription",
             openapi_extra=operation(*HEADERS, body="NgsiLdSubscription"))
@router.post("/", include_in_schema=False)
async def create_subscription(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    sub = subscriptions.validate(data.body, data.terms, now=env.now)
    check_endpoint(ctx, sub)
    await check_jsonld_context(ctx, sub)
    implicit = sub.get("jsonldContext") is None and not _one_url(data.context)
    base = str(request.base_url).rstrip("/")
    # Context sources that hold some of these entities get a copy (5.8.1.4), sent by the runner.
    sources = await distributed.registrations_of(request, ctx) if subforward.forwards(sub) else ()
    subforward.prepare(sub, notify_uri_of(request, ctx))

    def write(conn: Connection) -> tuple[str, str | None]:
        # A @context that is not one URL is kept as an implicitly created one, so that the subscription
        # can name it (jsonldContext) as a Link header names a @context: by one URL (5.13.1).
        path = routes_contexts.keep(conn, env.tenant, routes_contexts.IMPLICIT, data.context, env.now) \
            if implicit else None
        if path is not None:
            sub[subscriptions.IMPLICIT_CONTEXT] = base + path
        sub_id = subscriptions.create(conn, env, sub, data.context)
        subforward.on_created(conn, env, sub, data.context, sources)
        return sub_id, path

    sub_id, path = await ctx.db.write(write)
    if path is not None:
        routes_contexts.learn(ctx, path, data.context)
    if sources:
        wake(ctx)
    return Response(status_code=201, headers={"Location": BASE + quote(sub_id, safe=URI_SAFE)})


def notify_uri_of(request: Request, ctx: AppContext) -> str:
    """Where context sources send the notifications of this broker's subscription copies."""
    return (ctx.settings.public_url or str(request.base_url).rstrip("/")) + subforward.NOTIFY_PATH


def _one_url(context: Any) -> bool:
    return context is None or isinstance(context, str) or (
        isinstance(context, list) and len(context) == 1 and isinstance(context[0], str))


@router.get("", summary="List subscriptions", openapi_extra=operation(*PAGING, *HEADERS, "prefer", answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def list_subscriptions(request: Request, ctx: Ctx) -> Response:
    limit, offset, count = paging(request)
    link, terms = await outgoing_terms(request, ctx)
    rows, total = await ctx.db.read(lambda conn: subscriptions.list_all(conn, tenant_of(request), ctx.clock.now(),
                                                                         limit=limit, offset=offset, terms=terms))
    headers = dict(preference_headers(request) or {})
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    pages = page_links(limit, offset, total)
    if pages:
        headers["Link"] = pages
    return respond(request, rows, [link] if link else None, headers=headers)


def page_links(limit: int, offset: int, total: int, base: str = BASE) -> str:
    """rel="prev" / rel="next" links to the neighbouring pages (5.8.4, 6.3.11)."""
    links = []
    if offset > 0 and limit > 0:
        links.append(f'<{base.rstrip("/")}?limit={limit}&offset={max(offset - limit, 0)}>;rel="prev";'
                     'type="application/ld+json"')
    if limit > 0 and offset + limit < total:
        links.append(f'<{base.rstrip("/")}?limit={limit}&offset={offset + limit}>;rel="next";'
                     'type="application/ld+json"')
    return ", ".join(links)


@router.get("/{sub_id}", summary="Retrieve a subscription",
            openapi_extra=operation(*HEADERS, "prefer", answers=JSON_LD))
async def retrieve_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    link, terms = await outgoing_terms(request, ctx)
    await delivery.settled(ctx, tenant_of(request), sub_id)
    body = await ctx.db.read(subscriptions.get, tenant_of(request), sub_id, ctx.clock.now(), terms)
    return respond(request, body, [link] if link else None, headers=preference_headers(request))


@router.patch("/{sub_id}", status_code=204, summary="Update a subscription",
              openapi_extra=operation(*HEADERS, body="NgsiLdSubscriptionFragment"))
async def update_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    fragment = subscriptions.validate(data.body, data.terms, partial=True, now=env.now)
    check_endpoint(ctx, fragment)
    await check_jsonld_context(ctx, fragment)
    sources = await distributed.registrations_of(request, ctx)

    def update(conn: Connection) -> None:
        subscriptions.update(conn, env, sub_id, fragment)
        subforward.on_updated(conn, env, sub_id, sources, notify_uri_of(request, ctx))  # its copies follow (5.8.2.4)

    await ctx.db.write(update)
    wake(ctx)
    return no_content()


@router.delete("/{sub_id}", status_code=204, summary="Delete a subscription", openapi_extra=operation("tenant"))
async def delete_subscription(sub_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(sub_id)
    env = env_of(request, ctx)

    def delete(conn: Connection) -> None:
        subscriptions.delete(conn, env.tenant, sub_id)
        subforward.on_deleted(conn, env, sub_id)  # its copies at context sources withdrawn (5.8.5.4)

    await ctx.db.write(delete)
    wake(ctx)
    return no_content()
