"""Staff login and logout: session cookie flags, CSRF, audit entries, the staff desk."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import make_client
from tests.web.conftest import csrf_token, log_in
from wecity.identity.deps import SESSION_COOKIE
from wecity.identity.models import audit_log, staff_sessions


def _audit(city: Any) -> list[Any]:
    return city.db.read_sync(lambda conn: conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).all())


def _sessions(city: Any) -> int:
    return city.db.read_sync(lambda conn: conn.execute(sa.select(sa.func.count()).select_from(staff_sessions)).scalar())


def test_login_sets_an_httponly_lax_session_cookie_and_audits(web: Any, sqlite_city: Any) -> None:
    r = log_in(web, "chengguan", next_path="/map")
    assert r.status_code == 303 and r.headers["location"] == "/map"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    entry = _audit(sqlite_city)[-1]
    assert (entry.actor, entry.action, entry.outcome) == ("chengguan", "staff.login", "ok")
    assert entry.source_address == "testclient"
    assert _sessions(sqlite_city) == 1


def test_wrong_password_is_refused_and_audited_with_the_source(web: Any, sqlite_city: Any) -> None:
    r = log_in(web, "chengguan", password="not-the-password")
    assert r.status_code == 401
    assert "用户名或密码错误。" in r.text
    assert 'value="chengguan"' in r.text  # the username stays filled in
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    entry = _audit(sqlite_city)[-1]
    assert (entry.actor, entry.action, entry.outcome, entry.source_address) == (
        "chengguan", "staff.login", "denied", "testclient")
    assert _sessions(sqlite_city) == 0


def test_unknown_user_gets_the_same_answer(web: Any) -> None:
    r = log_in(web, "nobody-here", password="whatever-123")
    assert r.status_code == 401 and "用户名或密码错误。" in r.text


def test_login_without_a_valid_csrf_token_is_refused(web: Any, sqlite_city: Any) -> None:
    web.get("/login")
    r = web.post("/login", data={"username": "admin", "password": "wecity-demo", "csrf_token": "0" * 64},
                 follow_redirects=False)
    assert r.status_code == 403
    assert _sessions(sqlite_city) == 0
    # A token from another browser (another CSRF cookie) does not work either.
    with make_client(sqlite_city) as other_browser:
        other = csrf_token(other_browser.get("/login").text)
    assert other != csrf_token(web.get("/login").text)
    r = web.post("/login", data={"username": "admin", "password": "wecity-demo", "csrf_token": other},
                 follow_redirects=False)
    assert r.status_code == 403 and _sessions(sqlite_city) == 0


def test_login_refuses_to_redirect_off_site(web: Any) -> None:
    r = log_in(web, "admin", next_path="https://evil.example/")
    assert r.headers["location"] == "/staff"


def test_staff_desk_needs_login_and_shows_department_and_roles(web: Any) -> None:
    r = web.get("/staff", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fstaff"
    log_in(web, "chengguan-lead")
    zh = web.get("/staff").text
    assert "市城市管理和综合执法局" in zh and "处置人员" in zh and "督办" in zh
    web.cookies.set("lang", "en")
    en = web.get("/staff").text
    assert "Urban Management &amp; Law Enforcement Bureau" in en
    assert "Case handler" in en and "Supervisor" in en


def test_logout_ends_the_session_and_audits(web: Any, sqlite_city: Any) -> None:
    log_in(web, "dispatcher")
    assert _sessions(sqlite_city) == 1
    token = csrf_token(web.get("/staff").text)
    r = web.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert _sessions(sqlite_city) == 0
    entry = _audit(sqlite_city)[-1]
    assert (entry.actor, entry.action, entry.outcome) == ("dispatcher", "staff.logout", "ok")
    assert web.get("/staff", follow_redirects=False).status_code == 303


def test_logout_without_csrf_keeps_the_session(web: Any, sqlite_city: Any) -> None:
    log_in(web, "dispatcher")
    r = web.post("/logout", data={}, follow_redirects=False)
    assert r.status_code == 403
    assert _sessions(sqlite_city) == 1


def test_repeated_failures_lock_the_login_for_a_while(web: Any, sqlite_city: Any) -> None:
    from datetime import timedelta

    for _ in range(5):
        assert log_in(web, "chengguan", password="wrong-password").status_code == 401
    locked = log_in(web, "chengguan")  # even the right password waits
    assert locked.status_code == 429 and "登录失败次数过多，请 30 秒后再试" in locked.text
    assert locked.headers["retry-after"] == "30"
    assert 'value="chengguan"' in locked.text  # the form stays filled in
    assert _audit(sqlite_city)[-1].detail == {"via": "portal", "reason": "locked"}
    assert _sessions(sqlite_city) == 0
    sqlite_city.clock.at += timedelta(seconds=31)
    assert log_in(web, "chengguan").status_code == 303
