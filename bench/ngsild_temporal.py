"""NGSI-LD temporal aggregation: totalCount, sum, avg, min, max per hour over 10,000 points, one client."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench._common import row, run_wrk
from bench.ngsild_common import BASE, broker, headers, lua_headers, timed_sql

POINTS = 10_000
ENTITY = "urn:ngsi-ld:AirQualityObserved:wuyi-square"
START = datetime(2026, 10, 1, tzinfo=UTC)
GOAL = "< 50 ms"
QUERY = ("aggrMethods=totalCount,sum,avg,min,max&aggrPeriodDuration=PT1H&timerel=between"
         "&timeAt=2026-10-01T00:00:00Z&endTimeAt=2026-10-08T00:00:00Z")


def _readings() -> bytes:
    instances = [{"type": "Property", "value": 20 + (i % 97) * 0.5,
                  "observedAt": (START + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")} for i in range(POINTS)]
    return json.dumps({"id": ENTITY, "type": "AirQualityObserved", "pm25": instances}).encode()


def aggregate_script(key: str) -> str:
    return f"""
request = function()
  return wrk.format("GET", "{BASE}/temporal/entities/{ENTITY}?{QUERY}", {lua_headers(key, body=False)})
end
"""


def run() -> list[dict[str, Any]]:
    with broker("temporal") as b:
        r = httpx.post(f"{b.url}{BASE}/temporal/entities", content=_readings(),
                       headers=headers(b.key), timeout=120)
        if r.status_code != 201:
            raise RuntimeError(f"temporal create answered {r.status_code}: {r.text[:300]}")
        check = httpx.get(f"{b.url}{BASE}/temporal/entities/{ENTITY}?{QUERY}", headers=headers(b.key), timeout=30).json()
        counted = sum(c[0] for c in check["pm25"]["totalCount"])
        run_wrk(b.url, aggregate_script(b.key), duration=1, conns=1)
        result = run_wrk(b.url, aggregate_script(b.key), conns=1)
        start = START.timestamp()
        sql = ("SELECT attr, CAST((ts - ?) / 3600 AS INTEGER) AS b, count(*), sum(number), avg(number), min(number),"
               " max(number) FROM ngsild_attribute_history WHERE tenant = '' AND entity_id = ? AND ts >= ? AND ts < ?"
               " GROUP BY attr, b")
        raw_p50, raw_p99 = timed_sql(b.sqlite_path, sql, [(start, ENTITY, start, start + 7 * 86400)] * 200)
    note = (f"{result.describe()}; one connection; {counted:,} of {POINTS:,} points inside the week aggregated into"
            f" {len(check['pm25']['totalCount'])} hourly periods; ceiling: the same GROUP BY alone on SQLite"
            f" (p50 {raw_p50:.2f} ms, p99 {raw_p99:.2f} ms)")
    rows = [row(f"NGSI-LD temporal aggregation over {POINTS:,} points, p50", result.p50_ms, "ms", ceiling=raw_p50,
                ceiling_unit="ms", goal=GOAL, note=note),
            row(f"NGSI-LD temporal aggregation over {POINTS:,} points, p99", result.p99_ms, "ms", ceiling=raw_p99,
                ceiling_unit="ms", goal=GOAL)]
    if result.errors or result.bad_status or counted != POINTS:
        for r in rows:
            r["met"] = False
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
