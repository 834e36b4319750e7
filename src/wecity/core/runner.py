"""The background runner: delivers the outbox, runs queued jobs and periodic tasks.

It runs as an asyncio task inside `wecity serve` (started in the app's lifespan) or alone as
`wecity runner`; several may run against one PostgreSQL database, and leases with FOR UPDATE SKIP LOCKED
make sure each message, job and periodic run is taken by one of them at a time (`wecity.core.leases`).
On PostgreSQL, runners LISTEN for the notice `enqueue` sends at commit, so work queued by any process
is picked up at once; polling (`poll_seconds`) covers SQLite and any notice missed.

What it runs comes from its app's registry (`ctx.registry`), which the domains filled through their
`wiring.wire` (`wecity.core.assemble`): periodic tasks, jobs, outbox channels, and start/stop hooks for
set-up that needs the context and a running loop (an HTTP client, say). Time comes from `ctx.clock`, so
tests move it instead of waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wecity.core import jobs, outbox
from wecity.core.context import AppContext
from wecity.core.leases import claim_due
from wecity.core.listen import Listener
from wecity.core.models import periodic_tasks
from wecity.core.registry import Periodic

log = logging.getLogger(__name__)

DELIVERY_CONCURRENCY = 20  # outbox deliveries in flight per runner
JOB_BATCH = 10
JOB_LEASE_SECONDS = 600.0


def new_runner_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Runner:
    """One runner. `run_once` does one round of work; `start`/`stop` run rounds in a task."""

    def __init__(self, ctx: AppContext, *, runner_id: str | None = None, batch_size: int = 100,
                 lease_seconds: float = 120.0, poll_seconds: float = 1.0, delivery_timeout: float = 30.0,
                 policy: outbox.RetryPolicy | None = None, rand: Callable[[], float] = random.random) -> None:
        self.ctx = ctx
        self.id = runner_id or new_runner_id()
        self.batch_size = batch_size
        # A lease must outlast the work done under it, or a second runner would take the work meanwhile:
        # a batch is delivered in waves of DELIVERY_CONCURRENCY, each at most `delivery_timeout` long.
        waves = math.ceil(batch_size / DELIVERY_CONCURRENCY)
        self.lease_seconds = max(lease_seconds, waves * delivery_timeout * 1.5)
        self.poll_seconds = poll_seconds
        self.delivery_timeout = delivery_timeout
        self.policy = policy or outbox.RetryPolicy(
            max_attempts=int(getattr(ctx.settings, "outbox_max_attempts", 8)))
        self.rand = rand
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._known_periodic: set[str] = set()
        self._listener: Listener | None = None
        # Periodic tasks with a lease of their own (a model's training: minutes) run beside the rounds, so
        # that the outbox, jobs and the other tasks are not held up meanwhile.
        self._long: dict[str, asyncio.Task[None]] = {}

    # -- one round -------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Run due periodic tasks, one batch of outbox messages and one of jobs; return how many."""
        return await self.run_periodic() + await self.deliver_outbox() + await self.run_jobs()

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Work until a round finds nothing due (tests and one-shot use), long tasks included."""
        total = 0
        for _ in range(max_rounds):
            done = await self.run_once()
            await self.settle()
            total += done
            if done == 0:
                break
        return total

    async def deliver_outbox(self) -> int:
        now = self.ctx.clock.now()
        messages = await self.ctx.db.write(partial(outbox.claim, now=now, runner_id=self.id, limit=self.batch_size,
                                                   lease_seconds=self.lease_seconds))
        if not messages:
            return 0
        outcomes = await outbox.deliver(messages, self.ctx.registry.channels, timeout=self.delivery_timeout,
                                        concurrency=DELIVERY_CONCURRENCY)
        await self.ctx.db.write(partial(outbox.record, outcomes=outcomes, now=self.ctx.clock.now(), runner_id=self.id,
                                        policy=self.policy, rand=self.rand))
        return len(messages)

    async def run_jobs(self) -> int:
        now = self.ctx.clock.now()
        # Jobs of a batch run side by side, each cut off at half the lease, so the lease outlasts them.
        claimed = await self.ctx.db.write(partial(jobs.claim, now=now, runner_id=self.id, limit=JOB_BATCH,
                                                  lease_seconds=JOB_LEASE_SECONDS))
        if not claimed:
            return 0
        outcomes = await jobs.run(self.ctx, claimed, timeout=JOB_LEASE_SECONDS / 2)
        await self.ctx.db.write(partial(jobs.record, outcomes=outcomes, now=self.ctx.clock.now(), runner_id=self.id,
                                        policy=self.policy, rand=self.rand))
        return len(claimed)

    async def run_periodic(self) -> int:
        tasks = self.ctx.registry.periodic
        if not tasks:
            return 0
        new = sorted(set(tasks) - self._known_periodic)
        if new:
            await self.ctx.db.write(_ensure_periodic_rows, new, self.ctx.clock.now())
            self._known_periodic.update(new)
        ran = 0
        # One at a time, each under its own lease, so a slow task cannot outlive the claim of the next.
        for _ in range(len(tasks)):
            now = self.ctx.clock.now()
            rows = await self.ctx.db.write(
                lambda conn, now=now: claim_due(conn, periodic_tasks, status=None, due=periodic_tasks.c.next_run_at,
                                                now=now, runner_id=self.id, limit=1,
                                                lease_seconds=self.lease_seconds,
                                                where=periodic_tasks.c.name.in_(list(tasks))))
            if not rows:
                break
            task = tasks[rows[0].name]
            lease = max(self.lease_seconds, task.lease_seconds or 0)
            if lease > self.lease_seconds:  # a long task holds its claim for as long as it may run, beside the rounds
                await self.ctx.db.write(lambda conn, task=task, now=now, lease=lease: conn.execute(
                    periodic_tasks.update().where(periodic_tasks.c.name == task.name,
                                                  periodic_tasks.c.claimed_by == self.id)
                    .values(claimed_until=now + timedelta(seconds=lease))))
                running = asyncio.create_task(self._run_periodic_task(task, now, lease), name=f"wecity-{task.name}")
                self._long[task.name] = running
                running.add_done_callback(partial(self._forget_long, task.name))
            else:
                await self._run_periodic_task(task, now, lease)
            ran += 1
        return ran

    async def _run_periodic_task(self, task: Periodic, now: Any, lease: float) -> None:
        error = None
        try:
            await asyncio.wait_for(task.fn(self.ctx), lease / 2)
        except Exception as exc:  # a failing task runs again next period; the error is kept
            log.exception("periodic task %s failed", task.name)
            error = f"{exc.__class__.__name__}: {exc}"[:2000]
        await self.ctx.db.write(_finish_periodic, task, now, error, self.id)

    def _forget_long(self, name: str, _: object) -> None:
        self._long.pop(name, None)

    async def settle(self) -> None:
        """Wait for the long periodic tasks under way (tests, and a one-shot run)."""
        while self._long:
            await asyncio.gather(*self._long.values())

    # -- as a task ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Call the domains' start hooks, and run rounds in the background."""
        for hook in self.ctx.registry.runner_start:
            await hook(self.ctx)
        self._task = asyncio.create_task(self._loop(), name=f"wecity-runner-{self.id}")
        if not self.ctx.db.is_sqlite:
            loop = asyncio.get_running_loop()
            self._listener = Listener(self.ctx.db.engine, lambda: loop.call_soon_threadsafe(self._wake.set))
            self._listener.start()
        log.info("runner %s started (%d periodic tasks, channels: %s)", self.id, len(self.ctx.registry.periodic),
                 ", ".join(sorted(self.ctx.registry.channels)) or "none")

    def wake(self) -> None:
        """Look for work now instead of at the next poll (e.g. right after a commit that queued some)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for name, running in list(self._long.items()):
            running.cancel()  # its claim is given back, so another runner need not wait out the lease
            try:
                await running
            except asyncio.CancelledError:
                pass
            await self.ctx.db.write(partial(release_periodic, name=name, holder=self.id))
        self._long.clear()
        for hook in reversed(self.ctx.registry.runner_stop):
            await hook(self.ctx)
        log.info("runner %s stopped", self.id)

    async def _loop(self) -> None:
        failures = 0
        while True:
            # Cleared before the round, so a wake-up that comes during it is not lost.
            self._wake.clear()
            try:
                done = await self.run_once()
                failures = 0
            except Exception:  # e.g. the database is briefly down: keep going, more slowly
                failures += 1
                log.exception("runner round failed (%d in a row)", failures)
                done = 0
            if done:
                continue
            pause = self.poll_seconds * min(2 ** failures, 30)
            try:
                await asyncio.wait_for(self._wake.wait(), pause)
            except TimeoutError:
                pass


def _ensure_periodic_rows(conn: sa.Connection, names: list[str], now: Any) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(dialect_insert(periodic_tasks).on_conflict_do_nothing(index_elements=["name"]),
                 [dict(name=n, next_run_at=now) for n in names])


def hold_periodic(conn: sa.Connection, name: str, *, now: Any, holder: str, lease_seconds: float) -> bool:
    """Claim the periodic task `name` out of turn (an administrator's "train now"), unless a runner or another
    holder has it: whether it is now this `holder`'s. So the task and its on-demand twin never run at once,
    in any process. `release_periodic` gives it back."""
    _ensure_periodic_rows(conn, [name], now)
    free = sa.or_(periodic_tasks.c.claimed_until.is_(None), periodic_tasks.c.claimed_until < now)
    done = conn.execute(periodic_tasks.update().where(periodic_tasks.c.name == name, free).values(
        claimed_until=now + timedelta(seconds=lease_seconds), claimed_by=holder))
    return bool(done.rowcount)


def release_periodic(conn: sa.Connection, name: str, *, holder: str, ran_at: Any = None,
                     error: str | None = None) -> None:
    """Give back what `hold_periodic` took. With `ran_at`, the out-of-turn run is recorded as the task's last
    (`last_run_at`, and `last_error`: None when it went well), so administrators see how it ended."""
    values: dict[str, Any] = dict(claimed_until=None, claimed_by=None)
    if ran_at is not None:
        values.update(last_run_at=ran_at, last_error=error)
    conn.execute(periodic_tasks.update().where(periodic_tasks.c.name == name, periodic_tasks.c.claimed_by == holder)
                 .values(**values))


def _finish_periodic(conn: sa.Connection, task: Periodic, started: Any, error: str | None, runner_id: str) -> None:
    conn.execute(periodic_tasks.update().where(periodic_tasks.c.name == task.name,
                                               periodic_tasks.c.claimed_by == runner_id).values(
        next_run_at=started + timedelta(seconds=task.every_seconds), last_run_at=started, last_error=error,
        claimed_until=None, claimed_by=None))


async def run_forever(ctx: AppContext, stop: asyncio.Event, **options: Any) -> None:
    """`wecity runner`: run until `stop` is set."""
    runner = Runner(ctx, **options)
    await runner.start()
    try:
        await stop.wait()
    finally:
        await runner.stop()


def wake(ctx: AppContext) -> None:
    """After committing outbox messages or jobs: let this process's runner (if any) look now, not at
    its next poll. Runners in other processes find the work at their next poll."""
    runner = ctx.services.get("runner")
    if isinstance(runner, Runner):
        runner.wake()
