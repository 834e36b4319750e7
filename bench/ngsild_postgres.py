"""NGSI-LD single partial attribute update on PostgreSQL: PATCH /entities/{id}/attrs/tiltAngle under wrk, the
same load as `ngsild_partial_update` (SQLite). On PostgreSQL every write first takes an advisory lock on its
entity's bucket (wecity.context.rows.lock_entities), one more statement than on SQLite: this measures it."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa

from bench import ceilings
from bench._common import pg_admin_url, pg_database, row, run_wrk
from bench.ngsild_common import broker, load
from bench.ngsild_partial_update import ENTITIES, GOAL, patch_script


def _history_rows(url: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT count(*) FROM ngsild_attribute_history "
                                            "WHERE attr LIKE '%tiltAngle'")).scalar_one())
    finally:
        engine.dispose()


WORKLOAD = "NGSI-LD PATCH attrs/{attr} (single partial update, PostgreSQL)"


def run() -> list[dict[str, Any]]:
    admin = pg_admin_url()
    if not admin:
        return [row(WORKLOAD, None, "req/s", goal=GOAL,
                    note="not measured: set BENCH_PG_URL or WECITY_TEST_PG_URL to a superuser URL")]
    with pg_database(admin) as url:
        return _measure(url)


def _measure(url: str) -> list[dict[str, Any]]:
    with broker("patch-pg", database_url=url) as b:
        load(b.url, b.key, ENTITIES)
        before = _history_rows(url)
        warm = run_wrk(b.url, patch_script(ENTITIES, random.randrange(1 << 30), b.key), duration=1)
        result = run_wrk(b.url, patch_script(ENTITIES, random.randrange(1 << 30), b.key))
        stored = _history_rows(url) - before
    acknowledged = warm.ok + result.ok
    ceiling = ceilings.starlette_insert()
    check = (f"history rows added {stored:,} for {acknowledged:,} success responses" if stored >= acknowledged
             else f"LOST WRITES: {stored:,} history rows for {acknowledged:,} success responses")
    r = row(WORKLOAD, result.rps, "req/s",
            ceiling=ceiling.rps, ceiling_unit="req/s", goal=GOAL,
            note=f"{result.describe()}; {ENTITIES:,} entities, each update takes its bucket's advisory lock, writes"
                 f" the entity and its history row and is checked against the sensor rules (none fire); {check};"
                 f" ceiling: (b) Starlette + 1 SQLite insert/request")
    if stored < acknowledged or result.errors or result.bad_status:
        r["met"] = False
    return [r]
