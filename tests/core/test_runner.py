"""The background runner: periodic tasks once per period, queued jobs, its own task, the app and the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.cli import main
from wecity.core import jobs, outbox, runner
from wecity.core.context import AppContext
from wecity.core.db import Database
from wecity.core.models import jobs as jobs_table
from wecity.core.models import periodic_tasks
from wecity.core.outbox import OutboxMessage, RetryPolicy
from wecity.core.runner import Runner
from wecity.notify.service import default_webhook_secret

from ..conftest import City, make_client
from .receiver import Receiver, free_port


def test_periodic_task_runs_once_per_period_among_several_runners(city: City, ctx: AppContext) -> None:
    runs: list[object] = []

    async def tick(c: AppContext) -> None:
        runs.append(c.clock.now())

    ctx.registry.add_periodic("test.tick", 60, tick)
    other_db = Database(city.settings.database_url, pool_size=2)
    a = Runner(ctx, runner_id="A")
    b = Runner(AppContext(settings=city.settings, db=other_db, clock=city.clock, registry=ctx.registry), runner_id="B")

    async def both() -> None:
        await asyncio.gather(a.run_periodic(), b.run_periodic())

    try:
        asyncio.run(both())
        assert len(runs) == 1
        city.clock.advance(seconds=59)
        asyncio.run(both())
        assert len(runs) == 1
        city.clock.advance(seconds=1)
        asyncio.run(both())
        assert len(runs) == 2
    finally:
        other_db.close()
    row = ctx.db.read_sync(lambda c: c.execute(sa.select(periodic_tasks)).one())
    assert row.last_run_at == city.clock.now() and row.claimed_by is None and row.last_error is None


def test_a_failing_periodic_task_keeps_its_error_and_runs_next_period(ctx: AppContext) -> None:
    calls = Counter[str]()

    async def broken(c: AppContext) -> None:
        calls["broken"] += 1
        raise RuntimeError("boom")

    ctx.registry.add_periodic("test.broken", 30, broken)
    r = Runner(ctx)
    asyncio.run(r.run_once())
    row = ctx.db.read_sync(lambda c: c.execute(sa.select(periodic_tasks)).one())
    assert row.last_error == "RuntimeError: boom" and row.next_run_at == ctx.clock.now() + timedelta(seconds=30)
    ctx.clock.advance(seconds=30)
    asyncio.run(r.run_once())
    assert calls["broken"] == 2
    with pytest.raises(ValueError):
        ctx.registry.add_periodic("test.never", 0, broken)


def test_queued_job_runs_once_and_a_failing_one_is_retried_then_dead(ctx: AppContext) -> None:
    seen: list[dict[str, object]] = []

    async def good(c: AppContext, args: dict[str, object]) -> None:
        seen.append(args)

    async def bad(c: AppContext, args: dict[str, object]) -> None:
        raise ValueError("cannot")

    ctx.registry.add_job("test.good", good)
    ctx.registry.add_job("test.bad", bad)

    def queue(conn: sa.Connection) -> tuple[int, int, int]:
        now = ctx.clock.now()
        return (jobs.enqueue_job(conn, name="test.good", args={"x": 1}, now=now),
                jobs.enqueue_job(conn, name="test.good", args={"x": 1}, now=now, dedupe_key="once"),
                jobs.enqueue_job(conn, name="test.bad", args={}, now=now))

    good_id, _, bad_id = ctx.db.write_sync(queue)
    assert ctx.db.write_sync(lambda c: jobs.enqueue_job(c, name="test.good", args={"x": 1}, now=ctx.clock.now(),
                                                        dedupe_key="once")) == _
    r = Runner(ctx, policy=RetryPolicy(max_attempts=2, base_seconds=5, jitter=0))
    asyncio.run(r.run_once())
    assert seen == [{"x": 1}, {"x": 1}]
    ctx.clock.advance(seconds=5)
    asyncio.run(r.run_until_idle())
    assert seen == [{"x": 1}, {"x": 1}]  # done jobs do not run again
    status = dict(ctx.db.read_sync(lambda c: c.execute(sa.select(jobs_table.c.id, jobs_table.c.status)).all()))
    assert status[good_id] == "done" and status[bad_id] == "dead"
    assert [d["id"] for d in ctx.db.read_sync(jobs.list_dead)] == [bad_id]
    ctx.db.write_sync(lambda c: jobs.retry_dead(c, bad_id, now=ctx.clock.now()))
    assert ctx.db.read_sync(lambda c: c.execute(sa.select(jobs_table.c.status).where(jobs_table.c.id == bad_id)).scalar())\
        == "queued"


def test_runner_task_delivers_in_the_background_until_stopped(wired_ctx: AppContext) -> None:
    ctx = wired_ctx
    delivered: list[int] = []

    async def deliver(msg: OutboxMessage) -> None:
        delivered.append(msg.id)

    async def scenario() -> None:
        r = ctx.services["runner"] = Runner(ctx, poll_seconds=30)  # only a wake-up makes it look again soon
        await r.start()
        await asyncio.sleep(0.05)  # its first round finds nothing; it sleeps
        ctx.registry.add_channel("test", deliver)  # after start: the notify domain's channels are in too
        assert {"webhook", "email", "in_app"} <= set(ctx.registry.channels)
        mid = await ctx.db.write(lambda c: outbox.enqueue(c, channel="test", target="x", payload={},
                                                          now=ctx.clock.now()))
        runner.wake(ctx)
        # Well under the 30-s poll, with room for a busy machine (the first round also starts the category
        # model's training, beside the rounds).
        for _ in range(2000):
            if delivered:
                break
            await asyncio.sleep(0.01)
        assert delivered == [mid]
        await r.stop()
        await ctx.db.write(lambda c: outbox.enqueue(c, channel="test", target="x", payload={}, now=ctx.clock.now()))
        await asyncio.sleep(0.1)
        assert delivered == [mid]  # stopped means stopped

    asyncio.run(scenario())


def test_app_runs_the_runner_when_background_work_is_on(city: City) -> None:
    with make_client(city, run_background=True) as client:
        r = client.app.state.ctx.services["runner"]
        assert isinstance(r, Runner) and r._task is not None and not r._task.done()
    assert r._task is None
    with make_client(city) as client:  # the test city has run_background=False
        assert "runner" not in client.app.state.ctx.services


def test_cli_lists_and_retries_dead_letters(city: City, ctx: AppContext, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    mid = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="webhook", target="http://127.0.0.1:9/x",
                                                     payload={}, now=ctx.clock.now()))
    ctx.db.write_sync(lambda c: c.execute(sa.text("UPDATE outbox_messages SET status='dead', attempts=8, "
                                                  "last_error='ConnectError: refused'")))
    monkeypatch.setenv("WECITY_DATABASE_URL", city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "k" * 40)
    assert main(["outbox", "list-dead"]) == 0
    out = capsys.readouterr().out
    assert f"#{mid}" in out and "ConnectError: refused" in out and "dead / 死信 1" in out
    assert main(["outbox", "retry", str(mid)]) == 0
    assert ctx.db.read_sync(outbox.counts)["pending"] == 1
    assert main(["outbox", "retry", str(mid)]) == 2  # not dead any more: a clear error
    assert "不是死信" in capsys.readouterr().err


def _failed_deliveries_due_again(ctx: AppContext) -> None:
    """Bring the retry of each failed delivery forward to the message's first due time.

    A runner process keeps the wall clock, on which a failed delivery (a timeout on a slow machine) waits
    30-60 s before its retry; the test decides when that time has come instead. Messages still claimed
    (a killed runner's) are left alone: their lease has to run out by itself."""
    from wecity.core.models import outbox_messages as t

    failed = sa.and_(t.c.status == outbox.PENDING, t.c.last_error.is_not(None), t.c.claimed_until.is_(None),
                     t.c.next_attempt_at > t.c.created_at)
    if ctx.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).where(failed)).scalar_one()):
        ctx.db.write_sync(lambda c: c.execute(t.update().where(failed).values(next_attempt_at=t.c.created_at)))


def _wait_while_progressing(ctx: AppContext, count: Callable[[], int], goal: int, *,
                            stalled_after: float = 30.0) -> None:
    """Wait until `count()` reaches `goal`, for as long as it keeps growing: a slow machine only makes it
    slower, and only a runner that stopped working makes it give up (a lease here lasts 3 s)."""
    last, last_change = count(), time.monotonic()
    while last < goal:
        _failed_deliveries_due_again(ctx)
        time.sleep(0.05)
        now_count = count()
        if now_count != last:
            last, last_change = now_count, time.monotonic()
        assert time.monotonic() - last_change < stalled_after, f"no progress for {stalled_after:g} s at {last}/{goal}"


def _failed_ids(ctx: AppContext) -> set[int]:
    from wecity.core.models import outbox_messages as t

    return set(ctx.db.read_sync(lambda c: c.execute(sa.select(t.c.id).where(t.c.last_error.is_not(None)))
                                .scalars().all()))


def test_runner_processes_deliver_every_message_once_and_take_over_from_a_killed_one(
        city: City, ctx: AppContext, tmp_path: Path) -> None:
    """Two `wecity runner` processes share 300 webhook messages; one is killed with SIGKILL midway."""
    n = 300
    port = free_port()
    ids = ctx.db.write_sync(lambda c: [outbox.enqueue(c, channel="webhook", target=f"http://127.0.0.1:{port}/hook",
                                                      payload={"seq": i}, now=ctx.clock.now()) for i in range(n)])
    receiver = Receiver(port, default_webhook_secret(city.settings), delay=0.003)
    env = {**os.environ, "WECITY_DATABASE_URL": city.settings.database_url, "WECITY_SECRET_KEY": city.settings.secret_key,
           "WECITY_VAR_DIR": str(tmp_path), "WECITY_OUTBOUND_ALLOW": "127.0.0.1"}
    command = [sys.executable, "-m", "wecity", "runner", "--poll", "0.05", "--batch", "10", "--lease", "3",
               "--timeout", "1"]
    logs = [open(tmp_path / f"runner-{name}.log", "wb") for name in "AB"]  # noqa: SIM115 (closed below)
    a, b = (subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs)
    try:
        _wait_while_progressing(ctx, lambda: sum(receiver.snapshot().values()), n // 3)
        before_kill = receiver.snapshot()
        a.kill()  # SIGKILL: no clean-up, its claims stay until their lease runs out
        a.wait()
        _wait_while_progressing(ctx, lambda: ctx.db.read_sync(outbox.counts)["delivered"], n)
        assert b.poll() is None, "runner B died"
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=20) == 0
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
        receiver.close()
    output = "".join((tmp_path / f"runner-{name}.log").read_text(errors="replace") for name in "AB")
    assert ctx.db.read_sync(outbox.counts) == {"pending": 0, "delivered": n, "dead": 0}, output[-3000:]
    assert receiver.bad == []
    assert sorted(receiver.received) == sorted(ids)  # every message arrived
    # While both ran, nothing arrived twice; afterwards only what A had sent but not yet recorded when it
    # was killed may arrive again (delivery is at least once; receivers dedupe on X-WeCity-Message-Id).
    # A delivery the runner gave up on (a timeout on a slow machine) may have arrived all the same and
    # arrives again with its retry: that is at least once too, and the outbox row records its failure.
    failed = _failed_ids(ctx)
    assert {i for i, c in before_kill.items() if c > 1} <= failed
    twice = [i for i, c in receiver.received.items() if c > 1 and i not in failed]
    print(f"delivered before kill {sum(before_kill.values())}, again after kill {len(twice)}, failed {len(failed)}")
    assert len(twice) <= 10 and all(receiver.received[i] == 2 for i in twice), twice


def test_on_postgresql_a_commit_in_another_process_wakes_the_runner(city: City, ctx: AppContext) -> None:
    if city.backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; runners on SQLite poll (and share the process that writes)")
    delivered: list[int] = []

    async def deliver(msg: OutboxMessage) -> None:
        delivered.append(msg.id)

    other = Database(city.settings.database_url, pool_size=1)  # stands for another process: no wake() call

    async def scenario() -> float:
        r = Runner(ctx, poll_seconds=30)
        await r.start()
        ctx.registry.add_channel("test", deliver)
        await asyncio.sleep(0.3)  # its first round finds nothing; it sleeps up to 30 s
        started = time.monotonic()
        mid = await other.write(lambda c: outbox.enqueue(c, channel="test", target="x", payload={},
                                                         now=ctx.clock.now()))
        while not delivered and time.monotonic() - started < 10:
            await asyncio.sleep(0.01)
        await r.stop()
        assert delivered == [mid]
        return time.monotonic() - started

    try:
        assert asyncio.run(scenario()) < 2
    finally:
        other.close()


def test_a_long_periodic_task_runs_under_its_own_lease(ctx: AppContext) -> None:
    """A task that says it may take long (a model's training) holds its claim that long and is not cut
    off at half the runner's lease; others keep the runner's."""
    seen: list[object] = []

    async def slow(c: AppContext) -> None:
        seen.append(c.db.read_sync(lambda conn: conn.execute(sa.select(periodic_tasks.c.claimed_until).where(
            periodic_tasks.c.name == "test.slow")).scalar_one()))
        await asyncio.sleep(0.3)

    ctx.registry.add_periodic("test.slow", 60, slow, lease_seconds=3600)
    delivered: list[int] = []

    async def deliver(msg: OutboxMessage) -> None:
        delivered.append(msg.id)

    ctx.registry.add_channel("test", deliver)
    ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="test", target="x", payload={}, now=ctx.clock.now()))
    r = Runner(ctx)
    r.lease_seconds = 0.2  # the runner's own cut-off would be 0.1 s

    async def round_then_settle() -> None:
        await r.run_periodic()
        # The long task runs beside the round: the outbox is delivered meanwhile, not after it.
        assert await r.deliver_outbox() == 1 and delivered and not seen[1:]
        assert "test.slow" in r._long
        await r.settle()

    asyncio.run(round_then_settle())
    row = ctx.db.read_sync(lambda c: c.execute(sa.select(periodic_tasks).where(periodic_tasks.c.name == "test.slow")).one())
    assert row.last_error is None and row.claimed_until is None
    assert seen == [ctx.clock.now() + timedelta(seconds=3600)]
