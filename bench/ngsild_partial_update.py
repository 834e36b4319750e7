"""NGSI-LD single partial attribute update: PATCH /entities/{id}/attrs/tiltAngle under wrk, on SQLite."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from typing import Any

from bench import ceilings
from bench._common import row, run_wrk
from bench.ngsild_common import BASE, broker, load, lua_headers

ENTITIES = 10_000
GOAL = ">= 2,000"


def patch_script(count: int, seed: int, key: str) -> str:
    # Normal readings (0-10°): below the demo city's tiltAngle>15 rule, so this measures the update itself,
    # not the case engine opening thousands of cases.
    return f"""
math.randomseed({seed})
request = function()
  local i = math.random(0, {count - 1})
  local body = string.format('{{"value": %.2f, "observedAt": "2026-11-02T09:%02d:%02dZ"}}',
                             math.random() * 10, math.random(0, 59), math.random(0, 59))
  return wrk.format("PATCH", "{BASE}/entities/urn:ngsi-ld:Manhole:" .. i .. "/attrs/tiltAngle",
                    {lua_headers(key)}, body)
end
"""


def _history_rows(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM ngsild_attribute_history WHERE attr LIKE '%tiltAngle'")
                   .fetchone()[0])
    finally:
        conn.close()


def run() -> list[dict[str, Any]]:
    with broker("patch") as b:
        return measure(b, lambda: _history_rows(b.sqlite_path),
                       "NGSI-LD PATCH attrs/{attr} (single partial update, SQLite)",
                       "each update also writes its history row")


def measure(b: Any, history_rows: Callable[[], int], workload: str, what: str) -> list[dict[str, Any]]:
    """The PATCH load on the broker `b` (its `ENTITIES` manholes loaded first), beside ceiling (b); every
    success response checked against the history rows it added (`history_rows()` counts them)."""
    load(b.url, b.key, ENTITIES)
    before = history_rows()
    warm = run_wrk(b.url, patch_script(ENTITIES, random.randrange(1 << 30), b.key), duration=1)
    result = run_wrk(b.url, patch_script(ENTITIES, random.randrange(1 << 30), b.key))
    stored = history_rows() - before
    acknowledged = warm.ok + result.ok
    ceiling = ceilings.starlette_insert()
    check = (f"history rows added {stored:,} for {acknowledged:,} success responses" if stored >= acknowledged
             else f"LOST WRITES: {stored:,} history rows for {acknowledged:,} success responses")
    r = row(workload, result.rps, "req/s", ceiling=ceiling.rps, ceiling_unit="req/s", goal=GOAL,
            note=f"{result.describe()}; {ENTITIES:,} entities, {what} and is checked against the sensor rules"
                 f" (none fire); {check}; ceiling: (b) Starlette + 1 SQLite insert/request")
    if stored < acknowledged or result.errors or result.bad_status:
        r["met"] = False
    return [r]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
