"""HTTP adapter of the context broker: mounts the NGSI-LD routers under /ngsi-ld/v1, renders errors as
ProblemDetails, checks the preconditions of every request, and delivers notifications through the outbox channel "ngsild"."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.middleware import Middleware

from wecity.context import (
    fastpath,
    openapi,
    routes_batch,
    routes_contexts,
    routes_csourcesubs,
    routes_discovery,
    routes_entities,
    routes_entitymaps,
    routes_info,
    routes_registrations,
    routes_remote,
    routes_snapshots,
    routes_subscriptions,
    routes_temporal,
)
from wecity.context.access import require_access
from wecity.context.preconditions import Preconditions, declared, require_tenant
from wecity.context.protocol import render_problem
from wecity.context.tasks import close_delivery, ensure_delivery, ensure_forwarding, load_store
from wecity.core.context import AppContext


async def on_startup(ctx: AppContext) -> None:
    ctx.services[routes_info.STARTED] = ctx.clock.now()
    await load_store(ctx)
    ensure_delivery(ctx)
    ensure_forwarding(ctx)


async def on_shutdown(ctx: AppContext) -> None:
    await routes_contexts.flush_hits(ctx)
    await close_delivery(ctx)


def register(app: FastAPI) -> None:
    app.state.error_renderers["/ngsi-ld"] = render_problem
    openapi.register(app)
    # Batches of up to 10,000 entities and temporal representations take more than one entity's body.
    for prefix in ("/ngsi-ld/v1/entityOperations/", "/ngsi-ld/v1/temporal/"):
        app.state.body_limits.allow_larger(prefix, app.state.ctx.settings.max_batch_bytes)
    # Every NGSI-LD route asks for credentials first, as WECITY_NGSILD_AUTH says (wecity.context.access),
    # then for a tenant that exists (wecity.context.preconditions).
    guarded = [Depends(require_access), Depends(require_tenant)]
    modules = (routes_entities, routes_discovery, routes_batch, routes_subscriptions, routes_temporal, routes_entitymaps,
               routes_snapshots, routes_registrations, routes_csourcesubs, routes_info, routes_contexts)
    for module in modules:
        app.include_router(module.router, dependencies=guarded)
    # Context sources' notifications of forwarded subscriptions: let in by the copy's secret id instead.
    app.include_router(routes_remote.router)
    # Content-Length, Accept, query parameter and tenant preconditions (6.3, 5.5.10), in front of the fast
    # path too; the query parameters each route declares are the ones it takes.
    operations = declared(r for module in modules for r in module.router.routes)
    app.user_middleware.append(Middleware(Preconditions, declared=operations))
    # The sensing loop's writes and its history read, served without the framework's per-request routing
    # (docs/benchmarks.md); the same access check first.
    fastpath.install(app, [
        fastpath.route("PATCH", "/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}", routes_entities.patch_attr),
        fastpath.route("PATCH", "/ngsi-ld/v1/entities/{entity_id}/attrs", routes_entities.update_attrs),
        fastpath.route("POST", "/ngsi-ld/v1/entities/{entity_id}/attrs", routes_entities.append_attrs),
        fastpath.route("POST", "/ngsi-ld/v1/entityOperations/upsert", routes_batch.batch_upsert),
        fastpath.route("POST", "/ngsi-ld/v1/entityOperations/update", routes_batch.batch_update),
        fastpath.route("GET", "/ngsi-ld/v1/temporal/entities/{entity_id}", routes_temporal.temporal_entity),
    ], guards=[require_access, require_tenant])
