"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from wecity.core.errors import AuthenticationRequired, PermissionDenied, WeCityError
from wecity.core.http import Ctx
from wecity.core.migrate import current_heads, pending_heads

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrations current")
async def readyz(ctx: Ctx) -> JSONResponse:
    def check(conn: sa.Connection) -> set[str]:
        conn.execute(sa.text("SELECT 1"))
        return current_heads(conn)

    try:
        current = await ctx.db.read(check)
    except Exception as exc:  # any failure to reach the database means not ready
        return JSONResponse({"status": "unavailable", "database": f"unreachable: {exc.__class__.__name__}"},
                            status_code=503)
    pending = pending_heads(ctx.settings.database_url, current)
    if pending:
        return JSONResponse({"status": "unavailable", "database": "ok",
                             "migrations": {"current": sorted(current), "pending": sorted(pending)}},
                            status_code=503)
    return JSONResponse({"status": "ok", "database": "ok", "migrations": "current"})


OUTBOX = Gauge("wecity_outbox_messages", "Outbox messages by status (dead ones need an administrator)",
               ["status"])
OPEN_CASES = Gauge("wecity_open_cases", "Cases not yet closed, and those past their current SLA deadline",
                   ["kind"])


def _platform_gauges(conn: sa.Connection, now: Any) -> None:
    from wecity.cases.models import cases
    from wecity.core.outbox import counts

    for status, n in counts(conn).items():
        OUTBOX.labels(status).set(n)
    open_statuses = ["submitted", "dispatched", "acknowledged", "returned", "in_progress", "resolved", "verified"]
    OPEN_CASES.labels("open").set(conn.execute(sa.select(sa.func.count()).select_from(cases).where(
        cases.c.status.in_(open_statuses))).scalar_one())
    OPEN_CASES.labels("overdue").set(conn.execute(sa.select(sa.func.count()).select_from(cases).where(sa.or_(
        sa.and_(cases.c.status == "dispatched", cases.c.ack_due_at < now),
        sa.and_(cases.c.status.in_(["acknowledged", "in_progress"]), cases.c.resolve_due_at < now)))).scalar_one())


# Headers a reverse proxy adds: a request that carries one came from elsewhere, even if the proxy is local.
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def _is_loopback(host: str | None) -> bool:
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def check_metrics_access(request: Request, token: str | None) -> None:
    """With WECITY_METRICS_TOKEN set, the request must bear it; without, it must come from this machine.

    Metrics name routes, queue sizes and case counts: not secret, but not for anyone on the internet."""
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise AuthenticationRequired("/metrics needs Authorization: Bearer <WECITY_METRICS_TOKEN>",
                                         message_zh="/metrics 需要 Authorization: Bearer <WECITY_METRICS_TOKEN>",
                                         code="metrics.token")
        return
    if not _is_loopback(request.client.host if request.client else None) or any(
            name in request.headers for name in _FORWARDED):
        raise PermissionDenied("/metrics answers only this machine; set WECITY_METRICS_TOKEN to scrape it from elsewhere",
                               message_zh="/metrics 仅对本机开放；如需从其他机器采集，请设置 WECITY_METRICS_TOKEN",
                               code="metrics.local_only")


@router.get("/metrics", summary="Prometheus metrics (WECITY_METRICS_TOKEN as a bearer token, or from this machine)",
            response_class=PlainTextResponse)
async def metrics(request: Request, ctx: Ctx) -> PlainTextResponse:
    check_metrics_access(request, ctx.settings.metrics_token)
    try:
        await ctx.db.read(_platform_gauges, ctx.clock.now())
    except WeCityError:
        pass  # the database is down: /readyz says so; the process metrics are still worth serving
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)
