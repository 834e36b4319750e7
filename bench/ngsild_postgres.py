"""NGSI-LD single partial attribute update on PostgreSQL: PATCH /entities/{id}/attrs/tiltAngle under wrk, the
same load as `ngsild_partial_update` (SQLite). On PostgreSQL every write first takes an advisory lock on its
entity's bucket (wecity.context.rows.lock_entities), one more statement than on SQLite: this measures it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bench._common import pg_admin_url, pg_database, row
from bench.ngsild_common import broker
from bench.ngsild_partial_update import GOAL, measure


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
        return measure(b, lambda: _history_rows(url), WORKLOAD,
                       "each update takes its bucket's advisory lock, writes the entity and its history row")
