"""NGSI-LD context source registration endpoints (clauses 5.9, 5.10, 6.8, 6.9): register, query,
retrieve, update, delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import csourcenotify, registrations
from wecity.context.entity import check_entity_id
from wecity.context.errors import bad_request_data, invalid_request
from wecity.context.geo import parse_geoquery
from wecity.context.history import TimeFilter
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
    split_list,
    store_of,
    tenant_of,
)
from wecity.context.query import compile_q
from wecity.context.routes_entities import URI_SAFE
from wecity.context.scopeq import compile_scope_q
from wecity.context.search import compile_pattern
from wecity.context.selection import parse_type_selection
from wecity.core.context import AppContext
from wecity.core.http import Ctx
from wecity.core.outbound import OutboundPolicy
from wecity.core.runner import wake

router = APIRouter(prefix="/ngsi-ld/v1/csourceRegistrations", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/csourceRegistrations"
_TIMEPROPERTIES = ("observedAt", "createdAt", "modifiedAt")
_QUERY = ("id", "type", "idPattern", "attrs", "q", "csf", "scopeQ", "georel", "geometry", "coordinates",
          "geoproperty", "timerel", "timeAt", "endTimeAt", "timeproperty", "options", *PAGING, *HEADERS)


def _check_endpoint(ctx: AppContext, reg: dict[str, Any]) -> None:
    """The broker will send requests to the endpoint (distributed operations): one on this host, or on an
    internal address the operator did not allow, is refused now, as for notifications."""
    uri = reg.get("endpoint")
    if uri and OutboundPolicy.from_settings(ctx.settings).refuses_outright(uri):
        raise bad_request_data("endpoint names an internal address or a scheme this broker does not send to "
                               "(WECITY_OUTBOUND_ALLOW lists the allowed addresses)",
                               "endpoint 指向内部地址或不支持的协议，本代理不向其发送请求（允许的地址见 WECITY_OUTBOUND_ALLOW）")


def _sys_attrs(request: Request) -> bool:
    options = set(filter(None, request.query_params.get("options", "").split(",")))
    unknown = options - {"sysAttrs"}
    if unknown:
        raise invalid_request(f"unknown options {', '.join(sorted(unknown))}",
                              f"未知的 options：{'、'.join(sorted(unknown))}")
    return "sysAttrs" in options


def _shown(row: Any, terms: Any, sys_attrs: bool) -> dict[str, Any]:
    return registrations.render(row.body, terms, created_at=row.created_at if sys_attrs else None,
                                modified_at=row.modified_at if sys_attrs else None)


def registrations_changed(ctx: Ctx) -> None:
    """Distributed operations read the registrations from memory (`wecity.context.forwarding`); a change
    may have queued subscription copies to send or withdraw (`wecity.context.subforward`): now, not at the
    runner's next look."""
    cache = ctx.services.get("ngsild_registrations")
    if cache is not None:
        cache.invalidate()
    wake(ctx)


@router.post("", status_code=201, summary="Register a context source",
             openapi_extra=operation(*HEADERS, body="NgsiLdCSourceRegistration"))
@router.post("/", include_in_schema=False)
async def register_source(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    reg = registrations.validate(data.body, data.terms, now=env.now)
    _check_endpoint(ctx, reg)
    reg_id = await ctx.db.write(csourcenotify.create_registration, env, reg, data.context)
    registrations_changed(ctx)
    return created(f"{BASE}/{quote(reg_id, safe=URI_SAFE)}")


def _filter(request: Request, terms: Any) -> registrations.Filter:
    """The discovery query of the query string (clause 6.8.3.1), its names expanded with `terms`."""
    params = request.query_params
    f = registrations.Filter()
    ids = split_list(params.get("id"))
    if ids is not None:
        for i in ids:
            check_entity_id(i)
        f.ids = ids
    if params.get("type"):
        f.types = parse_type_selection(params["type"], terms).types
    if params.get("idPattern"):
        compile_pattern(params["idPattern"])
        f.id_pattern = params["idPattern"]
    attrs = split_list(params.get("attrs"))
    if attrs is not None:
        f.attrs = [terms.expand(a) for a in attrs]
    if params.get("q") is not None:
        f.q = compile_q(params["q"], terms)
    if params.get("csf") is not None:
        f.csf = compile_q(params["csf"], terms)
    if params.get("scopeQ") is not None:
        f.scope_q = compile_scope_q(params["scopeQ"])
    f.geo = parse_geoquery(params.get("georel"), params.get("geometry"), params.get("coordinates"),
                           terms.expand(params.get("geoproperty") or "location"))
    f.when = TimeFilter.parse(params.get("timerel"), params.get("timeAt"), params.get("endTimeAt"))
    f.timeproperty = params.get("timeproperty") or "observedAt"
    if f.timeproperty not in _TIMEPROPERTIES:
        raise bad_request_data("timeproperty must be observedAt, createdAt or modifiedAt",
                               "timeproperty 只能取 observedAt、createdAt 或 modifiedAt")
    if not f.asks_something():
        raise bad_request_data("a query of context source registrations needs id, type, idPattern, attrs, q, csf, "
                               "scopeQ, a geo-query or a temporal query",
                               "查询上下文源注册需要 id、type、idPattern、attrs、q、csf、scopeQ、地理查询或时间查询之一")
    return f


def _page_links(request: Request, limit: int, offset: int, total: int) -> str:
    """rel="prev" / rel="next" links: the same query with the page moved (5.5.9)."""
    kept = "&".join(f"{quote(k, safe='')}={quote(v, safe=':/.*,;|$!()@~[]')}"
                    for k, v in request.query_params.multi_items() if k not in ("limit", "offset"))
    prefix = f"{BASE}?{kept}&" if kept else f"{BASE}?"
    links = []
    if offset > 0 and limit > 0:
        links.append(f'<{prefix}limit={limit}&offset={max(offset - limit, 0)}>;rel="prev";type="application/ld+json"')
    if limit > 0 and offset + limit < total:
        links.append(f'<{prefix}limit={limit}&offset={offset + limit}>;rel="next";type="application/ld+json"')
    return ", ".join(links)


@router.get("", summary="Query context source registrations", openapi_extra=operation(*_QUERY, answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def query_sources(request: Request, ctx: Ctx) -> Response:
    limit, offset, count = paging(request)
    link, terms = await outgoing_terms(request, ctx)
    f = _filter(request, terms)
    sys_attrs = _sys_attrs(request)
    core = store_of(ctx).core
    tenant, now = tenant_of(request), ctx.clock.now()
    rows, total = await ctx.db.read(lambda conn: registrations.discover(conn, tenant, f, core, now, limit=limit,
                                                                         offset=offset))
    headers = {}
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    pages = _page_links(request, limit, offset, total)
    if pages:
        headers["Link"] = pages
    return respond(request, [_shown(r, terms, sys_attrs) for r in rows], [link] if link else None, headers=headers)


@router.get("/{reg_id}", summary="Retrieve a context source registration",
            openapi_extra=operation("options", *HEADERS, answers=JSON_LD))
async def retrieve_source(reg_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(reg_id)
    link, terms = await outgoing_terms(request, ctx)
    sys_attrs = _sys_attrs(request)
    row = await ctx.db.read(registrations.row_of, tenant_of(request), reg_id, ctx.clock.now())
    return respond(request, _shown(row, terms, sys_attrs), [link] if link else None)


@router.patch("/{reg_id}", status_code=204, summary="Update a context source registration",
              openapi_extra=operation(*HEADERS, body="NgsiLdCSourceRegistrationFragment"))
async def update_source(reg_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(reg_id)
    env = env_of(request, ctx)
    data = await incoming(request, ctx, want_object=True)
    fragment = registrations.validate(data.body, data.terms, partial=True, now=env.now)
    _check_endpoint(ctx, fragment)
    await ctx.db.write(csourcenotify.update_registration, env, reg_id, fragment)
    registrations_changed(ctx)
    return no_content()


@router.delete("/{reg_id}", status_code=204, summary="Delete a context source registration",
               openapi_extra=operation("tenant"))
async def delete_source(reg_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(reg_id)
    await ctx.db.write(csourcenotify.delete_registration, env_of(request, ctx), reg_id)
    registrations_changed(ctx)
    return no_content()
