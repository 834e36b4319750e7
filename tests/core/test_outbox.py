"""The transactional outbox: written with the change, delivered with backoff, dead-lettered, never lost."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from wecity.core import outbox
from wecity.core.context import AppContext
from wecity.core.db import Database
from wecity.core.errors import Conflict, NotFound, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.core.outbox import OutboxMessage, RetryPolicy, Undeliverable
from wecity.core.runner import Runner
from wecity.identity.service import record_audit

from ..conftest import City


def _enqueue(ctx: AppContext, n: int = 1, **kw: object) -> list[int]:
    def run(conn: sa.Connection) -> list[int]:
        return [outbox.enqueue(conn, channel=str(kw.get("channel", "test")), target=f"t{i}", payload={"n": i},
                               now=ctx.clock.now()) for i in range(n)]
    return ctx.db.write_sync(run)


def _row(ctx: AppContext, message_id: int) -> sa.Row:
    return ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages).where(outbox_messages.c.id == message_id)).one())


def test_message_exists_only_if_the_callers_transaction_commits(ctx: AppContext) -> None:
    def change_then_fail(conn: sa.Connection) -> None:
        record_audit(conn, at=ctx.clock.now(), actor="t", action="change", target="x")
        outbox.enqueue(conn, channel="test", target="a", payload={"k": 1}, now=ctx.clock.now())
        raise ValidationFailed("refused after the change")

    with pytest.raises(ValidationFailed):
        ctx.db.write_sync(change_then_fail)
    assert ctx.db.read_sync(outbox.counts)["pending"] == 0

    async def committed() -> int:
        return await ctx.db.write(lambda conn: outbox.enqueue(conn, channel="test", target="a", payload={"k": 1},
                                                              now=ctx.clock.now()))
    message_id = asyncio.run(committed())
    row = _row(ctx, message_id)
    assert (row.status, row.attempts, row.payload, row.next_attempt_at) == ("pending", 0, {"k": 1}, ctx.clock.now())


def test_dedupe_key_returns_the_first_message_and_adds_nothing(ctx: AppContext) -> None:
    def twice(conn: sa.Connection) -> tuple[int, int]:
        a = outbox.enqueue(conn, channel="test", target="a", payload={}, now=ctx.clock.now(), dedupe_key="case:1:x")
        b = outbox.enqueue(conn, channel="test", target="a", payload={}, now=ctx.clock.now(), dedupe_key="case:1:x")
        return a, b

    a, b = ctx.db.write_sync(twice)
    c = ctx.db.write_sync(lambda conn: outbox.enqueue(conn, channel="test", target="a", payload={},
                                                      now=ctx.clock.now(), dedupe_key="case:1:x"))
    assert a == b == c
    assert ctx.db.read_sync(outbox.counts)["pending"] == 1


def test_bad_messages_are_refused(ctx: AppContext) -> None:
    with pytest.raises(ValidationFailed):
        ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="test", target="a", payload={"x": object()},
                                                   now=ctx.clock.now()))
    with pytest.raises(ValidationFailed):
        ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="", target="a", payload={}, now=ctx.clock.now()))


def test_delivered_message_is_marked_with_time_and_attempts(ctx: AppContext) -> None:
    seen: list[OutboxMessage] = []

    async def deliver(msg: OutboxMessage) -> None:
        seen.append(msg)

    ctx.registry.add_channel("test", deliver)
    [mid] = _enqueue(ctx)
    assert asyncio.run(Runner(ctx).run_until_idle()) == 1
    row = _row(ctx, mid)
    assert (row.status, row.attempts, row.delivered_at, row.claimed_by) == ("delivered", 1, ctx.clock.now(), None)
    assert [(m.id, m.target, m.payload) for m in seen] == [(mid, "t0", {"n": 0})]


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_seconds=10, max_seconds=300, jitter=0.5)
    assert [policy.delay(n, lambda: 0.0).total_seconds() for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert [policy.delay(n, lambda: 1.0).total_seconds() for n in range(1, 4)] == [5, 10, 20]
    # Real jitter spreads retries over [half, full] of the delay.
    delays = {policy.delay(3).total_seconds() for _ in range(200)}
    assert min(delays) >= 20 and max(delays) <= 40 and len(delays) > 100


def test_failed_delivery_is_retried_after_the_backoff_only(ctx: AppContext) -> None:
    calls: list[tuple[int, object]] = []
    fail = {"on": True}

    async def deliver(msg: OutboxMessage) -> None:
        calls.append((msg.attempts, ctx.clock.now()))
        if fail["on"]:
            raise ConnectionError("receiver down")

    ctx.registry.add_channel("test", deliver)
    [mid] = _enqueue(ctx)
    runner = Runner(ctx, policy=RetryPolicy(base_seconds=10, jitter=0.5), rand=lambda: 0.5)  # 75% of full delay
    start = ctx.clock.now()

    async def scenario() -> None:
        assert await runner.run_once() == 1                       # attempt 1 fails
        row = _row(ctx, mid)
        assert row.next_attempt_at - start == timedelta(seconds=7.5) and row.attempts == 1
        assert "receiver down" in row.last_error
        ctx.clock.advance(seconds=7)
        assert await runner.run_once() == 0                       # not due yet
        ctx.clock.advance(seconds=0.5)
        assert await runner.run_once() == 1                       # attempt 2 fails; next after 15 s
        assert _row(ctx, mid).next_attempt_at - ctx.clock.now() == timedelta(seconds=15)
        ctx.clock.advance(seconds=15)
        fail["on"] = False
        assert await runner.run_once() == 1                       # attempt 3 succeeds

    asyncio.run(scenario())
    assert [a for a, _ in calls] == [0, 1, 2]
    row = _row(ctx, mid)
    assert (row.status, row.attempts) == ("delivered", 3)


def test_message_is_dead_after_max_attempts_listed_and_retried(ctx: AppContext) -> None:
    fail = {"on": True}

    async def deliver(msg: OutboxMessage) -> None:
        if fail["on"]:
            raise RuntimeError("HTTP 503")

    ctx.registry.add_channel("test", deliver)
    [mid, other] = _enqueue(ctx, 2)
    runner = Runner(ctx, policy=RetryPolicy(max_attempts=3, base_seconds=1, max_seconds=1, jitter=0))

    async def exhaust() -> None:
        for _ in range(5):
            await runner.run_once()
            ctx.clock.advance(seconds=1)

    asyncio.run(exhaust())
    dead = ctx.db.read_sync(outbox.list_dead)
    assert [(d["id"], d["attempts"], d["status"]) for d in dead] == [(mid, 3, "dead"), (other, 3, "dead")]
    assert dead[0]["last_error"] == "RuntimeError: HTTP 503"
    assert ctx.db.read_sync(outbox.counts) == {"pending": 0, "delivered": 0, "dead": 2}

    with pytest.raises(NotFound):
        ctx.db.write_sync(lambda c: outbox.retry_dead(c, 999_999, now=ctx.clock.now()))
    fail["on"] = False
    ctx.db.write_sync(lambda c: outbox.retry_dead(c, mid, now=ctx.clock.now()))
    with pytest.raises(Conflict):  # pending now, not dead
        ctx.db.write_sync(lambda c: outbox.retry_dead(c, mid, now=ctx.clock.now()))
    asyncio.run(runner.run_until_idle())
    assert _row(ctx, mid).status == "delivered"
    assert _row(ctx, other).status == "dead"  # still there for the administrator, never dropped


def test_undeliverable_is_dead_at_once_and_unknown_channel_is_retried(ctx: AppContext) -> None:
    async def gone(msg: OutboxMessage) -> None:
        raise Undeliverable("410 Gone")

    ctx.registry.add_channel("gone", gone)
    [g] = _enqueue(ctx, channel="gone")
    [u] = _enqueue(ctx, channel="nobody-registered-this")
    asyncio.run(Runner(ctx).run_once())
    assert (_row(ctx, g).status, _row(ctx, g).attempts) == ("dead", 1)
    row = _row(ctx, u)
    assert (row.status, row.attempts) == ("pending", 1) and "no deliverer" in row.last_error


def test_a_crashed_runners_claim_is_retaken_after_its_lease(ctx: AppContext) -> None:
    delivered: Counter[int] = Counter()

    async def deliver(msg: OutboxMessage) -> None:
        delivered[msg.id] += 1

    ctx.registry.add_channel("test", deliver)
    ids = _enqueue(ctx, 3)
    # Runner A claims and dies before delivering (its process was killed).
    claimed = ctx.db.write_sync(lambda c: outbox.claim(c, now=ctx.clock.now(), runner_id="A", lease_seconds=120))
    assert [m.id for m in claimed] == ids
    b = Runner(ctx, runner_id="B", lease_seconds=120)
    assert asyncio.run(b.run_once()) == 0          # leased to A: B leaves them alone
    ctx.clock.advance(seconds=119)
    assert asyncio.run(b.run_once()) == 0
    ctx.clock.advance(seconds=2)                    # A's lease has run out
    assert asyncio.run(b.run_once()) == 3
    assert delivered == Counter({i: 1 for i in ids})
    # A late word from A (say it came back and failed) does not undo B's delivery.
    ctx.db.write_sync(lambda c: outbox.record(c, [outbox.Outcome(claimed[0], "late failure")],
                                              now=ctx.clock.now(), runner_id="A"))
    assert _row(ctx, ids[0]).status == "delivered"


def test_two_runners_deliver_every_message_exactly_once(city: City, ctx: AppContext) -> None:
    """Two runners, each with its own connection pool, race over 400 messages."""
    n = 400
    deliveries: Counter[int] = Counter()

    def make(runner_id: str) -> tuple[Runner, Database]:
        db = Database(city.settings.database_url, pool_size=4)
        return Runner(AppContext(settings=city.settings, db=db, clock=city.clock, registry=ctx.registry),
                      runner_id=runner_id, batch_size=15), db

    async def deliver(msg: OutboxMessage) -> None:
        deliveries[msg.id] += 1
        await asyncio.sleep(0.001)

    ctx.registry.add_channel("race", deliver)
    ids = ctx.db.write_sync(lambda c: [outbox.enqueue(c, channel="race", target="x", payload={"runner": "?"},
                                                      now=ctx.clock.now()) for _ in range(n)])
    (a, db_a), (b, db_b) = make("A"), make("B")

    async def race() -> tuple[int, int]:
        return tuple(await asyncio.gather(a.run_until_idle(), b.run_until_idle()))  # type: ignore[return-value]

    try:
        done_a, done_b = asyncio.run(race())
    finally:
        db_a.close()
        db_b.close()
    assert sorted(deliveries) == sorted(ids)
    assert set(deliveries.values()) == {1}, {k: v for k, v in deliveries.items() if v > 1}
    assert done_a + done_b == n
    assert done_a > 0 and done_b > 0, (done_a, done_b)
    assert ctx.db.read_sync(outbox.counts) == {"pending": 0, "delivered": n, "dead": 0}


def test_a_delivery_that_hangs_is_cut_off_and_retried(ctx: AppContext) -> None:
    async def hang(msg: OutboxMessage) -> None:
        await asyncio.sleep(30)

    ctx.registry.add_channel("test", hang)
    [mid] = _enqueue(ctx)
    asyncio.run(Runner(ctx, delivery_timeout=0.05).run_once())
    row = _row(ctx, mid)
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "timed out after 0.05 s")


def test_max_attempts_comes_from_the_settings(ctx: AppContext) -> None:
    from dataclasses import replace

    from wecity.core.settings import load_settings

    assert load_settings({"WECITY_SECRET_KEY": "k" * 40, "WECITY_OUTBOX_MAX_ATTEMPTS": "3"}).outbox_max_attempts == 3
    ctx.settings = replace(ctx.settings, outbox_max_attempts=3)
    assert Runner(ctx).policy.max_attempts == 3
    assert Runner(AppContext(settings=replace(ctx.settings, outbox_max_attempts=8), db=ctx.db)).policy.max_attempts == 8
