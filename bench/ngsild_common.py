"""Shared by the NGSI-LD benchmarks: a broker in its own process on the demo city, generated city
entities, bulk loading, and a raw SQLite query timer for the store-alone ceilings."""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench._common import DemoCity, Server, free_port, make_demo_city, wecity_server, workdir

BASE = "/ngsi-ld/v1"
# Central Changsha (WGS-84): about 20 km x 22 km, where a city's street furniture is densest.
CENTRE_BOX = (112.88, 28.10, 113.08, 28.30)


@dataclass
class Broker:
    city: DemoCity
    server: Server
    dir: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def key(self) -> str:
        """The demo city's API key: NGSI-LD asks for credentials (WECITY_NGSILD_AUTH=required)."""
        return self.city.api_key

    @property
    def sqlite_path(self) -> str:
        return self.city.url.split("///", 1)[1]


@contextmanager
def broker(tag: str, database_url: str | None = None) -> Iterator[Broker]:
    """`wecity serve` (with its runner, as deployed) on a fresh demo city on SQLite (or `database_url`)."""
    with workdir(f"ngsild-{tag}") as tmp:
        city = make_demo_city(tmp, database_url=database_url)
        with wecity_server(port=free_port(), env=city.env, log_path=tmp / "server.log") as server:
            yield Broker(city, server, tmp)


def manhole(i: int, rng: random.Random, box: tuple[float, float, float, float] = CENTRE_BOX) -> dict[str, Any]:
    minx, miny, maxx, maxy = box
    return {"id": f"urn:ngsi-ld:Manhole:{i}", "type": "Manhole",
            "tiltAngle": {"type": "Property", "value": round(rng.uniform(0, 10), 2), "unitCode": "DD"},
            "status": {"type": "Property", "value": "closed"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [
                round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6)]}}}


def headers(key: str) -> dict[str, str]:
    return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}


def lua_headers(key: str, *, body: bool = True) -> str:
    """The same headers as a Lua table for wrk.format."""
    content = '["Content-Type"] = "application/json", ' if body else ""
    return f'{{{content}["Authorization"] = "Bearer {key}"}}'


def load(url: str, key: str, count: int, *, batch: int = 2000, seed: int = 7) -> float:
    """Upsert `count` manholes in batches; returns the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as client:
        for start in range(0, count, batch):
            items = [manhole(i, rng) for i in range(start, min(count, start + batch))]
            r = client.post(f"{BASE}/entityOperations/upsert", content=json.dumps(items), headers=headers(key))
            if r.status_code not in (201, 204):
                raise RuntimeError(f"upsert answered {r.status_code}: {r.text[:300]}")
    return time.perf_counter() - started


def timed_sql(path: str, sql: str, params_list: list[tuple[Any, ...]]) -> tuple[float, float]:
    """Median and p99 (ms) of running `sql` once per parameter tuple with sqlite3 and reading every row."""
    conn = sqlite3.connect(path)
    times = []
    try:
        for params in params_list:
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        conn.close()
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]
