"""Rate limits (wecity.core.limits): rules from settings, fixed windows on the app's clock, counts shared
between processes on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.core.clock import FrozenClock
from wecity.core.db import Database
from wecity.core.errors import ConfigurationError, RateLimited
from wecity.core.limits import Limiter, Rule, Window, describe, parse_rule, purge_counters
from wecity.core.models import rate_limit_counters
from wecity.core.settings import RATE_LIMITS, load_settings

from ..conftest import SEED_TIME, City


def _hits(limiter: Limiter, name: str, key: str, times: int) -> int:
    """How many of `times` requests the limiter lets through."""

    async def run() -> int:
        passed = 0
        for _ in range(times):
            try:
                await limiter.hit(name, key)
                passed += 1
            except RateLimited:
                pass
        return passed

    return asyncio.run(run())


def _refusal(limiter: Limiter, name: str, key: str) -> RateLimited:
    with pytest.raises(RateLimited) as refused:
        asyncio.run(limiter.hit(name, key))
    return refused.value


@pytest.mark.parametrize(("text", "rule"), [
    ("300/minute", (Window(300, 60),)),
    ("10/day, 2/minute", (Window(2, 60), Window(10, 86400))),
    ("5/90s", (Window(5, 90),)),
    ("off", ()),
])
def test_rules_are_read_shortest_window_first(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule
    assert parse_rule(describe(rule)) == rule


@pytest.mark.parametrize("text", ["300", "0/minute", "-1/minute", "3/fortnight", "x/hour", "3/0s"])
def test_bad_rules_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="COUNT/PERIOD"):
        parse_rule(text)


def test_settings_read_each_limit_and_refuse_bad_or_unknown_ones(tmp_path: Path) -> None:
    defaults = load_settings({}, cwd=tmp_path).rate_limits
    assert set(defaults) == set(RATE_LIMITS) and all(defaults.values())
    changed = load_settings({"WECITY_RATE_LIMIT_OPEN311": "50/minute", "WECITY_RATE_LIMIT_SMS_TOTAL": "off"},
                            cwd=tmp_path).rate_limits
    assert changed["open311"] == (Window(50, 60),) and changed["sms_total"] == ()
    with pytest.raises(ConfigurationError, match="WECITY_RATE_LIMIT_OPEN311.*COUNT/PERIOD"):
        load_settings({"WECITY_RATE_LIMIT_OPEN311": "lots"}, cwd=tmp_path)
    with pytest.raises(ConfigurationError, match="WECITY_RATE_LIMIT_OPEN331: no such rate limit"):
        load_settings({"WECITY_RATE_LIMIT_OPEN331": "5/minute"}, cwd=tmp_path)


def test_the_next_request_past_the_limit_waits_for_the_window_to_end() -> None:
    clock = FrozenClock(SEED_TIME + timedelta(seconds=15))  # 15 s into a minute
    limiter = Limiter({"open311": parse_rule("3/minute")}, clock)
    assert _hits(limiter, "open311", "key-a", 3) == 3
    refused = _refusal(limiter, "open311", "key-a")
    assert refused.status == 429 and refused.retry_after == 45
    assert "at most 3 per minute" in refused.message and "45 秒后再试" in refused.message_zh
    assert _hits(limiter, "open311", "key-b", 1) == 1  # another key has its own count
    clock.advance(seconds=45)
    assert _hits(limiter, "open311", "key-a", 4) == 3


def test_a_request_refused_by_one_window_is_not_counted_in_the_others() -> None:
    clock = FrozenClock(SEED_TIME)
    limiter = Limiter({"sms_phone": parse_rule("2/minute,3/hour")}, clock)
    assert _hits(limiter, "sms_phone", "13912345678", 5) == 2
    clock.advance(minutes=1)
    assert _hits(limiter, "sms_phone", "13912345678", 5) == 1  # the hour has room for one more, not zero
    assert _refusal(limiter, "sms_phone", "13912345678").retry_after == 3600 - 60


def test_unknown_and_switched_off_limits_let_everything_through() -> None:
    limiter = Limiter({"portal_code": ()}, FrozenClock(SEED_TIME))
    assert _hits(limiter, "portal_code", "x", 100) == 100
    assert _hits(limiter, "no-such-limit", "x", 100) == 100


def test_memory_stays_bounded_whatever_keys_are_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from wecity.core import limits

    monkeypatch.setattr(limits, "MAX_KEYS", 50)
    clock = FrozenClock(SEED_TIME)
    limiter = Limiter({"portal_report": parse_rule("1/minute")}, clock)
    for n in range(200):
        _hits(limiter, "portal_report", f"198.51.100.{n}", 1)
    assert len(limiter._counts["portal_report"]) <= 50


def test_a_flood_of_keys_on_one_rule_leaves_the_other_rules_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Room is made in the flooded rule alone, its ended windows first, then its oldest: the installation's
    SMS cap and one address's code guesses stay counted (on SQLite every count is in memory), and so do
    the flood's newest keys."""
    from wecity.core import limits

    monkeypatch.setattr(limits, "MAX_KEYS", 100)
    limiter = Limiter({"sms_total": parse_rule("3/hour"), "portal_verify": parse_rule("2/minute"),
                       "public_map": parse_rule("1/minute")}, FrozenClock(SEED_TIME))
    assert _hits(limiter, "sms_total", "all", 3) == 3
    assert _hits(limiter, "portal_verify", "203.0.113.5", 2) == 2
    for n in range(1000):
        assert _hits(limiter, "public_map", f"2001:db8:{n:x}::1", 1) == 1
    assert _hits(limiter, "sms_total", "all", 1) == 0
    assert _hits(limiter, "portal_verify", "203.0.113.5", 1) == 0
    assert len(limiter._counts["public_map"]) <= 100
    assert [_hits(limiter, "public_map", f"2001:db8:{n:x}::1", 1) for n in range(950, 1000)] == [0] * 50


def test_an_ipv6_address_is_counted_by_its_64() -> None:
    from wecity.core.limits import limit_key

    limiter = Limiter({"portal_report": parse_rule("3/minute")}, FrozenClock(SEED_TIME))
    assert _hits(limiter, "portal_report", "2001:db8:1:2::1", 2) == 2
    assert _hits(limiter, "portal_report", "2001:db8:1:2:ffff:ffff:ffff:fffe", 5) == 1  # the same /64
    assert _hits(limiter, "portal_report", "2001:db8:1:3::1", 3) == 3  # the next /64: another subscriber
    assert _hits(limiter, "portal_report", "::ffff:198.51.100.7", 3) == 3
    assert _hits(limiter, "portal_report", "198.51.100.7", 1) == 0  # the IPv4 address it maps
    assert limit_key("grant:7") == "grant:7" and limit_key("13912345678") == "13912345678"
    assert limit_key("203.0.113.5") == "203.0.113.5"


# SQLite serves a city from one process, so its counts stay in memory: these are PostgreSQL's alone.
ON_POSTGRES = pytest.mark.parametrize("city", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


@ON_POSTGRES
def test_small_limits_are_exact_across_processes_on_postgres(city: City) -> None:
    other = Database(city.settings.database_url, pool_size=1)  # a second process's own connections
    try:
        rules = {"sms_phone": parse_rule("3/minute")}
        one, two = Limiter(rules, city.clock, city.db), Limiter(rules, city.clock, other)
        assert _hits(one, "sms_phone", "13912345678", 2) == 2
        assert _hits(two, "sms_phone", "13912345678", 5) == 1
        assert _refusal(one, "sms_phone", "13912345678").retry_after == 60
        stored = city.db.read_sync(lambda c: c.execute(sa.select(rate_limit_counters)).all())
        assert [row.count for row in stored] == [3]  # the refused ones rolled back
        assert "13912345678" not in stored[0].bucket  # keys are kept hashed
    finally:
        other.close()


@ON_POSTGRES
def test_large_limits_are_shared_every_twentieth_of_the_limit(city: City) -> None:
    other = Database(city.settings.database_url, pool_size=1)
    try:
        rules = {"open311": parse_rule("100/minute")}
        one, two = Limiter(rules, city.clock, city.db), Limiter(rules, city.clock, other)
        assert _hits(one, "open311", "key", 60) == 60
        # The second process learns of the first's 60 when it first shares its own count (5 requests),
        # so together they overshoot by less than one share of each process.
        passed = _hits(two, "open311", "key", 100)
        assert 40 <= passed <= 45
        assert _hits(one, "open311", "key", 10) <= 5
        city.clock.advance(minutes=1)
        assert _hits(two, "open311", "key", 1) == 1
    finally:
        other.close()


def test_ended_windows_are_purged(city: City) -> None:
    from wecity.core.context import AppContext

    ctx = AppContext(settings=city.settings, db=city.db, clock=city.clock)
    ctx.limits = Limiter({"sms_phone": parse_rule("3/minute")}, city.clock, city.db)
    _hits(ctx.limits, "sms_phone", "13912345678", 1)
    count = sa.select(sa.func.count()).select_from(rate_limit_counters)
    assert city.db.read_sync(lambda c: c.execute(count).scalar()) == (1 if city.backend == "postgres" else 0)
    city.clock.advance(minutes=2)
    asyncio.run(purge_counters(ctx))
    assert city.db.read_sync(lambda c: c.execute(count).scalar()) == 0


@ON_POSTGRES
def test_requests_at_once_are_shared_once_each(city: City) -> None:
    """Many requests of one key in flight together (as a sensor gateway's connections send them): each is
    counted in the store once. Two shares in flight at once each sent the same pending requests and each
    took them off, so the count went negative and then doubled each round, until PostgreSQL's integer
    overflowed and every request was a 500."""
    import asyncio

    rules = {"ngsild": parse_rule("20000/minute")}  # shared every 1,000 requests
    limiter = Limiter(rules, city.clock, city.db)

    async def burst() -> None:
        await asyncio.gather(*(limiter.hit("ngsild", "gateway") for _ in range(4000)))

    asyncio.run(burst())
    counts = limiter._counts["ngsild"]
    (count,) = counts.values()
    stored = city.db.read_sync(lambda c: c.execute(sa.select(rate_limit_counters.c.count)).scalar_one())
    assert 0 <= count.pending and stored + count.pending == 4000
