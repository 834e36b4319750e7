"""Point-in-area lookup: AreaIndex.locate on one core, the STRtree alone, and GET /api/v1/areas/locate over HTTP."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from typing import Any

from bench import ceilings
from bench._common import free_port, make_demo_city, row, run_wrk, wecity_server, workdir
from bench._scripts import CELL, changsha, locate_get

GOAL = ">= 200,000"


def _points(n: int, seed: int = 7) -> list[tuple[float, float]]:
    """Uniform random (lat, lon) over Changsha's bounding box: inside, on borders and outside the city."""
    (minx, miny, maxx, maxy), _ = changsha()
    rnd = random.Random(seed)
    return [(rnd.uniform(miny, maxy), rnd.uniform(minx, maxx)) for _ in range(n)]


def _best_rate(loop: Callable[[], None], n: int, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - t0)
    return n / best


def dict_ceiling(n: int) -> float:
    """A plain dict look-up loop over n keys: the most a Python loop doing one look-up per point can do."""
    (minx, miny, maxx, maxy), _ = changsha()
    xs = range(int(minx / CELL), int(maxx / CELL) + 1)
    ys = range(int(miny / CELL), int(maxy / CELL) + 1)
    table = {(x, y): (x, y) for x in xs for y in ys}
    rnd = random.Random(3)
    keys = [(rnd.choice(xs), rnd.choice(ys)) for _ in range(n)]

    def loop() -> None:
        get = table.get
        for k in keys:
            get(k)

    return _best_rate(loop, n)


def run() -> list[dict[str, Any]]:
    from wecity.core.db import Database
    from wecity.geo.service import load_area_index

    n = int(os.environ.get("BENCH_GEO_POINTS", "200000"))
    rows: list[dict[str, Any]] = []
    with workdir("geo") as tmp:
        city = make_demo_city(tmp, history=False)  # look-ups read only the areas
        db = Database(city.url, pool_size=1)
        index = db.read_sync(load_area_index)
        db.close()
        points = _points(n)
        ceiling = dict_ceiling(n)

        def grid() -> None:
            locate = index.locate
            for lat, lon in points:
                locate(lat, lon)

        exact_points = points[: max(n // 10, 1)]

        def exact() -> None:
            locate_exact = index.locate_exact
            for lat, lon in exact_points:
                locate_exact(lat, lon)

        rate = _best_rate(grid, n)
        exact_rate = _best_rate(exact, len(exact_points), repeats=1)
        # The fast path must give the STRtree's answers, or its speed means nothing.
        disagree = sum(1 for lat, lon in exact_points if index.locate(lat, lon) != index.locate_exact(lat, lon))
        inside = sum(1 for lat, lon in exact_points if index.locate(lat, lon) is not None)
        agreement = (f"{len(exact_points) - disagree:,} of {len(exact_points):,} points give the STRtree's answer"
                     f" ({inside:,} inside a district)")
        rows.append(row("point-in-area: AreaIndex.locate, 1 core", rate, "lookups/s", ceiling=ceiling,
                        ceiling_unit="lookups/s", goal=GOAL,
                        note=f"{n:,} random points in Changsha's bounding box, best of 3; ceiling: a plain dict"
                             f" look-up loop over {n:,} keys; {agreement}"))
        if disagree:
            rows[-1]["met"] = False
        rows.append(row("point-in-area: STRtree query per point (locate_exact), 1 core", exact_rate, "lookups/s",
                        ceiling=ceiling, ceiling_unit="lookups/s",
                        note=f"for comparison, {len(exact_points):,} points"))

        bare = ceilings.bare_asgi_get()
        with wecity_server(port=free_port(), env=city.env, log_path=tmp / "server.log") as server:
            run_wrk(server.url, locate_get(), duration=1)  # warm-up
            http = run_wrk(server.url, locate_get())
        rows.append(row("GET /api/v1/areas/locate (wecity serve, SQLite)", http.rps, "req/s", ceiling=bare.rps,
                        ceiling_unit="req/s",
                        note=f"{http.describe()}; ceiling (a) bare ASGI: p99 {bare.p99_ms:.1f} ms"))
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
