"""NGSI-LD batch upsert: POST /entityOperations/upsert of 1,000 entities per request, two clients, SQLite."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from typing import Any

import httpx

from bench import ceilings
from bench._common import row, seconds
from bench.ngsild_common import BASE, broker, headers, manhole

BATCH = 1000
DISTINCT = 50_000  # ids cycle over this many entities: the first pass creates, later passes replace
CLIENTS = 2
GOAL = ">= 50,000"


def _bodies(count: int) -> list[bytes]:
    rng = random.Random(11)
    return [json.dumps([manhole(i, rng) for i in range(start, start + BATCH)]).encode()
            for start in range(0, count, BATCH)]


def _drive(url: str, key: str, bodies: list[bytes], until: float, start: int, step: int, done: list[int],
           failures: list[str]) -> None:
    i = start
    with httpx.Client(base_url=url, timeout=120) as client:
        while time.perf_counter() < until:
            r = client.post(f"{BASE}/entityOperations/upsert", content=bodies[i % len(bodies)], headers=headers(key))
            if r.status_code in (201, 204):
                done.append(BATCH)
            else:
                failures.append(f"{r.status_code}: {r.text[:200]}")
            i += step


def _stored(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM ngsild_entities").fetchone()[0])
    finally:
        conn.close()


def run() -> list[dict[str, Any]]:
    bodies = _bodies(DISTINCT)
    with broker("upsert") as b:
        done: list[int] = []
        failures: list[str] = []
        started = time.perf_counter()
        until = started + seconds()
        threads = [threading.Thread(target=_drive, args=(b.url, b.key, bodies, until, k, CLIENTS, done, failures))
                   for k in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        stored = _stored(b.sqlite_path)
    figure = sum(done) / elapsed
    expected = min(DISTINCT, sum(done))
    ceiling = ceilings.sqlite_executemany()
    r = row("NGSI-LD batch upsert (1,000 entities/request, SQLite)", figure, "entities/s", ceiling=ceiling,
            ceiling_unit="rows/s", goal=GOAL,
            note=f"{sum(done):,} entities upserted in {elapsed:.1f} s by {CLIENTS} clients; each entity has 3 attributes"
                 f" and writes 1 entity row + 3 history rows; {stored:,} distinct entities stored"
                 f" (expected {expected:,}); {len(failures)} failed requests; ceiling: (c) raw SQLite executemany")
    if failures or stored < expected:
        r["met"] = False
    return [r]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
