"""/jsonldContexts (clause 5.13): the @contexts the broker keeps, of three kinds (5.2.41):

- Hosted: added by a client (POST), served at /jsonldContexts/{id};
- ImplicitlyCreated: made by the broker when a request's @context is not one URL but has to be named by
  one (a subscription's jsonldContext, for its notifications' Link header);
- Cached: a remote @context the broker fetched once and keeps; deleting it with reload=true fetches it anew.

Hosted and implicitly created @contexts belong to the tenant that made them: no other tenant sees, serves
or deletes them. Cached ones are copies of public documents, the same for all. numberOfHits counts the
requests that used a @context or fetched its document here (not those asking for its details); counted in
memory, written whenever details are asked for and when the broker stops."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context.entity import has_control, now_text
from wecity.context.errors import bad_request_data, invalid_request, resource_not_found
from wecity.context.ldcontext import CORE_DOCUMENT, CORE_URL, HOSTED_PATH, ContextStore, is_core_url
from wecity.context.models import contexts as t
from wecity.context.openapi import operation
from wecity.context.protocol import JSON_LD, accepts, no_content, read_json, store_of, tenant_of
from wecity.context.routes_info import STARTED
from wecity.core.context import AppContext
from wecity.core.errors import NotFound
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/jsonldContexts", tags=["ngsi-ld"])

HOSTED, CACHED, IMPLICIT = "Hosted", "Cached", "ImplicitlyCreated"
KINDS = (HOSTED, CACHED, IMPLICIT)


def _not_found(context_id: str) -> NotFound:
    return resource_not_found(f"@context {context_id} not found", f"@context {context_id} 不存在")


def _flag(request: Request, name: str) -> bool:
    value = request.query_params.get(name, "false")
    if value not in ("true", "false"):
        raise bad_request_data(f"{name} must be true or false", f"{name} 必须是 true 或 false")
    return value == "true"


def _visible(tenant: str) -> Any:
    """The rows a tenant sees: its own hosted and implicitly created @contexts, and every cached one."""
    return sa.or_(t.c.kind == CACHED, t.c.tenant == tenant)


def _public_url(request: Request, row: Any) -> str:
    if row.kind == CACHED:
        return str(row.url)
    return str(request.base_url).rstrip("/") + row.url


def _details(request: Request, row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"URL": _public_url(request, row), "localId": f"urn:ngsi-ld:jsonldContext:{row.context_id}",
                           "kind": row.kind, "createdAt": now_text(row.created_at), "numberOfHits": row.times_used}
    if row.last_used is not None:
        out["lastUsage"] = now_text(row.last_used)
    return out


def _core_details(ctx: AppContext) -> dict[str, Any]:
    """The core @context: bundled with the broker, as if fetched when it started."""
    return {"URL": CORE_URL, "localId": "urn:ngsi-ld:jsonldContext:core", "kind": CACHED,
            "createdAt": now_text(ctx.services.get(STARTED) or ctx.clock.now())}


async def flush_hits(ctx: AppContext) -> None:
    """Write the uses counted in memory to the @contexts' numberOfHits and lastUsage."""
    hits = store_of(ctx).take_hits()
    if not hits:
        return

    def write(conn: sa.Connection) -> None:
        for key, (count, last) in hits.items():
            conn.execute(t.update().where(t.c.url == key).values(times_used=t.c.times_used + count, last_used=last))

    await ctx.db.write(write)


async def _row(ctx: AppContext, tenant: str, context_id: str) -> Any:
    """The row `context_id` names for `tenant`: a local id, its urn:ngsi-ld:jsonldContext: form, a hosted
    path or URL, or a cached context's URL; None when there is none."""
    key = store_of(ctx).key_of(context_id) or context_id
    local = context_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1]
    return await ctx.db.read(lambda conn: conn.execute(sa.select(t).where(
        sa.or_(t.c.context_id == local, t.c.url == key), _visible(tenant))).first())


def validate_context(value: Any) -> None:
    """A @context member as 5.13.2 takes it: a URL, an object, or a list of these (else BadRequestData)."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(i, str | dict) for i in items):
        raise bad_request_data("@context must be a URL, an object, or a list of URLs and objects",
                               "@context 必须是 URL、对象，或由 URL 和对象组成的列表")


def keep(conn: sa.Connection, tenant: str, kind: str, context: Any, now: Any) -> str:
    """Store `context` as a hosted or implicitly created @context of `tenant`, in the caller's
    transaction; its path under /jsonldContexts. The store learns it once that has committed (`learn`)."""
    context_id = uuid.uuid4().hex
    path = HOSTED_PATH + context_id
    conn.execute(t.insert().values(context_id=context_id, url=path, kind=kind, tenant=tenant,
                                   body={"@context": context}, created_at=now, times_used=0))
    return path


def learn(ctx: AppContext, path: str, context: Any) -> None:
    store_of(ctx).add(path, {"@context": context})


@router.post("", status_code=201, summary="Add a @context for the broker to serve",
             openapi_extra=operation("tenant", body="JsonLdContext"))
@router.post("/", include_in_schema=False)
async def add_context(request: Request, ctx: Ctx) -> Response:
    body, _ = await read_json(request)
    if not isinstance(body, dict) or "@context" not in body:
        raise invalid_request("the body must be a JSON object with @context", "请求体必须是带 @context 的 JSON 对象")
    context = body["@context"]
    validate_context(context)
    store: ContextStore = store_of(ctx)
    inline = [c for c in (context if isinstance(context, list) else [context]) if isinstance(c, dict)]
    if inline:  # what can be checked without fetching anything; URLs are fetched (and cached) when used
        await asyncio.to_thread(store.term_map, inline)
    tenant, now = tenant_of(request), ctx.clock.now()
    path = await ctx.db.write(keep, tenant, HOSTED, context, now)
    learn(ctx, path, context)
    return Response(status_code=201, headers={"Location": path})


@router.get("", summary="List the @contexts the broker serves or keeps",
            openapi_extra=operation("tenant", "details", "kind", answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def list_contexts(request: Request, ctx: Ctx) -> Response:
    details = _flag(request, "details")
    kind = request.query_params.get("kind")
    if kind is not None and kind not in KINDS:
        raise bad_request_data(f"unknown kind {kind!r}: Hosted, Cached or ImplicitlyCreated",
                               f"未知的 kind：{kind!r}（可用 Hosted、Cached、ImplicitlyCreated）")
    tenant = tenant_of(request)
    if details:
        await flush_hits(ctx)

    def read(conn: sa.Connection) -> list[Any]:
        stmt = sa.select(t).where(_visible(tenant)).order_by(t.c.pk)
        if kind:
            stmt = stmt.where(t.c.kind == kind)
        return list(conn.execute(stmt))

    rows = await ctx.db.read(read)
    listed: list[Any] = [_details(request, r) if details else _public_url(request, r) for r in rows]
    return _json(request, listed)


@router.get("/{context_id:path}", summary="Serve a @context", openapi_extra=operation("tenant", "details"))
async def get_context(context_id: str, request: Request, ctx: Ctx) -> Response:
    details = _flag(request, "details")
    if is_core_url(context_id):
        return _json(request, _core_details(ctx) if details else CORE_DOCUMENT)
    if has_control(context_id):
        raise _not_found(context_id)
    if details:
        await flush_hits(ctx)
    row = await _row(ctx, tenant_of(request), context_id)
    if row is None:
        raise _not_found(context_id)
    if details:
        return _json(request, _details(request, row))
    store_of(ctx).hit(str(row.url), ctx.clock.now)  # the document itself served: a use of it
    return _json(request, row.body)


@router.delete("/{context_id:path}", status_code=204, summary="Remove a @context, or fetch a cached one anew",
               openapi_extra=operation("tenant", "reload"))
async def delete_context(context_id: str, request: Request, ctx: Ctx) -> Response:
    reload = _flag(request, "reload")
    if is_core_url(context_id):
        if not reload:
            raise bad_request_data("the core @context cannot be deleted", "核心 @context 不能删除")
        return no_content()  # the core @context is the one bundled with the broker: nothing to fetch
    if has_control(context_id):
        raise _not_found(context_id)
    store = store_of(ctx)
    row = await _row(ctx, tenant_of(request), context_id)
    if reload:
        if row is None or row.kind != CACHED:
            raise bad_request_data("only a cached @context can be reloaded", "只有缓存的 @context 才能重新加载")
        # Fetched before anything changes: a failure (LdContextNotAvailable) keeps the cached copy.
        document = await asyncio.to_thread(store.refetch, str(row.url))
        await ctx.db.write(lambda conn: conn.execute(t.update().where(t.c.pk == row.pk).values(
            body=document, created_at=ctx.clock.now(), times_used=0, last_used=None)))
        store.add(str(row.url), document)
        return no_content()
    if row is None:
        raise _not_found(context_id)
    await ctx.db.write(lambda conn: conn.execute(t.delete().where(t.c.pk == row.pk)))
    store.remove(str(row.url))
    return no_content()


def _json(request: Request, value: Any) -> Response:
    """A @context document or its details, as JSON (or JSON-LD when asked for): nothing is added to them."""
    return Response(json.dumps(value, ensure_ascii=False), media_type=accepts(request, JSON_LD))
