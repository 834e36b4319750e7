"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from wecity.core.errors import WeCityError
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


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(ctx: Ctx) -> PlainTextResponse:
    try:
        await ctx.db.read(_platform_gauges, ctx.clock.now())
    except WeCityError:
        pass  # the database is down: /readyz says so; the process metrics are still worth serving
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)
