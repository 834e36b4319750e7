"""The transactional outbox: side effects written with the state change, delivered later, never dropped.

A domain verb calls `enqueue(conn, ...)` inside its own transaction, so a message exists exactly when the
change it reports committed. The background runner (`wecity.core.runner`) claims due messages, hands each
to the deliver function registered for its channel, and records the outcome: delivered; or failed, to be
tried again after an exponential backoff with jitter; or, after `max_attempts` failures (or an
`Undeliverable` error), dead — kept, listed for an administrator and retried on request.

Channels (added to each app's registry by `wecity.notify` and `wecity.context`): ``webhook`` (target: URL or the name of a configured webhook;
payload: the JSON body), ``email`` (target: address; payload: ``subject``, ``body``), ``in_app`` (target:
recipient key such as ``user:12``; payload: ``title_zh``, ``title_en``, ``body``, optional ``link``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wecity.core.errors import Conflict, NotFound, ValidationFailed
from wecity.core.leases import claim_due
from wecity.core.listen import announce
from wecity.core.models import outbox_messages as t
from wecity.core.registry import DeliverFn

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    channel: str
    target: str
    payload: dict[str, Any]
    attempts: int  # failed attempts before this one
    created_at: datetime
    dedupe_key: str | None = None


class Undeliverable(Exception):
    """Raised by a deliver function when retrying cannot help (e.g. the receiver answered 410 Gone):
    the message is dead-lettered at once instead of after `max_attempts`."""




@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """After the n-th failure wait about base * 2**(n-1) seconds (at most `max_seconds`), less a random
    share up to `jitter` of it, so that messages failing together do not all come back together."""

    max_attempts: int = 8
    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    jitter: float = 0.5

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> timedelta:
        full = min(self.max_seconds, self.base_seconds * 2 ** max(0, failures - 1))
        return timedelta(seconds=full * (1 - self.jitter * rand()))


DEFAULT_POLICY = RetryPolicy()
# Built once: enqueue sits on hot paths (every intake), and building a statement costs more than running it.
_INSERT = t.insert().returning(t.c.id)


def enqueue(conn: sa.Connection, *, channel: str, target: str, payload: dict[str, Any], now: datetime,
            dedupe_key: str | None = None, not_before: datetime | None = None) -> int:
    """Queue a message in the caller's transaction and return its id.

    With a `dedupe_key` already used, nothing is added and the existing message's id is returned. With
    `not_before`, the first attempt waits until then (a receiver's rate limit spreads a burst out).
    """
    if not channel or not target:
        raise ValidationFailed("outbox message needs a channel and a target",
                               message_zh="待发消息必须有渠道和接收方", code="outbox.invalid")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"outbox payload is not JSON: {exc}", message_zh=f"待发消息内容不是 JSON：{exc}",
                               code="outbox.invalid") from None
    values = dict(channel=channel, target=target, payload=payload, status=PENDING, attempts=0,
                  next_attempt_at=max(now, not_before) if not_before else now, created_at=now, dedupe_key=dedupe_key)
    announce(conn)
    if dedupe_key is None:
        return int(conn.execute(_INSERT, values).scalar_one())
    # ON CONFLICT DO NOTHING rather than catching IntegrityError: on PostgreSQL an error would abort the
    # caller's whole transaction.
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(t).values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
    conn.execute(stmt)
    return int(conn.execute(sa.select(t.c.id).where(t.c.dedupe_key == dedupe_key)).scalar_one())


def enqueue_many(conn: sa.Connection, messages: list[tuple[str, str, dict[str, Any]]], *, now: datetime) -> None:
    """Queue several (channel, target, payload) messages with one statement (the intake's hot path)."""
    if not messages:
        return
    rows = []
    for channel, target, payload in messages:
        if not channel or not target:
            raise ValidationFailed("outbox message needs a channel and a target",
                                   message_zh="待发消息必须有渠道和接收方", code="outbox.invalid")
        rows.append(dict(channel=channel, target=target, payload=payload, status=PENDING, attempts=0,
                         next_attempt_at=now, created_at=now, dedupe_key=None))
    announce(conn)
    conn.execute(t.insert(), rows)


def _message(row: Any) -> OutboxMessage:
    return OutboxMessage(id=row.id, channel=row.channel, target=row.target, payload=row.payload,
                         attempts=row.attempts, created_at=row.created_at, dedupe_key=row.dedupe_key)


def claim(conn: sa.Connection, *, now: datetime, runner_id: str, limit: int = 100,
          lease_seconds: float = 120.0) -> list[OutboxMessage]:
    """Lease up to `limit` due messages to `runner_id` (see `wecity.core.leases.claim_due`)."""
    rows = claim_due(conn, t, status=PENDING, due=t.c.next_attempt_at, now=now, runner_id=runner_id,
                     limit=limit, lease_seconds=lease_seconds)
    return [_message(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Outcome:
    message: OutboxMessage
    error: str | None = None  # None: delivered
    permanent: bool = False


def record(conn: sa.Connection, outcomes: list[Outcome], *, now: datetime, runner_id: str,
           policy: RetryPolicy = DEFAULT_POLICY, rand: Callable[[], float] = random.random) -> None:
    """Write what became of each delivery attempt."""
    # Delivered is a fact even if our lease ran out meanwhile; one statement for all of them.
    delivered = [o.message.id for o in outcomes if o.error is None]
    if delivered:
        conn.execute(t.update().where(t.c.id.in_(delivered), t.c.status == PENDING).values(
            status=DELIVERED, attempts=t.c.attempts + 1, delivered_at=now, claimed_until=None, claimed_by=None))
    for o in outcomes:
        attempts = o.message.attempts + 1
        if o.error is None:
            continue
        dead = o.permanent or attempts >= policy.max_attempts
        values: dict[str, Any] = dict(attempts=attempts, last_error=o.error[:2000], claimed_until=None,
                                      claimed_by=None)
        if dead:
            values["status"] = DEAD
            log.error("outbox message %d (%s -> %s) dead after %d attempts: %s", o.message.id,
                      o.message.channel, o.message.target, attempts, o.error)
        else:
            values["next_attempt_at"] = now + policy.delay(attempts, rand)
        # Only the runner holding the claim reschedules; a retaken message belongs to its new holder.
        conn.execute(t.update().where(t.c.id == o.message.id, t.c.status == PENDING,
                                      t.c.claimed_by == runner_id).values(**values))


async def deliver(messages: list[OutboxMessage], channels: Mapping[str, DeliverFn], *, timeout: float = 30.0,
                  concurrency: int = 20) -> list[Outcome]:
    """Hand each message to its channel (the app's registry.channels), a few at a time; never raises."""
    gate = asyncio.Semaphore(concurrency)

    async def one(msg: OutboxMessage) -> Outcome:
        fn = channels.get(msg.channel)
        if fn is None:
            # Not permanent: the channel may be registered by a runner with more domains installed.
            return Outcome(msg, f"no deliverer registered for channel {msg.channel!r}")
        async with gate:
            try:
                await asyncio.wait_for(fn(msg), timeout)
            except Undeliverable as exc:
                return Outcome(msg, f"undeliverable: {exc}", permanent=True)
            except TimeoutError:
                log.warning("outbox message %d (%s -> %s) attempt %d timed out", msg.id, msg.channel, msg.target,
                            msg.attempts + 1)
                return Outcome(msg, f"timed out after {timeout:g} s")
            except Exception as exc:  # any failure of a channel is recorded and retried
                log.warning("outbox message %d (%s -> %s) attempt %d failed: %r", msg.id, msg.channel,
                            msg.target, msg.attempts + 1, exc)
                return Outcome(msg, f"{exc.__class__.__name__}: {exc}")
        return Outcome(msg)

    return list(await asyncio.gather(*(one(m) for m in messages)))


# -- administration: dead letters --------------------------------------------------------------------

def list_messages(conn: sa.Connection, *, status: str = DEAD, channel: str | None = None,
                  limit: int = 100) -> list[dict[str, Any]]:
    q = sa.select(t).where(t.c.status == status).order_by(t.c.id).limit(limit)
    if channel:
        q = q.where(t.c.channel == channel)
    return [dict(r._mapping) for r in conn.execute(q)]


def list_dead(conn: sa.Connection, *, channel: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Dead letters, oldest first, with their last error."""
    return list_messages(conn, status=DEAD, channel=channel, limit=limit)


def retry_dead(conn: sa.Connection, message_id: int, *, now: datetime) -> None:
    """Give a dead letter a fresh set of attempts, starting now."""
    status = conn.execute(sa.select(t.c.status).where(t.c.id == message_id)).scalar_one_or_none()
    if status is None:
        raise NotFound(f"outbox message {message_id} not found", message_zh=f"待发消息 {message_id} 不存在",
                       code="outbox.not_found")
    if status != DEAD:
        raise Conflict(f"outbox message {message_id} is {status}, not dead",
                       message_zh=f"待发消息 {message_id} 状态为 {status}，不是死信", code="outbox.not_dead")
    conn.execute(t.update().where(t.c.id == message_id).values(
        status=PENDING, attempts=0, next_attempt_at=now, claimed_until=None, claimed_by=None))


def counts(conn: sa.Connection) -> dict[str, int]:
    """Messages per status, for metrics and the operations page."""
    rows = conn.execute(sa.select(t.c.status, sa.func.count()).group_by(t.c.status)).all()
    return {PENDING: 0, DELIVERED: 0, DEAD: 0} | {r[0]: int(r[1]) for r in rows}
