"""One sign-in service for the portal and the API: lockout per account and per address with a doubling
wait, and the password checked outside any database transaction."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import City, make_client
from tests.web.conftest import log_in
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity import signin
from wecity.identity.models import audit_log, staff_sessions

TOKEN = "/api/v1/auth/token"


def _api(client: Any, username: str, password: str = DEMO_PASSWORD) -> Any:
    return client.post(TOKEN, json={"username": username, "password": password})


def _sessions(city: City) -> int:
    return int(city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(staff_sessions)).scalar()))


def test_the_api_locks_the_account_the_31st_wrong_password_is_429_and_so_is_the_right_one(city: City) -> None:
    with make_client(city) as client:
        answers = [_api(client, "chengguan", f"wrong-password-{n}").status_code for n in range(31)]
        assert answers[:5] == [401] * 5 and set(answers[5:]) == {429}
        right = _api(client, "chengguan")
        assert right.status_code == 429 and right.headers["retry-after"] == "30"
        assert right.headers["content-type"] == "application/problem+json"
        assert right.json()["code"] == "auth.locked"
        assert _sessions(city) == 0
        city.clock.advance(seconds=30)
        assert _api(client, "chengguan").status_code == 200
    audited = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.outcome, audit_log.c.detail).where(
        audit_log.c.action == "staff.login")).all())
    assert [row.detail.get("reason") for row in audited].count("locked") == 27
    assert audited[-1].outcome == "ok" and audited[-1].detail == {"via": "api"}


def test_the_portal_and_the_api_share_one_lockout(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        for _ in range(5):
            assert log_in(client, "dispatcher", password="wrong-password").status_code == 401
        assert log_in(client, "dispatcher", password="wrong-password").status_code == 429  # the 6th
        assert _api(client, "dispatcher").status_code == 429
        assert _api(client, "admin").status_code == 200  # other accounts from this address are not locked


def test_each_failure_past_the_threshold_doubles_the_wait_up_to_a_cap(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        for _ in range(5):
            _api(client, "zhujian", "wrong-password")
        waits = []
        for _ in range(7):
            waits.append(int(_api(client, "zhujian").headers["retry-after"]))
            sqlite_city.clock.advance(seconds=waits[-1])
            assert _api(client, "zhujian", "wrong-password").status_code == 401  # checked again, and wrong
        # Waiting out the capped wait does not count as a quiet spell: the next failure waits as long.
        assert waits == [30, 60, 120, 240, 480, 900, 900]
        sqlite_city.clock.advance(seconds=900)
        assert _api(client, "zhujian").status_code == 200


def test_a_quiet_spell_starts_the_count_again(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        for _ in range(4):
            _api(client, "chengguan", "wrong-password")
        sqlite_city.clock.advance(minutes=16)
        for _ in range(4):
            assert _api(client, "chengguan", "wrong-password").status_code == 401
        assert _api(client, "chengguan").status_code == 200


def test_an_address_guessing_many_accounts_is_locked_for_all_of_them(city: City) -> None:
    app = make_client(city).app
    with TestClient(app, client=("203.0.113.9", 40000)) as guesser, \
            TestClient(app, client=("203.0.113.10", 40000)) as colleague:
        for n in range(20):
            assert _api(guesser, f"staff{n}", "wrong-password").status_code == 401
        locked = _api(guesser, "admin")
        assert locked.status_code == 429 and locked.headers["retry-after"] == "30"
        assert _api(colleague, "admin").status_code == 200  # the accounts themselves are not locked


def test_an_ipv6_guesser_is_one_address_across_its_64(sqlite_city: City) -> None:
    """A fresh address of the same /64 for each guess does not escape the address lockout."""
    app = make_client(sqlite_city).app
    for n in range(20):
        with TestClient(app, client=(f"2001:db8:1:2::{n + 1:x}", 40000)) as guesser:
            assert _api(guesser, f"staff{n}", "wrong-password").status_code == 401
    with TestClient(app, client=("2001:db8:1:2::ffff", 40000)) as guesser:
        assert _api(guesser, "admin").status_code == 429
    with TestClient(app, client=("2001:db8:1:3::1", 40000)) as neighbour:  # another /64
        assert _api(neighbour, "admin").status_code == 200


def test_the_password_is_checked_in_its_own_pool_not_in_a_database_thread(sqlite_city: City,
                                                                          monkeypatch: Any) -> None:
    # Before, argon2 ran inside the write: on SQLite in the one writer thread, holding every other write.
    seen: list[str] = []
    check = signin.verify_password

    def watched(stored: str | None, password: str) -> tuple[bool, str | None]:
        seen.append(threading.current_thread().name)
        return check(stored, password)

    monkeypatch.setattr(signin, "verify_password", watched)
    with make_client(sqlite_city) as client:
        assert _api(client, "admin").status_code == 200
        assert log_in(client, "admin", password="wrong-password").status_code == 401
    assert len(seen) == 2 and all(name.startswith("wecity-password") for name in seen), seen


def test_failures_are_forgotten_after_a_quiet_spell(sqlite_city: City) -> None:
    import asyncio

    from wecity.core.assemble import build_context
    from wecity.identity.models import sign_in_failures

    with make_client(sqlite_city) as client:
        for _ in range(6):
            _api(client, "chengguan", "wrong-password")
    rows = sa.select(sa.func.count()).select_from(sign_in_failures)
    assert sqlite_city.db.read_sync(lambda c: c.execute(rows).scalar()) == 2  # the account and the address
    ctx = build_context(sqlite_city.settings, db=sqlite_city.db, clock=sqlite_city.clock)
    sqlite_city.clock.advance(minutes=15)  # the 30 s wait, then less than a quiet spell
    asyncio.run(signin.purge_failures(ctx))
    assert sqlite_city.db.read_sync(lambda c: c.execute(rows).scalar()) == 2
    sqlite_city.clock.advance(minutes=2)
    asyncio.run(signin.purge_failures(ctx))
    assert sqlite_city.db.read_sync(lambda c: c.execute(rows).scalar()) == 0


def test_guesses_sent_all_at_once_still_stop_at_the_threshold(city: City) -> None:
    # Each guess reads the lockout before its password check; sent together, they would all read "not
    # locked" and all be checked. Attempts on one account or address take turns in a process instead.
    import asyncio

    import httpx

    from wecity.api.app import create_app

    async def guess_all() -> list[int]:
        app = create_app(city.settings, clock=city.clock, db=city.db)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            answers = await asyncio.gather(*(client.post(TOKEN, json={"username": "chengguan", "password": f"guess-{n}"})
                                             for n in range(12)))
        return sorted(r.status_code for r in answers)

    assert asyncio.run(guess_all()) == [401] * 5 + [429] * 7


def test_signing_out_ends_the_session_the_request_was_signed_in_with(sqlite_city: City) -> None:
    """A client holding a cookie of one sign-in and sending another's bearer token ends the bearer's."""
    city = sqlite_city
    with make_client(city) as client:
        def token() -> str:
            r = client.post("/api/v1/auth/token", json={"username": "admin", "password": DEMO_PASSWORD})
            assert r.status_code == 200
            return str(r.json()["token"])

        bearer, cookie = token(), token()  # the client keeps the second's cookie
        assert client.cookies.get("wecity_session") == cookie
        assert client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {bearer}"}).status_code == 204
        client.cookies.clear()
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {bearer}"}).status_code == 401
        assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {cookie}"}).status_code == 200
