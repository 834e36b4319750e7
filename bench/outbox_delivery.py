"""Outbox delivery: signed webhooks claimed, sent (to an in-process receiver) and recorded by the runner."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench._common import pg_admin_url, row, workdir

MESSAGES = 5000


def _deliver(url: str, runners: int, tmp: Path) -> float:
    """Messages per second from the first claim to the last recorded delivery."""
    from wecity.core import outbox
    from wecity.core.clock import FrozenClock
    from wecity.core.context import AppContext
    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.core.runner import Runner
    from wecity.core.settings import Settings
    from wecity.notify.channels import install

    now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    settings = Settings(database_url=url, media_dir=tmp / "media", secret_key="b" * 40, var_dir=tmp,
                        run_background=False)
    dbs = [Database(url, pool_size=8) for _ in range(runners)]
    upgrade(dbs[0].engine)
    dbs[0].write_sync(lambda c: [outbox.enqueue(c, channel="webhook", target="https://receiver.example/hook",
                                                payload={"event": "case.dispatched", "case_id": i}, now=now)
                                 for i in range(MESSAGES)])
    # The receiver answers at once, so the figure is the outbox's own cost: claim, sign, send, record.
    transport = httpx.MockTransport(lambda request: httpx.Response(204))

    async def run() -> float:
        async with httpx.AsyncClient(transport=transport) as client:
            contexts = [AppContext(settings=settings, db=db, clock=FrozenClock(now)) for db in dbs]
            install(contexts[0], client=client)
            started = time.perf_counter()
            await asyncio.gather(*(Runner(ctx, batch_size=200).run_until_idle() for ctx in contexts))
            return time.perf_counter() - started

    try:
        elapsed = asyncio.run(run())
        delivered = dbs[0].read_sync(outbox.counts)["delivered"]
        assert delivered == MESSAGES, delivered
    finally:
        for db in dbs:
            db.close()
    return MESSAGES / elapsed


def _client_alone() -> float:
    """The ceiling: the same signed-size POSTs through the same client and transport, 20 at a time,
    with no outbox around them."""
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    body = b'{"case_id":1,"event":"case.dispatched"}'

    async def run() -> float:
        async with httpx.AsyncClient(transport=transport) as client:
            started = time.perf_counter()
            for _ in range(MESSAGES // 20):
                await asyncio.gather(*(client.post("https://receiver.example/hook", content=body,
                                                   headers={"X-WeCity-Signature": "sha256=0"}) for _ in range(20)))
            return time.perf_counter() - started

    return MESSAGES / asyncio.run(run())


def run() -> list[dict[str, Any]]:
    ceiling = _client_alone()
    note = "ceiling: the same POSTs through httpx alone, no outbox"
    rows = []
    with workdir("outbox") as tmp:
        rows.append(row(f"outbox: {MESSAGES} webhooks delivered by 1 runner (SQLite)",
                        _deliver(f"sqlite:///{tmp / 'outbox.db'}", 1, tmp), "msg/s", ceiling=ceiling,
                        ceiling_unit="req/s", note=note))
    admin = pg_admin_url()
    if not admin:
        return rows
    for runners in (1, 2):
        name = f"wecity_bench_outbox_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            with workdir("outbox-pg") as tmp:
                figure = _deliver(admin.rsplit("/", 1)[0] + "/" + name, runners, tmp)
            rows.append(row(f"outbox: {MESSAGES} webhooks delivered by {runners} runner(s) (PostgreSQL)", figure,
                            "msg/s", ceiling=ceiling, ceiling_unit="req/s",
                            note=f"runners in one process, claims with FOR UPDATE SKIP LOCKED; {note}"))
        finally:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return rows


if __name__ == "__main__":
    for r in run():
        print(f"{r['workload']}: {r['figure']:,.0f} {r['unit']} (ceiling {r['ceiling']:,.0f} {r['ceiling_unit']})")
