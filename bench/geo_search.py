"""Address search and reverse geocoding over the gazetteer of the committed OSM fixture: p99 of
`geocode.search` and `geocode.reverse` (what /api/v1/geo/search and /reverse run, districts and 街道
included), beside a bare FTS5 MATCH on the same table as the ceiling."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._common import row, workdir

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "osm" / "helsinki-test.osm.pbf"
QUERIES = 2000
GOAL = "< 5 ms"


def _latency_ms(calls: list[Callable[[], object]]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    for call in calls[:100]:  # warm the page cache and the connection
        call()
    times = []
    for call in calls:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.99) - 1] * 1000


def _queries(conn: sqlite3.Connection, rnd: random.Random) -> list[str]:
    """Pieces of the real names: substrings of 3 to 8 characters, and one- and two-character prefixes."""
    names = [n for (n,) in conn.execute("SELECT name FROM features")]
    out = []
    for _ in range(QUERIES):
        name = rnd.choice(names)
        if rnd.random() < 0.2:
            out.append(name[: rnd.choice((1, 2))])
        else:
            size = min(len(name), rnd.randint(3, 8))
            start = rnd.randint(0, len(name) - size)
            out.append(name[start:start + size])
    return out


def _area_index() -> Any:
    from wecity.demo.changsha import DISTRICT_NAMES_EN, boundaries
    from wecity.geo.index import Area, AreaIndex
    from wecity.geo.service import geometry_to_wgs84

    return AreaIndex([(Area(i, str(f["properties"]["adcode"]), f["properties"]["name"],
                            DISTRICT_NAMES_EN[f["properties"]["name"]]), geometry_to_wgs84(f["geometry"], "gcj02"))
                      for i, f in enumerate(boundaries())])


def run() -> list[dict[str, Any]]:
    from wecity.geo import geocode
    from wecity.geo.divisions import load_streets
    from wecity.geo.gazetteer import Gazetteer, build_gazetteer, fts_phrase

    rnd = random.Random(11)
    with workdir("geo-search") as tmp:
        path = tmp / "gazetteer.sqlite"
        stats = build_gazetteer(FIXTURE, path)
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        queries = _queries(conn, rnd)
        min_lon, max_lon, min_lat, max_lat = conn.execute(
            "SELECT min(min_lon), max(max_lon), min(min_lat), max(max_lat) FROM road_rtree").fetchone()
        points = [(rnd.uniform(min_lat, max_lat), rnd.uniform(min_lon, max_lon)) for _ in range(QUERIES)]
        gazetteer, index, streets = Gazetteer(path), _area_index(), load_streets()
        trigram = [q for q in queries if len(q) >= 3]

        def bare(q: str) -> Callable[[], object]:
            return lambda: conn.execute("SELECT rowid FROM features_fts WHERE features_fts MATCH ? LIMIT 10",
                                        (fts_phrase(q),)).fetchall()

        bare_p50, ceiling = _latency_ms([bare(q) for q in trigram])
        search_p50, search = _latency_ms([lambda q=q: geocode.search(q, index=index, gazetteer=gazetteer, streets=streets)
                          for q in queries])
        reverse_p50, reverse = _latency_ms([lambda p=p: geocode.reverse(p[0], p[1], index=index, gazetteer=gazetteer)
                           for p in points])
        hits = sum(1 for lat, lon in points if gazetteer.nearest_road(lat, lon, geocode.REVERSE_RADIUS_M))
        conn.close()
    size = (f"gazetteer of {FIXTURE.name}: {stats.roads} roads ({stats.road_lines} lines), {stats.pois} POIs, "
            f"{stats.addresses} addresses, {stats.places} places, built in {stats.seconds:.2f} s")
    return [
        row("geo search: geocode.search p99, 1 core", search, "ms", ceiling=ceiling, ceiling_unit="ms", goal=GOAL,
            note=f"{QUERIES:,} pieces of real names (3-8 characters; a fifth 1-2 character prefixes), with the demo "
                 f"city's 9 districts and {len(streets)} 街道; {size}; ceiling: a bare FTS5 MATCH ... LIMIT 10 "
                 f"on the same table, p99 (p50: search {search_p50:.3f} ms, bare MATCH {bare_p50:.3f} ms)"),
        row("geo reverse: geocode.reverse p99, 1 core", reverse, "ms", ceiling=ceiling, ceiling_unit="ms", goal=GOAL,
            note=f"{QUERIES:,} random points in the extract's bounding box, {hits:,} within "
                 f"{geocode.REVERSE_RADIUS_M:.0f} m of a named road; nearest road (R*Tree) and district; "
                 f"p50 {reverse_p50:.3f} ms"),
    ]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
