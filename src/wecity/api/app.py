"""The app factory: builds the context, mounts every domain's routers, renders errors by protocol."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from wecity import __version__
from wecity.api import ops
from wecity.api.hsts import HstsMiddleware
from wecity.api.middleware import RequestContextMiddleware
from wecity.core import bodylimit
from wecity.core.assemble import build_context, domain_module
from wecity.core.clock import Clock
from wecity.core.db import Database
from wecity.core.errors import MethodNotAllowed, NotFound, ValidationFailed, WeCityError, error_for_status
from wecity.core.http import render_error
from wecity.core.settings import Settings, load_settings
from wecity.domains import DOMAINS

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None,
               db: Database | None = None) -> FastAPI:
    settings = settings or load_settings()
    ctx = build_context(settings, db=db, clock=clock)
    modules = [m for d in DOMAINS for m in (domain_module(d, "api"), domain_module(d, "views")) if m]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for module in modules:
            if hasattr(module, "on_startup"):
                await module.on_startup(ctx)
        runner = None
        if settings.run_background:
            from wecity.core.runner import Runner

            runner = ctx.services["runner"] = Runner(ctx)
            await runner.start()
        if getattr(app.state, "freeze_heap_after_start", False):
            # What the process has loaded by now (modules, routes, tables, indexes) lives as long as it does.
            # Left in the collector's oldest generation, every full collection walks all of it again: 100-240 ms
            # pauses in the middle of requests (measured). Frozen, the collector only looks at what requests make.
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            for module in reversed(modules):
                if hasattr(module, "on_shutdown"):
                    await module.on_shutdown(ctx)
            if db is None:
                ctx.db.close()

    app = FastAPI(
        title="WeCity API",
        version=__version__,
        summary="城市运营平台 / city operating platform: Open311 GeoReport v2, NGSI-LD, staff API",
        lifespan=lifespan,
        # /docs is the portal's page with a vendored Swagger UI (wecity.web.api_docs); FastAPI's own pages
        # load their scripts from CDNs.
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.error_renderers = {}
    bodylimit.install(app, settings)  # inside the request middleware (a 413 is logged and counted too)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(HstsMiddleware)

    @app.exception_handler(WeCityError)
    async def _platform_error(request: Request, exc: WeCityError) -> Response:
        return render_error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in exc.errors())
        return render_error(request, ValidationFailed(problems or "invalid request",
                                                       message_zh=f"请求无效：{problems}"))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Routing's own answers (no such path, method not allowed) in each protocol's format too.
        if exc.status_code == 404:
            error: WeCityError = NotFound(f"nothing at {request.url.path}", message_zh="您访问的页面或资源不存在")
        elif exc.status_code == 405:
            error = MethodNotAllowed(f"{request.method} is not allowed here", message_zh=f"此处不支持 {request.method}")
        else:
            error = error_for_status(exc.status_code, str(exc.detail),
                                     message_zh=f"请求未能处理（HTTP {exc.status_code}）：{exc.detail}")
        response = render_error(request, error)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    @app.exception_handler(OverflowError)
    async def _number_too_big(request: Request, exc: OverflowError) -> Response:
        # A number no database row can carry (an id of 2**63, say) names nothing that exists.
        return render_error(request, NotFound("no such resource", message_zh="资源不存在", code="not_found"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return render_error(request, WeCityError("internal error; the request id identifies it in the logs",
                                                 message_zh="服务器内部错误，可凭请求编号查询日志"))

    app.include_router(ops.router)
    for module in modules:
        if hasattr(module, "register"):
            module.register(app)
        elif hasattr(module, "router"):
            app.include_router(module.router)
    return app
