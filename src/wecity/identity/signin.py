"""Signing in: one service for the portal's login form and the API's token endpoint.

Three steps, so that the slow one holds nothing:
1. a read: the account's password hash, and whether the account or the client address must wait;
2. the argon2 check, in a small pool of its own (PASSWORD_WORKERS threads): it costs tens of milliseconds
   of CPU by design, and run inside the database writer it held every other write back (four failed
   sign-ins held SQLite's one writer for 2.5 s);
3. a short write: the session and the audit entry, or the failure counted and audited.

Lockout, per account and per client address: after LOCK_AFTER failures in a row (5 for an account, 20 for
an address, which a whole office may share), the account or address waits FIRST_WAIT, doubled at each
further failure, at most MAX_WAIT; a quiet spell of QUIET after the last wait starts the count again. While it waits the
password is not checked at all, so even the right one is refused: 429 with Retry-After, audited. The
counts live in `sign_in_failures`, so every process sees them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from wecity.core.context import AppContext
from wecity.core.errors import AuthenticationRequired, RateLimited
from wecity.core.limits import limit_key
from wecity.identity.models import sign_in_failures as failures
from wecity.identity.models import users
from wecity.identity.passwords import verify_password
from wecity.identity.service import StaffUser, get_user, record_audit, start_session

LOCK_AFTER = {"account": 5, "address": 20}
FIRST_WAIT = timedelta(seconds=30)
MAX_WAIT = timedelta(minutes=15)
QUIET = timedelta(minutes=15)
PASSWORD_WORKERS = 2
_POOL = "identity.password_pool"
_TURNS = "identity.sign_in_turns"

Via = Literal["portal", "api"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: StaffUser
    token: str


@dataclass(frozen=True, slots=True)
class _Attempt:
    """Who is signing in, from where, when and through which door."""

    username: str
    address: str
    now: datetime
    via: Via

    @property
    def subjects(self) -> dict[str, str]:
        """The rows of `sign_in_failures` this attempt counts in, by kind."""
        # An IPv6 client is one /64 (it may send from any address in it), as the rate limits count it.
        return {"account": f"account:{self.username}", "address": f"address:{limit_key(self.address)}"}


def password_pool(ctx: AppContext) -> ThreadPoolExecutor:
    """This app's threads for checking passwords, made when first needed: bounded, so a flood of sign-ins
    queues here instead of taking every core."""
    pool: ThreadPoolExecutor | None = ctx.services.get(_POOL)
    if pool is None:
        pool = ctx.services.setdefault(_POOL, ThreadPoolExecutor(max_workers=PASSWORD_WORKERS,
                                                                 thread_name_prefix="wecity-password"))
    return pool


async def sign_in(ctx: AppContext, username: str, password: str, *, address: str | None, via: Via) -> SignedIn:
    """A new session for the account, or AuthenticationRequired (wrong username or password, one answer
    for both) or RateLimited (the account or the address must wait)."""
    attempt = _Attempt(username[:64], (address or "-")[:100], ctx.clock.now(), via)
    # Guesses sent together would all read "not locked" before the first failure is written: attempts on
    # one account or from one address take turns in this process, each reading what the last one wrote.
    async with _turns(ctx).take(*attempt.subjects.values()):
        user_id, stored, wait = await ctx.db.read(_look_up, attempt)
        if wait > 0:
            await ctx.db.write(_audit, attempt, None, "denied", "locked")
            raise locked(wait)
        good, new_hash = await asyncio.get_running_loop().run_in_executor(
            password_pool(ctx), verify_password, stored, password)
        signed_in = await ctx.db.write(_finish, attempt, user_id if good else None, stored, new_hash)
    if signed_in is None:
        raise AuthenticationRequired("wrong username or password", message_zh="用户名或密码错误",
                                     code="auth.invalid_credentials")
    return signed_in


class Turns:
    """One lock per subject, held only while someone holds or waits for it (so a flood of usernames leaves
    nothing behind). Subjects are always taken in the order given, account before address, so two
    attempts never wait on each other in a circle."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def take(self, *subjects: str) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for subject in subjects:
                lock, users_of = self._locks.get(subject) or (asyncio.Lock(), 0)
                self._locks[subject] = (lock, users_of + 1)
                stack.callback(self._leave, subject)
                await stack.enter_async_context(lock)
            yield

    def _leave(self, subject: str) -> None:
        lock, users_of = self._locks[subject]
        if users_of == 1:
            del self._locks[subject]
        else:
            self._locks[subject] = (lock, users_of - 1)


def _turns(ctx: AppContext) -> Turns:
    turns: Turns = ctx.services.setdefault(_TURNS, Turns())
    return turns


def locked(seconds: float) -> RateLimited:
    wait = max(1, round(seconds))
    return RateLimited(f"too many failed sign-ins; try again in {wait} s", retry_after=wait, code="auth.locked",
                       message_zh=f"登录失败次数过多，请 {wait} 秒后再试")


def _look_up(conn: Connection, attempt: _Attempt) -> tuple[int | None, str | None, float]:
    """(the active account's id and password hash, or None twice; seconds the attempt must wait)."""
    row = conn.execute(sa.select(users.c.id, users.c.password_hash).where(
        users.c.username == attempt.username, users.c.is_active.is_(True))).first()
    until = conn.execute(sa.select(sa.func.max(failures.c.locked_until)).where(
        failures.c.subject.in_(attempt.subjects.values()))).scalar()
    wait = (until - attempt.now).total_seconds() if until is not None else 0.0
    return (row.id, row.password_hash, wait) if row else (None, None, wait)


def _finish(conn: Connection, attempt: _Attempt, user_id: int | None, checked_hash: str | None,
            new_hash: str | None) -> SignedIn | None:
    """The short write after the check: a session and the account's failures forgotten, or the failure
    counted; audited either way."""
    user = get_user(conn, user_id) if user_id is not None else None
    # The password was checked against `checked_hash`: if it has changed since, that check is stale.
    if user is not None and conn.execute(sa.select(users.c.password_hash).where(users.c.id == user.id)
                                         ).scalar() != checked_hash:
        user = None
    if user is None:
        for kind, subject in attempt.subjects.items():
            _count_failure(conn, subject, LOCK_AFTER[kind], attempt.now)
        _audit(conn, attempt, None, "denied", "bad credentials")
        return None
    if new_hash:
        conn.execute(users.update().where(users.c.id == user.id).values(password_hash=new_hash))
    conn.execute(failures.delete().where(failures.c.subject == attempt.subjects["account"]))
    token = start_session(conn, user.id, attempt.now)
    _audit(conn, attempt, user.id, "ok", None)
    return SignedIn(user, token)


def _count_failure(conn: Connection, subject: str, lock_after: int, now: datetime) -> None:
    row = conn.execute(sa.select(failures.c.failures, failures.c.last_failure_at, failures.c.locked_until)
                       .where(failures.c.subject == subject)).first()
    # Quiet is counted from the end of the last wait: waiting out a lock does not start the count again.
    quiet_since = max(row.last_failure_at, row.locked_until or row.last_failure_at) if row is not None else None
    count = row.failures + 1 if row is not None and quiet_since is not None and now - quiet_since < QUIET else 1
    # Past the threshold each failure doubles the wait: 30 s, 1 min, 2 min... at most MAX_WAIT.
    wait = min(MAX_WAIT, FIRST_WAIT * 2 ** min(count - lock_after, 16)) if count >= lock_after else None
    values: dict[str, Any] = {"failures": count, "last_failure_at": now,
                              "locked_until": now + wait if wait is not None else None}
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(failures).values(subject=subject, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["subject"], set_=values))


def _audit(conn: Connection, attempt: _Attempt, user_id: int | None, outcome: str, reason: str | None) -> None:
    detail: dict[str, Any] = {"via": attempt.via} | ({"reason": reason} if reason else {})
    record_audit(conn, at=attempt.now, actor=attempt.username or "-", action="staff.login",
                 target=f"user:{user_id if user_id is not None else attempt.username or '-'}", outcome=outcome,
                 source_address=attempt.address, detail=detail)


async def purge_failures(ctx: AppContext) -> None:
    """Forget the failures of accounts and addresses that have been quiet for QUIET since their last wait."""
    quiet_since = ctx.clock.now() - QUIET
    await ctx.db.write(lambda conn: conn.execute(failures.delete().where(
        failures.c.last_failure_at < quiet_since,
        sa.or_(failures.c.locked_until.is_(None), failures.c.locked_until < quiet_since))))
