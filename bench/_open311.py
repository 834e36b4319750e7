"""Shared by the Open311 benchmarks: the demo city's category codes, a first request, stored-report counts."""

from __future__ import annotations

import time
from typing import Any

import httpx
import sqlalchemy as sa

from bench._common import DemoCity, WrkResult, row, wrk, wrk_result

PATH = "/open311/v2/requests.json"
GOAL_RPS = ">= 2,000"
GOAL_P99 = "< 50 ms"


def category_codes(url: str) -> list[str]:
    """Active categories a plain Open311 report can use: not those with a required attribute (they need more
    form fields), nor those another channel alone takes (enterprise 诉求: Open311 refuses them with a 400)."""
    from wecity.cases.models import categories

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.select(categories.c.code, categories.c.attributes, categories.c.channels)
                                 .where(categories.c.active.is_(True)).order_by(categories.c.sort_order)).all()
    finally:
        engine.dispose()
    return [r.code for r in found if not any(a.get("required") for a in r.attributes or [])
            and (r.channels is None or "open311" in r.channels)]


def count_reports(url: str) -> int:
    from wecity.cases.models import reports

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(reports)).scalar_one())
    finally:
        engine.dispose()


def first_request(base_url: str, city: DemoCity, code: str) -> str | None:
    """POST one report before the load; None if it was accepted, else why not (e.g. no endpoint yet)."""
    form = {"api_key": city.api_key, "service_code": code, "lat": "28.1940", "long": "112.9720",
            "description": "benchmark: first request", "email": "citizen@example.com"}
    response = httpx.post(base_url + PATH, data=form, timeout=30)
    if response.status_code == 200 and '"service_request_id"' in response.text:
        return None
    return f"POST {PATH} answered {response.status_code}: {response.text[:200]}"


def profiled_load(server_url: str, pid: int, lua: str, seconds: float = 3) -> tuple[str, int]:
    """Load the server a little longer and profile it meanwhile (kept out of the timed run).

    Returns the profile summary and the number of success responses (for the stored-reports check).
    """
    from bench._profile import enabled, profile

    if not enabled():
        return "", 0
    proc = wrk(server_url, lua, duration=seconds + 2)
    time.sleep(1)
    summary = profile(pid, seconds)
    return summary, wrk_result(proc).ok


def unavailable_rows(label: str, reason: str) -> list[dict[str, Any]]:
    return [row(f"Open311 POST requests.json ({label})", None, "req/s", goal=GOAL_RPS, note=f"not measured: {reason}")]


def stored_note(stored: int, acknowledged: int) -> str:
    if stored >= acknowledged:
        return f"stored {stored:,} new reports for {acknowledged:,} success responses"
    return f"LOST WRITES: only {stored:,} new reports stored for {acknowledged:,} success responses"


def result_rows(label: str, result: WrkResult, ceiling: WrkResult, ceiling_name: str, *, stored: int,
                acknowledged: int, extra: str = "") -> list[dict[str, Any]]:
    check = stored_note(stored, acknowledged)
    rows = [
        row(f"Open311 POST requests.json ({label})", result.rps, "req/s", ceiling=ceiling.rps, ceiling_unit="req/s",
            goal=GOAL_RPS, note=f"{result.describe()}; {check}; ceiling: {ceiling_name}{extra}"),
        row(f"Open311 POST requests.json p99 ({label})", result.p99_ms, "ms", ceiling=ceiling.p99_ms,
            ceiling_unit="ms", goal=GOAL_P99, note=f"ceiling: p99 of {ceiling_name}"),
    ]
    if stored < acknowledged or result.errors:
        rows[0]["met"] = False
    if result.rps < 2000:
        rows[0]["note"] += "; where the time goes: docs/benchmarks.md, 'What limits the Open311 intake'"
    return rows
