"""Queued background jobs: `enqueue_job` in a transaction, run once by some runner, retried on failure."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wecity.core.errors import Conflict, NotFound, ValidationFailed
from wecity.core.leases import claim_due
from wecity.core.listen import announce
from wecity.core.models import jobs as t
from wecity.core.outbox import DEFAULT_POLICY, RetryPolicy

if TYPE_CHECKING:
    from wecity.core.context import AppContext

log = logging.getLogger(__name__)

QUEUED, DONE, DEAD = "queued", "done", "dead"

@dataclass(frozen=True, slots=True)
class Job:
    id: int
    name: str
    args: dict[str, Any]
    attempts: int


def enqueue_job(conn: sa.Connection, *, name: str, args: dict[str, Any], now: datetime,
                run_at: datetime | None = None, dedupe_key: str | None = None) -> int:
    """Queue a job in the caller's transaction (due at `run_at`, default now) and return its id."""
    try:
        json.dumps(args)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"job arguments are not JSON: {exc}", message_zh=f"任务参数不是 JSON：{exc}",
                               code="job.invalid") from None
    values = dict(name=name, args=args, status=QUEUED, attempts=0, run_at=run_at or now, created_at=now,
                  dedupe_key=dedupe_key)
    announce(conn)
    if dedupe_key is None:
        return int(conn.execute(t.insert().values(**values).returning(t.c.id)).scalar_one())
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(dialect_insert(t).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"]))
    return int(conn.execute(sa.select(t.c.id).where(t.c.dedupe_key == dedupe_key)).scalar_one())


def claim(conn: sa.Connection, *, now: datetime, runner_id: str, limit: int = 50,
          lease_seconds: float = 300.0) -> list[Job]:
    rows = claim_due(conn, t, status=QUEUED, due=t.c.run_at, now=now, runner_id=runner_id, limit=limit,
                     lease_seconds=lease_seconds)
    return [Job(id=r.id, name=r.name, args=r.args, attempts=r.attempts) for r in rows]


async def run(ctx: AppContext, jobs: list[Job], *, timeout: float = 300.0) -> list[tuple[Job, str | None]]:
    """Run each job with the function the app registered for its name; (job, None) when it succeeded,
    (job, error) when not. Never raises."""

    async def one(job: Job) -> tuple[Job, str | None]:
        fn = ctx.registry.jobs.get(job.name)
        if fn is None:
            return job, f"no job registered as {job.name!r}"
        try:
            await asyncio.wait_for(fn(ctx, job.args), timeout)
        except Exception as exc:  # recorded and retried
            log.warning("job %d (%s) attempt %d failed: %r", job.id, job.name, job.attempts + 1, exc)
            return job, f"{exc.__class__.__name__}: {exc}"
        return job, None

    return list(await asyncio.gather(*(one(j) for j in jobs)))


def record(conn: sa.Connection, outcomes: list[tuple[Job, str | None]], *, now: datetime, runner_id: str,
           policy: RetryPolicy = DEFAULT_POLICY, rand: Callable[[], float] = random.random) -> None:
    for job, error in outcomes:
        attempts = job.attempts + 1
        if error is None:
            conn.execute(t.update().where(t.c.id == job.id, t.c.status == QUEUED).values(
                status=DONE, attempts=attempts, finished_at=now, claimed_until=None, claimed_by=None))
            continue
        values: dict[str, Any] = dict(attempts=attempts, last_error=error[:2000], claimed_until=None,
                                      claimed_by=None)
        if attempts >= policy.max_attempts:
            values.update(status=DEAD, finished_at=now)
            log.error("job %d (%s) dead after %d attempts: %s", job.id, job.name, attempts, error)
        else:
            values["run_at"] = now + policy.delay(attempts, rand)
        conn.execute(t.update().where(t.c.id == job.id, t.c.status == QUEUED, t.c.claimed_by == runner_id)
                     .values(**values))


def list_dead(conn: sa.Connection, *, limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(t).where(t.c.status == DEAD).order_by(t.c.id).limit(limit)
    return [dict(r._mapping) for r in conn.execute(q)]


def retry_dead(conn: sa.Connection, job_id: int, *, now: datetime) -> None:
    status = conn.execute(sa.select(t.c.status).where(t.c.id == job_id)).scalar_one_or_none()
    if status is None:
        raise NotFound(f"job {job_id} not found", message_zh=f"任务 {job_id} 不存在", code="job.not_found")
    if status != DEAD:
        raise Conflict(f"job {job_id} is {status}, not dead", message_zh=f"任务 {job_id} 状态为 {status}，不是死信",
                       code="job.not_dead")
    conn.execute(t.update().where(t.c.id == job_id).values(status=QUEUED, attempts=0, run_at=now,
                                                          finished_at=None, claimed_until=None, claimed_by=None))
