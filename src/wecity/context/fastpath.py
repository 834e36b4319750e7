"""A direct route to the broker's hot write endpoints (attribute updates, batch upsert), in front of the
platform's router: the same handler functions and error handlers, without what the framework adds per
request — matching the path against every route of the platform, solving dependencies, a thread hop for
the context dependency, telemetry — which cost more than the handler and its database write together
(docs/benchmarks.md). Any other request goes on to the framework untouched."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware import Middleware
from starlette.responses import Response

from wecity.core.context import AppContext

log = logging.getLogger(__name__)
Handler = Callable[..., Awaitable[Response]]
Guard = Callable[[Request], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route:
    """What the request-metrics middleware reads from `scope["route"]`: the path template."""

    path: str
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    names: tuple[str, ...]


def route(method: str, path: str, handler: Handler) -> Route:
    """A route for `handler(**path_params, request=..., ctx=...)`; `{name}` matches one path segment,
    as in the framework's own routes."""
    names = tuple(re.findall(r"{(\w+)}", path))
    pattern = re.compile("^" + re.sub(r"{\w+}", "([^/]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}")) + "$")
    return Route(path, method, pattern, handler, names)


class FastRoutes:
    """ASGI middleware serving `routes` itself and passing everything else on to `app`."""

    def __init__(self, app: Any, routes: list[Route], guards: list[Guard]) -> None:
        self.app = app
        self.guards = guards
        self.routes: dict[str, list[Route]] = {}
        for r in routes:
            self.routes.setdefault(r.method, []).append(r)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            path = scope["path"]
            for candidate in self.routes.get(scope["method"], ()):
                found = candidate.pattern.match(path)
                if found is not None:
                    await self._serve(candidate, found.groups(), scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _serve(self, r: Route, values: tuple[str, ...], scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["route"] = r
        app: FastAPI = scope["app"]
        request = Request(scope, receive)
        ctx: AppContext = app.state.ctx
        try:
            for guard in self.guards:  # the routes' own dependencies, e.g. the access check
                await guard(request)
            response = await r.handler(*values, request=request, ctx=ctx)
        except Exception as exc:  # the app's own exception handlers, exactly as for its routed requests
            handler = next((app.exception_handlers[k] for k in type(exc).__mro__ if k in app.exception_handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)  # type: ignore[misc]
        await response(scope, receive, send)


def install(app: FastAPI, routes: list[Route], *, guards: list[Guard]) -> None:
    """Serve `routes` directly, inside the platform's request middleware (request id, access log and
    metrics stay as they are) and in front of the framework's routing. `guards` run first, in order, as
    the dependencies the same routes have in the framework."""
    app.user_middleware.append(Middleware(FastRoutes, routes=routes, guards=guards))  # type: ignore[arg-type]
