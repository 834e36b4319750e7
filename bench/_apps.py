"""The ceiling apps: a bare ASGI app, and Starlette with one durable SQLite insert per request."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

_BODY = b'{"ok":true}'
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_BODY)).encode())]


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an HTTP answer can cost under uvicorn: read the body, send a fixed JSON reply."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": _BODY})


def starlette_insert() -> Starlette:
    """Parse the Open311 form, insert one row and commit it (WAL, synchronous=FULL as the platform by default)."""
    conn = sqlite3.connect(os.environ["BENCH_SQLITE_PATH"], isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={os.environ.get('BENCH_SQLITE_SYNCHRONOUS', 'FULL')}")
    conn.execute("CREATE TABLE IF NOT EXISTS reports (id INTEGER PRIMARY KEY, service_code TEXT NOT NULL,"
                 " lat REAL, long REAL, description TEXT, email TEXT, requested_at TEXT NOT NULL)")

    async def post(request: Request) -> JSONResponse:
        form = await request.form()
        # Autocommit mode: the INSERT is its own transaction, committed (and fsynced) before it returns.
        cur = conn.execute(
            "INSERT INTO reports (service_code, lat, long, description, email, requested_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (form.get("service_code"), float(str(form.get("lat"))), float(str(form.get("long"))),
             form.get("description"), form.get("email"), datetime.now(UTC).isoformat()))
        return JSONResponse([{"service_request_id": str(cur.lastrowid)}], status_code=201)

    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/", ok), Route("/open311/v2/requests.json", post, methods=["POST"])])
