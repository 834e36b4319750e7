"""NGSI-LD geo-query: `near;maxDistance==200` over 100,000 manholes in central Changsha, one client."""

from __future__ import annotations

import json
import random
from typing import Any

from bench._common import row, run_wrk
from bench.ngsild_common import BASE, CENTRE_BOX, broker, load, lua_headers, timed_sql
from wecity.context.search import grid_cells

ENTITIES = 100_000
RADIUS = 200
GOAL = "< 20 ms"


def near_script(seed: int, key: str) -> str:
    minx, miny, maxx, maxy = CENTRE_BOX
    return f"""
math.randomseed({seed})
request = function()
  local lon = {minx} + math.random() * {maxx - minx}
  local lat = {miny} + math.random() * {maxy - miny}
  return wrk.format("GET", string.format(
    "{BASE}/entities?type=Manhole&georel=near%%3BmaxDistance%%3D%%3D{RADIUS}&geometry=Point"
    .. "&coordinates=%%5B%.6f%%2C%.6f%%5D&limit=1000&count=true", lon, lat), {lua_headers(key, body=False)})
end
"""


def _bbox_params(n: int) -> list[tuple[float, ...]]:
    rng = random.Random(3)
    minx, miny, maxx, maxy = CENTRE_BOX
    dlat, dlon = RADIUS / 111_320, RADIUS / (111_320 * 0.881)
    out = []
    for _ in range(n):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        cells = grid_cells(x - dlon, y - dlat, x + dlon, y + dlat)
        out.append((x + dlon, x - dlon, y + dlat, y - dlat, json.dumps(cells)))
    return out


def run() -> list[dict[str, Any]]:
    with broker("near") as b:
        load_seconds = load(b.url, b.key, ENTITIES)
        run_wrk(b.url, near_script(1, b.key), duration=1, conns=1)
        result = run_wrk(b.url, near_script(random.randrange(1 << 30), b.key), conns=1)
        # The store alone: the same grid-cell and bounding-box pre-filter straight on SQLite, rows read; no
        # HTTP, no JSON decoding, no exact distance test.
        sql = ("SELECT entity_id, attrs FROM ngsild_entities WHERE tenant = '' AND type = "
               "'https://uri.etsi.org/ngsi-ld/default-context/Manhole' AND min_lon <= ? AND max_lon >= ? "
               "AND min_lat <= ? AND max_lat >= ? AND geo_cell IN (SELECT value FROM json_each(?))")
        raw_p50, raw_p99 = timed_sql(b.sqlite_path, sql, _bbox_params(500))
    note = (f"{result.describe()}; one connection; {ENTITIES:,} entities loaded in {load_seconds:.1f} s;"
            f" ceiling: the cell + bbox pre-filter query alone on SQLite (p50 {raw_p50:.2f} ms, p99 {raw_p99:.2f} ms)")
    rows = [row(f"NGSI-LD near;maxDistance=={RADIUS} over {ENTITIES:,} entities, p50", result.p50_ms, "ms",
                ceiling=raw_p50, ceiling_unit="ms", goal=GOAL, note=note),
            row(f"NGSI-LD near;maxDistance=={RADIUS} over {ENTITIES:,} entities, p99", result.p99_ms, "ms",
                ceiling=raw_p99, ceiling_unit="ms", goal=GOAL)]
    if result.errors or result.bad_status:
        for r in rows:
            r["met"] = False
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
