"""Rate limits: how many requests one key (an API key, a client address, a phone number) may make.

Each limit is a named rule of one or more fixed windows, read from the settings
(`WECITY_RATE_LIMIT_<NAME>`: "300/minute", "2/minute,10/day", or "off"). A protocol handler asks
`await ctx.limits.hit(name, key)` before the work; past the limit it raises `RateLimited` with the
seconds until the window that refused ends, which each protocol renders with a Retry-After header.

Windows are aligned on the clock (a minute window runs from :00 to :59), so a key may get up to twice
its limit across a window's edge; that is the price of a check that is a dictionary look-up.

An IPv6 client address is counted by its /64 (limit_key): one subscriber is given a whole /64 (often
more) and may send from any address in it.

Where the counts live:
- SQLite (one process serves the city): in memory only.
- PostgreSQL (several processes): in memory, shared through the `rate_limit_counters` table. A rule
  whose smallest limit is at most EXACT_UP_TO (a few SMS codes a minute) counts every request in the
  table, all its windows in one transaction, so "2 a minute" holds across processes. A larger rule (a
  few hundred reports a minute) counts in memory and adds its count to the table every 5 % of the limit
  or after SYNC_SECONDS, reading back the installation's total: N processes overshoot by at most N × 5 %,
  and a request pays a database round trip once in limit/20 requests instead of every time.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from wecity.core.clock import Clock
from wecity.core.errors import RateLimited
from wecity.core.models import rate_limit_counters as counters

if TYPE_CHECKING:
    from wecity.core.context import AppContext
    from wecity.core.db import Database

EXACT_UP_TO = 20
SYNC_SECONDS = 1.0
MAX_KEYS = 100_000  # distinct (key, window) counts one rule keeps in memory before ended ones are dropped
PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_PERIOD_NAMES = {seconds: (name, zh) for (name, seconds), zh in zip(PERIODS.items(), ("秒", "分钟", "小时", "天"),
                                                                    strict=True)}


@dataclass(frozen=True, slots=True)
class Window:
    limit: int
    seconds: int


# A rule's windows, shortest first; empty: no limit.
Rule = tuple[Window, ...]


def parse_rule(text: str) -> Rule:
    """"300/minute", "2/minute,10/day", "5/90s" (seconds) or "off"; ValueError naming what is wrong."""
    text = text.strip().lower()
    if text in ("off", "none", ""):
        return ()
    windows = []
    for part in text.split(","):
        count, slash, period = part.strip().partition("/")
        seconds = PERIODS.get(period.strip()) or (int(period[:-1]) if period.endswith("s") and
                                                  period[:-1].isdigit() else 0)
        if not slash or not count.strip().isdigit() or int(count) < 1 or seconds < 1:
            raise ValueError(f"{part.strip()!r} is not COUNT/PERIOD (300/minute, 10/day, 5/90s) or off")
        windows.append(Window(int(count), seconds))
    return tuple(sorted(windows, key=lambda w: w.seconds))


def describe(rule: Rule) -> str:
    return ",".join(f"{w.limit}/{_PERIOD_NAMES.get(w.seconds, (f'{w.seconds}s',))[0]}" for w in rule) or "off"


class _Count:
    """One window of one key in this process: its start, the installation's count as last read from the
    store (ours included), and the requests counted here since."""

    __slots__ = ("start", "known", "pending", "synced", "sharing")

    def __init__(self, start: int) -> None:
        self.start = start
        self.known = 0
        self.pending = 0
        self.synced = time.monotonic()
        self.sharing = False  # a share of this count is on its way to the store


class Limiter:
    """The rate limits of one app. Touched only from its event loop, so its counts need no lock."""

    def __init__(self, rules: Mapping[str, Rule], clock: Clock, db: Database | None = None) -> None:
        self.rules = dict(rules)
        self.clock = clock
        self.db = db if db is not None and not db.is_sqlite else None
        # Rule name -> (key, window seconds) -> count, each rule's oldest first (a new window is put last).
        self._counts: dict[str, dict[tuple[str, int], _Count]] = {}

    async def hit(self, name: str, key: str, rule: Rule | None = None) -> None:
        """Count one request of `key` under rule `name` (or under `rule`, when the rule belongs to what is
        counted, such as a sharing grant's own limit); RateLimited (nothing counted) when a window is full."""
        rule = self.rules.get(name) if rule is None else rule
        if not rule:
            return
        key = limit_key(key)
        now = self.clock.now().timestamp()
        if self.db is not None and min(w.limit for w in rule) <= EXACT_UP_TO:
            await self.db.write(_take, name, key, rule, now)
            return
        counts = [self._count(name, key, w, now) for w in rule]
        for window, count in zip(rule, counts, strict=True):
            if count.known + count.pending >= window.limit:
                raise refusal(window, count.start, now)
        for count in counts:
            count.pending += 1
        # One share at a time per count: two in flight would each send the same pending requests and each
        # take them off, so the count went negative, then doubled each round (PostgreSQL's integer overflowed
        # under load). Requests counted meanwhile go with the next share.
        if (self.db is not None and not any(c.sharing for c in counts)
                and any(_share_due(w, c) for w, c in zip(rule, counts, strict=True))):
            for count in counts:
                count.sharing = True
            try:
                await self._share(name, key, rule, counts)
            finally:
                for count in counts:
                    count.sharing = False

    def _count(self, name: str, key: str, window: Window, now: float) -> _Count:
        start = int(now // window.seconds) * window.seconds
        counts = self._counts.setdefault(name, {})
        slot = (key, window.seconds)
        count = counts.get(slot)
        if count is None or count.start != start:
            if count is None and len(counts) >= MAX_KEYS:
                _make_room(counts, now)
            counts.pop(slot, None)  # and put last: the rule's counts stay in the order their windows began
            count = counts[slot] = _Count(start)
        return count

    async def _share(self, name: str, key: str, rule: Rule, counts: list[_Count]) -> None:
        assert self.db is not None
        added = [(w, c.start, c.pending) for w, c in zip(rule, counts, strict=True)]
        totals = await self.db.write(_add, name, key, added)
        for count, (_, _, sent), total in zip(counts, added, totals, strict=True):
            count.known, count.pending, count.synced = total, count.pending - sent, time.monotonic()


def _make_room(counts: dict[tuple[str, int], _Count], now: float) -> None:
    """Room in one rule's counts, whatever keys callers send: its ended windows go first, then its oldest, a
    tenth of them (so that the next thousands of new keys need no search). Only this rule's counts go: a
    flood of addresses on the public map once cleared every count, the SMS caps and code guesses too."""
    for slot in [slot for slot, c in counts.items() if c.start + slot[1] <= now]:
        del counts[slot]
    excess = len(counts) - MAX_KEYS + max(1, MAX_KEYS // 10)
    for slot in list(itertools.islice(counts, max(0, excess))):
        del counts[slot]


@functools.lru_cache(maxsize=4096)
def limit_key(key: str) -> str:
    """The key a request is counted under: an IPv6 address as its /64 (an IPv4-mapped one as the IPv4
    address), since a subscriber may send from any address of its /64 and would otherwise have a limit per
    address; any other key (an IPv4 address, a phone number, a digest) as it is. Audit records keep the
    whole address: this is for counting only."""
    if ":" not in key:
        return key
    try:
        address = ipaddress.IPv6Address(key.split("%", 1)[0])
    except ValueError:
        return key
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ipaddress.IPv6Network((address, 64), strict=False))


def _share_due(window: Window, count: _Count) -> bool:
    return count.pending >= max(1, window.limit // 20) or time.monotonic() - count.synced >= SYNC_SECONDS


def refusal(window: Window, start: float, now: float) -> RateLimited:
    """The bilingual 429 for a full window, with the seconds until it ends."""
    wait = max(1, math.ceil(start + window.seconds - now))
    name, zh = _PERIOD_NAMES.get(window.seconds, (f"{window.seconds} seconds", f"{window.seconds} 秒"))
    return RateLimited(f"too many requests: at most {window.limit} per {name}; try again in {wait} s",
                       message_zh=f"请求过于频繁：每{zh}最多 {window.limit} 次，请 {wait} 秒后再试",
                       retry_after=wait, details={"limit": window.limit, "window_seconds": window.seconds})


def _bucket(name: str, key: str, window: Window) -> str:
    # Keys are hashed: the table keeps no API key, address or phone number.
    return f"{name}:{window.seconds}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def _add_one(conn: Connection, name: str, key: str, window: Window, start: float, amount: int) -> int:
    """Add `amount` to a window's shared count and return the installation's total (PostgreSQL)."""
    began = datetime.fromtimestamp(start, UTC)
    stmt = pg_insert(counters).values(bucket=_bucket(name, key, window), window_start=began,
                                      expires_at=began + timedelta(seconds=window.seconds), count=amount)
    stmt = stmt.on_conflict_do_update(index_elements=[counters.c.bucket, counters.c.window_start],
                                      set_={"count": counters.c.count + stmt.excluded.count})
    return int(conn.execute(stmt.returning(counters.c.count)).scalar_one())


def _add(conn: Connection, name: str, key: str, added: list[tuple[Window, int, int]]) -> list[int]:
    return [_add_one(conn, name, key, window, start, amount) for window, start, amount in added]


def _take(conn: Connection, name: str, key: str, rule: Rule, now: float) -> None:
    """Count one request in every window of the rule, or in none: a full window raises, which rolls back
    the transaction and with it the other windows' counts."""
    for window in rule:
        start = now // window.seconds * window.seconds
        if _add_one(conn, name, key, window, start, 1) > window.limit:
            raise refusal(window, start, now)


async def purge_counters(ctx: AppContext) -> None:
    """Drop the shared counts of ended windows (a periodic task of the runner)."""
    if ctx.db.is_sqlite:
        return
    now = ctx.clock.now()
    await ctx.db.write(lambda conn: conn.execute(sa.delete(counters).where(counters.c.expires_at <= now)))
