"""HTTP adapter of the context broker: mounts the NGSI-LD routers under /ngsi-ld/v1, renders errors as
ProblemDetails, serves /jsonldContexts, and delivers notifications through the outbox channel "ngsild"."""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.middleware import Middleware

from wecity.context import (
    fastpath,
    openapi,
    routes_batch,
    routes_entities,
    routes_entitymaps,
    routes_subscriptions,
    routes_temporal,
)
from wecity.context.access import require_access
from wecity.context.entity import has_control
from wecity.context.errors import bad_request_data, resource_not_found
from wecity.context.ldcontext import CORE_DOCUMENT, HOSTED_PATH, ContextStore, is_core_url
from wecity.context.models import contexts as t
from wecity.context.openapi import operation
from wecity.context.preconditions import Preconditions
from wecity.context.protocol import JSON_LD, no_content, read_json, render_problem, respond
from wecity.context.tasks import close_delivery, ensure_delivery, load_store
from wecity.core.context import AppContext
from wecity.core.errors import NotFound
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/jsonldContexts", tags=["ngsi-ld"])


async def on_startup(ctx: AppContext) -> None:
    await load_store(ctx)
    ensure_delivery(ctx)


async def on_shutdown(ctx: AppContext) -> None:
    await close_delivery(ctx)


def register(app: FastAPI) -> None:
    app.state.error_renderers["/ngsi-ld"] = render_problem
    openapi.register(app)
    # Batches of up to 10,000 entities and temporal representations take more than one entity's body.
    for prefix in ("/ngsi-ld/v1/entityOperations/", "/ngsi-ld/v1/temporal/"):
        app.state.body_limits.allow_larger(prefix, app.state.ctx.settings.max_batch_bytes)
    # Every NGSI-LD route asks for credentials first, as WECITY_NGSILD_AUTH says (wecity.context.access).
    guarded = [Depends(require_access)]
    for module in (routes_entities, routes_batch, routes_subscriptions, routes_temporal, routes_entitymaps):
        app.include_router(module.router, dependencies=guarded)
    app.include_router(router, dependencies=guarded)
    # Content-Length, Accept and tenant preconditions (6.3, 5.5.10), in front of the fast path too.
    app.user_middleware.append(Middleware(Preconditions))
    # The sensing loop's writes and its history read, served without the framework's per-request routing
    # (docs/benchmarks.md); the same access check first.
    fastpath.install(app, [
        fastpath.route("PATCH", "/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}", routes_entities.patch_attr),
        fastpath.route("PATCH", "/ngsi-ld/v1/entities/{entity_id}/attrs", routes_entities.update_attrs),
        fastpath.route("POST", "/ngsi-ld/v1/entities/{entity_id}/attrs", routes_entities.append_attrs),
        fastpath.route("POST", "/ngsi-ld/v1/entityOperations/upsert", routes_batch.batch_upsert),
        fastpath.route("POST", "/ngsi-ld/v1/entityOperations/update", routes_batch.batch_update),
        fastpath.route("GET", "/ngsi-ld/v1/temporal/entities/{entity_id}", routes_temporal.temporal_entity),
    ], guards=[require_access])


# -- /jsonldContexts ------------------------------------------------------------------------------

def _not_found(context_id: str) -> NotFound:
    return resource_not_found(f"@context {context_id} not found", f"@context {context_id} 不存在")


def _public_url(request: Request, row: Any) -> str:
    if row.kind == "hosted":
        return str(request.base_url).rstrip("/") + row.url
    return str(row.url)


@router.post("", status_code=201, summary="Add a @context for the broker to serve",
             openapi_extra=operation(body="JsonLdContext"))
@router.post("/", include_in_schema=False)
async def add_context(request: Request, ctx: Ctx) -> Response:
    body, _ = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("@context"), dict | list | str):
        raise bad_request_data("the body must be a JSON object with @context", "请求体必须是带 @context 的 JSON 对象")
    context_id = uuid.uuid4().hex
    path = HOSTED_PATH + context_id
    store: ContextStore = ctx.services["ngsild_contexts"]
    document = {"@context": body["@context"]}
    store.term_map(body["@context"] if not isinstance(body["@context"], str) else [body["@context"]])

    def write(conn: sa.Connection) -> None:
        conn.execute(t.insert().values(context_id=context_id, url=path, kind="hosted", body=document,
                                       created_at=ctx.clock.now(), times_used=0))

    await ctx.db.write(write)
    store.add(path, document)
    return Response(status_code=201, headers={"Location": str(request.base_url).rstrip("/") + path})


@router.get("", summary="List the @contexts the broker serves or keeps",
            openapi_extra=operation("details", "kind", answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def list_contexts(request: Request, ctx: Ctx) -> Response:
    details = request.query_params.get("details", "false") == "true"
    kind = request.query_params.get("kind")
    if kind is not None and kind not in ("hosted", "cached", "implicitlycreated"):
        raise bad_request_data(f"unknown kind {kind!r}", f"未知的 kind：{kind!r}")

    def read(conn: sa.Connection) -> list[Any]:
        stmt = sa.select(t).order_by(t.c.pk)
        if kind:
            stmt = stmt.where(t.c.kind == ("hosted" if kind == "implicitlycreated" else kind))
        return list(conn.execute(stmt))

    rows = await ctx.db.read(read)
    if details:
        body: list[Any] = [{"URL": _public_url(request, r), "localId": f"urn:ngsi-ld:jsonldContext:{r.context_id}",
                            "kind": r.kind, "createdAt": r.created_at.isoformat(), "numberOfHits": r.times_used}
                           for r in rows]
    else:
        body = [_public_url(request, r) for r in rows]
    return respond(request, body, None)


@router.get("/{context_id:path}", summary="Serve a @context")
async def get_context(context_id: str, request: Request, ctx: Ctx) -> Response:
    if is_core_url(context_id):
        return Response(_dumps(CORE_DOCUMENT), media_type="application/ld+json")
    if has_control(context_id):
        raise _not_found(context_id)
    local = context_id.rsplit(":", 1)[-1]
    row = await ctx.db.read(lambda conn: conn.execute(
        sa.select(t).where(sa.or_(t.c.context_id == local, t.c.url == context_id))).first())
    if row is None:
        raise _not_found(context_id)
    return Response(_dumps(row.body), media_type="application/ld+json")


@router.delete("/{context_id:path}", status_code=204, summary="Remove a @context")
async def delete_context(context_id: str, request: Request, ctx: Ctx) -> Response:
    if has_control(context_id):
        raise _not_found(context_id)
    local = context_id.rsplit(":", 1)[-1]
    store: ContextStore = ctx.services["ngsild_contexts"]

    def write(conn: sa.Connection) -> str | None:
        row = conn.execute(sa.select(t).where(sa.or_(t.c.context_id == local, t.c.url == context_id))).first()
        if row is None:
            return None
        conn.execute(t.delete().where(t.c.pk == row.pk))
        return str(row.url)

    url = await ctx.db.write(write)
    if url is None:
        raise _not_found(context_id)
    store.remove(url)
    return no_content()


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
