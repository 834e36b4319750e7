"""The anonymous portal's rate limits: the report form per client address (about 1,550 reports a minute
came from one before), and SMS codes per address, per phone number and for the whole city (/my/code
sent 126 codes in 5 s to random numbers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import SEED_TIME, City
from tests.web.conftest import csrf_token
from tests.web.test_citizen import _report
from wecity.api.app import create_app
from wecity.core.limits import parse_rule
from wecity.core.models import outbox_messages as outbox


@pytest.fixture
def portal(sqlite_city: City) -> Iterator[Any]:
    """`portal(address, **limits)`: a browser at that client address on one app with those rate limits."""
    apps: dict[str, Any] = {}
    with ExitStack() as stack:

        def browser(address: str, **limits: str) -> TestClient:
            if "app" not in apps:
                rules = {**sqlite_city.settings.rate_limits, **{k: parse_rule(v) for k, v in limits.items()}}
                settings = replace(sqlite_city.settings, rate_limits=rules)
                apps["app"] = create_app(settings, clock=sqlite_city.clock, db=sqlite_city.db)
            return stack.enter_context(TestClient(apps["app"], client=(address, 50000)))

        yield browser


def _codes_sent(city: City) -> int:
    return int(city.db.read_sync(lambda c: c.execute(
        sa.select(sa.func.count()).select_from(outbox).where(outbox.c.target == "sms")).scalar()))


def _ask_code(web: Any, phone: str) -> Any:
    return web.post("/my/code", data={"csrf_token": csrf_token(web.get("/my").text), "phone": phone})


def test_the_report_past_the_address_limit_is_a_429_page_that_keeps_the_form(portal: Any,
                                                                             sqlite_city: City) -> None:
    sqlite_city.clock.at = SEED_TIME + timedelta(seconds=30)
    web = portal("203.0.113.7", portal_report="2/minute")
    assert [_report(web, description=f"第 {n} 处垃圾").status_code for n in range(2)] == [303, 303]
    refused = _report(web, description="第三处垃圾")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
    assert "请求过于频繁" in refused.text and "第三处垃圾" in refused.text  # what was typed is kept
    assert _report(portal("203.0.113.8"), description="邻居也来报").status_code == 303
    sqlite_city.clock.advance(seconds=30)
    assert _report(web, description="第三处垃圾").status_code == 303


def test_random_numbers_from_one_address_stop_at_its_limit(portal: Any, sqlite_city: City) -> None:
    web = portal("198.51.100.20", portal_code="3/minute")
    assert [_ask_code(web, f"1390000000{n}").status_code for n in range(3)] == [200, 200, 200]
    refused = _ask_code(web, "13900000003")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    assert "请求过于频繁" in refused.text
    assert _codes_sent(sqlite_city) == 3
    sqlite_city.clock.advance(minutes=1)
    assert _ask_code(web, "13900000003").status_code == 200


def test_one_number_gets_a_few_codes_a_minute_and_a_day_from_any_address(portal: Any,
                                                                         sqlite_city: City) -> None:
    sqlite_city.clock.at = SEED_TIME.replace(hour=0)  # midnight UTC: a day window starts
    first = portal("198.51.100.30", sms_phone="2/minute,3/day")
    second = portal("198.51.100.31")
    assert _ask_code(first, "13912345678").status_code == 200
    assert _ask_code(second, "139 1234 5678").status_code == 200  # the same number, spelt otherwise
    refused = _ask_code(first, "13912345678")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60"
    sqlite_city.clock.advance(minutes=1)
    assert _ask_code(second, "13912345678").status_code == 200
    sqlite_city.clock.advance(minutes=1)
    refused = _ask_code(first, "13912345678")
    assert refused.status_code == 429 and refused.headers["retry-after"] == str(24 * 3600 - 120)
    assert _codes_sent(sqlite_city) == 3


def test_the_whole_city_sends_at_most_its_hourly_cap(portal: Any, sqlite_city: City) -> None:
    browsers = [portal(f"192.0.2.{n}", sms_total="3/hour") for n in range(4)]
    assert [_ask_code(web, f"1370000000{n}").status_code for n, web in enumerate(browsers)] == [200, 200, 200, 429]
    assert _codes_sent(sqlite_city) == 3


def test_code_guesses_from_one_address_stop_at_its_limit(portal: Any, sqlite_city: City) -> None:
    web = portal("198.51.100.40", portal_verify="2/minute")
    page = _ask_code(web, "13912340000")
    guess = {"csrf_token": csrf_token(page.text), "phone": "13912340000", "code": "000000"}
    assert [web.post("/my/verify", data=guess).status_code for _ in range(2)] == [400, 400]
    refused = web.post("/my/verify", data=guess)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "60" and "请求过于频繁" in refused.text


def test_guesses_at_the_same_moment_are_counted_one_by_one(city: City) -> None:
    """On PostgreSQL eight wrong guesses sent together all read the same count without a lock, and the
    right code then still worked: the code's row is locked, so the limit of five holds."""
    import threading

    from wecity.web.models import portal_codes
    from wecity.web.phone_codes import MAX_ATTEMPTS, check_code, issue_code

    key, phone, now = city.settings.secret_key, "13912349999", city.clock.now()
    code = city.db.write_sync(lambda c: issue_code(c, phone, secret_key=key, now=now))
    wrong = "000000" if code != "000000" else "111111"
    start = threading.Barrier(8)

    def guess() -> None:
        start.wait(10)
        city.db.write_sync(lambda c: check_code(c, phone, wrong, secret_key=key, now=now))

    threads = [threading.Thread(target=guess) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    attempts = city.db.read_sync(lambda c: c.execute(sa.select(portal_codes.c.attempts)).scalar_one())
    assert attempts == MAX_ATTEMPTS
    assert city.db.write_sync(lambda c: check_code(c, phone, code, secret_key=key, now=now)) is False


def test_ratings_from_the_tracking_page_are_counted_per_address(portal: Any, sqlite_city: City) -> None:
    """As the API's rating: a made-up tracking code tried again and again meets the limit."""
    sqlite_city.clock.at = SEED_TIME + timedelta(seconds=30)
    web = portal("203.0.113.9", case_rating="2/minute")
    token = csrf_token(web.get("/report").text)
    answers = [web.post(f"/track/NOSUCHCODE{n}/rate", data={"csrf_token": token, "stars": "5"},
                        follow_redirects=False) for n in range(3)]
    assert [a.status_code for a in answers] == [404, 404, 429]
    assert answers[2].headers["retry-after"] == "30"
