"""Pure ASGI middleware (cheaper than BaseHTTPMiddleware): request id, access log, metrics."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram

from wecity.core.logs import request_id_var
from wecity.core.redact import redact_path

log = logging.getLogger("wecity.access")

REQUESTS = Counter("wecity_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("wecity_http_request_seconds", "HTTP request latency", ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class RequestContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                request_id = value.decode("latin-1")[:64]
                break
        request_id = request_id or uuid.uuid4().hex[:16]
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            REQUESTS.labels(scope["method"], route_path, str(status)).inc()
            LATENCY.labels(scope["method"], route_path).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                path = redact_path(scope["path"])  # a tracking code in a path opens someone's report
                log.info("%s %s %s", scope["method"], path, status, extra={"fields": {
                    "method": scope["method"], "path": path, "status": status,
                    "duration_ms": round(elapsed * 1000, 2)}})
            request_id_var.reset(token)
