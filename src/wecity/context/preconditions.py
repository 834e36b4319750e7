"""What clause 6.3 asks of every NGSI-LD request before the operation itself is looked at, for the
routed endpoints and the fast path alike (it sits in front of both):

- a POST, PATCH or PUT without Content-Length is a bare 411 (6.3.2, 6.3.4), decided before anything else;
- an Accept the operation cannot answer is a 406 (6.3.4), before the target is looked up (so before a 404);
- a query parameter the operation does not define is an InvalidRequest (6.3.20): the parameters each
  route declares for /openapi.json (`openapi_extra=operation(...)`) are the ones it takes;
- the NGSILD-Tenant a request names is echoed on its response, errors included (6.3.14);
- a creation that succeeds makes its tenant exist (5.5.10; wecity.context.tenants); any other operation
  on a tenant that does not exist is a NonexistentTenant, decided by `require_tenant`, a guard that runs
  after the access check (an anonymous caller learns nothing about which tenants exist).

Each check is a scan of the request's headers; a known tenant costs no database read."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from starlette.requests import Request

from wecity.context import tenants
from wecity.context.errors import invalid_request, not_acceptable
from wecity.context.openapi import PARAMETERS
from wecity.context.protocol import GEOJSON, JSON_LD, negotiate, render_problem
from wecity.core.context import AppContext
from wecity.core.errors import WeCityError

PREFIX = "/ngsi-ld/"
_WITH_BODY = frozenset({"POST", "PATCH", "PUT"})
# Retrieve Entity and Query Entities (GET or POST) may answer GeoJSON (6.3.15); nothing else does.
_GEO = re.compile(r"^/ngsi-ld/v1/(entities/?|entities/[^/]+|entityOperations/query/?)$")
# The operations whose answer is a document in the body (the others answer 201/204 with no body).
_ANSWERS = re.compile(r"^/ngsi-ld/v1/(entityOperations|temporal/entityOperations)/query/?$")
# Creations: they make the tenant they name exist (5.5.10).
_CREATES = re.compile(r"^/ngsi-ld/v1/(entities|subscriptions|csourceRegistrations|csourceSubscriptions"
                      r"|temporal/entities|entityOperations/create|entityOperations/upsert)/?$")
# Not about a tenant's data: @contexts keep their own tenant rules (the cached ones are everyone's) and
# the broker's own identity is asked for per tenant before any data exists.
_TENANTLESS = ("/ngsi-ld/v1/jsonldContexts", "/ngsi-ld/v1/info/")


def offered(method: str, path: str) -> tuple[str, ...]:
    """The media types an operation may answer in."""
    return GEOJSON if method in ("GET", "POST") and _GEO.match(path) else JSON_LD


@dataclass(frozen=True, slots=True)
class Declared:
    """The query parameters an operation takes, as its route declares them."""

    methods: frozenset[str]
    path: re.Pattern[str]
    names: frozenset[str]


def declared(routes: Iterable[Any]) -> list[Declared]:
    """The query parameters of each route that declares its parameters; a route without a declaration of
    its own (the same path with a trailing "/") takes that of its path without it."""
    by_path: dict[tuple[str, frozenset[str]], frozenset[str]] = {}
    routes = [r for r in routes if isinstance(r, APIRoute)]
    for route in routes:
        refs = (route.openapi_extra or {}).get("parameters")
        if refs is not None:
            params = [PARAMETERS[ref["$ref"].rsplit("/", 1)[1]] for ref in refs]
            names = frozenset(p["name"] for p in params if p["in"] == "query")
            by_path[(route.path.rstrip("/"), frozenset(route.methods))] = names
    out = []
    for route in routes:
        taken = by_path.get((route.path.rstrip("/"), frozenset(route.methods)))
        if taken is not None:
            out.append(Declared(frozenset(route.methods), route.path_regex, taken))
    return out


def undeclared(table: list[Declared], method: str, path: str, query: bytes) -> list[str]:
    """The query parameters of a request its operation does not take (none when no route declares)."""
    for entry in table:
        if method in entry.methods and entry.path.match(path):
            given = {name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
            return sorted(given - entry.names)
    return []


class Preconditions:
    """ASGI middleware checking the preconditions above for requests under /ngsi-ld/."""

    def __init__(self, app: Any, declared: list[Declared] | None = None) -> None:
        self.app = app
        self.declared = declared or []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        length = accept = tenant = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"accept":
                accept = value
            elif name == b"ngsild-tenant":
                tenant = value
        if length is None and method in _WITH_BODY:
            await _bare(send, 411)
            return
        if tenant is not None:
            send = _echoing(send, tenant)
        try:
            if accept and (method == "GET" or (method == "POST" and _ANSWERS.match(path))):
                text = accept.decode("latin-1")
                if negotiate(text, offered(method, path)) is None:
                    raise not_acceptable(f"cannot answer in {text!r}", f"无法以 {text!r} 格式应答")
            if scope.get("query_string"):
                unknown = undeclared(self.declared, method, path, scope["query_string"])
                if unknown:
                    raise invalid_request(f"{', '.join(unknown)[:200]}: not a parameter of this operation",
                                          f"{'、'.join(unknown)[:200]}：不是此操作的参数")
            name = tenant.decode("latin-1") if tenant else ""
            if name and method == "POST" and _CREATES.match(path) and tenants.NAME.match(name):
                send = _creating(send, scope["app"].state.ctx, name)
        except WeCityError as exc:
            await render_problem(Request(scope, receive), exc)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def require_tenant(request: Request) -> None:
    """Guard of every NGSI-LD route (after the access check): NonexistentTenant for an operation other
    than a creation on a tenant that does not exist."""
    name = request.headers.get("ngsild-tenant")
    path = request.url.path
    if not name or not tenants.NAME.match(name) or path.startswith(_TENANTLESS):
        return
    if request.method == "POST" and _CREATES.match(path):
        return
    await tenants.require(request.app.state.ctx, name)


async def _bare(send: Any, status: int) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _echoing(send: Any, tenant: bytes) -> Any:
    async def echo(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), (b"ngsild-tenant", tenant)])
        await send(message)

    return echo


def _creating(send: Any, ctx: AppContext, tenant: str) -> Any:
    """`send`, recording the tenant as existing before a successful creation is answered (so the answer
    means the tenant is there, durably)."""

    async def record_then_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
            await tenants.ensure(ctx, tenant)
        await send(message)

    return record_then_send
