"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

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


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics() -> PlainTextResponse:
    return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)
