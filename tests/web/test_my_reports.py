""""My reports": a one-time code by SMS (through the outbox) proves the phone number; then its reports are listed."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.web.conftest import csrf_token
from tests.web.test_citizen import _report, _tracking_token
from wecity.core.models import outbox_messages as outbox


def _sent_code(city: Any, phone: str) -> str:
    rows = city.db.read_sync(lambda c: c.execute(sa.select(outbox.c.target, outbox.c.payload)
                                                 .order_by(outbox.c.id.desc())).all())
    for target, payload in rows:
        if target == "sms" and payload.get("event") == "portal_code" and payload["phone"] == phone:
            match = re.search(r"\b(\d{6})\b", payload["text"])
            assert match
            return match.group(1)
    raise AssertionError("no code in the outbox")


def _ask_code(web: Any, phone: str) -> Any:
    return web.post("/my/code", data={"csrf_token": csrf_token(web.get("/my").text), "phone": phone})


def test_a_citizen_sees_their_reports_after_proving_the_number(web_city: Any) -> None:
    web, sqlite_city = web_city
    token = _tracking_token(_report(web, phone="139 1234 5678"))
    _tracking_token(_report(web, phone="13800001111", service_code="noise"))
    r = _ask_code(web, "+86 139-1234-5678")
    assert r.status_code == 200 and 'id="my-code"' in r.text
    code = _sent_code(sqlite_city, "13912345678")
    wrong = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678",
                                         "code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400 and "验证码错误或已过期。" in wrong.text
    ok = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": code},
                  follow_redirects=False)
    assert ok.status_code == 303
    cookie = next(c for c in ok.headers.get_list("set-cookie") if c.startswith("wecity_citizen="))
    assert "HttpOnly" in cookie
    listing = web.get("/my").text
    assert f'href="/track/{token}"' in listing and "139****5678" in listing
    assert "噪音扰民" not in listing  # another number's report
    # A code works once.
    again = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": code})
    assert again.status_code == 400
    # Signed out on this device (a service hall's kiosk): a copy of the cookie no longer works either, on the
    # pages or as the API's bearer token.
    kept = web.cookies.get("wecity_citizen")
    assert kept and web.get("/api/v1/applicant", headers={"Authorization": f"Bearer {kept}"}).status_code == 200
    # Not by another site's form (no form token): the sign-in stands.
    forged = web.post("/my/forget", data={}, follow_redirects=False)
    assert forged.status_code == 403 and "wecity_citizen" not in forged.headers.get("set-cookie", "")
    assert 'id="my-phone"' not in web.get("/my").text
    web.post("/my/forget", data={"csrf_token": csrf_token(web.get("/my").text)})
    web.cookies.set("wecity_citizen", kept)
    assert 'id="my-phone"' in web.get("/my").text  # asked for the number again
    assert web.get("/api/v1/applicant", headers={"Authorization": f"Bearer {kept}"}).status_code == 401


def test_codes_expire_and_are_rate_limited(web: Any, sqlite_city: Any) -> None:
    r = _ask_code(web, "13912345678")
    code = _sent_code(sqlite_city, "13912345678")
    sqlite_city.clock.at += timedelta(minutes=11)
    late = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": code})
    assert late.status_code == 400
    _ask_code(web, "13912345678")
    _ask_code(web, "13912345678")
    limited = _ask_code(web, "13912345678")
    assert limited.status_code == 429 and "过于频繁" in limited.text


def test_a_guessed_code_stops_working_after_five_tries(web: Any, sqlite_city: Any) -> None:
    r = _ask_code(web, "13912345678")
    code = _sent_code(sqlite_city, "13912345678")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": wrong})
    right = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": code})
    assert right.status_code == 400


def test_bad_numbers_and_forged_cookies_are_refused(web: Any) -> None:
    r = _ask_code(web, "not a phone")
    assert r.status_code == 400 and "请输入正确的手机号码" in r.text
    web.cookies.set("wecity_citizen", "13912345678.9999999999.forged")
    assert 'id="my-phone"' in web.get("/my").text


def test_pages_for_a_signed_in_citizen_are_not_stored(web: Any, sqlite_city: Any) -> None:
    """A page sent with a citizen's sign-in may show their own reports and applications: no cache keeps it
    (as staff pages), whatever page it is."""
    _report(web, phone="13912345678")
    assert web.get("/my").headers["cache-control"] == "no-cache"
    r = _ask_code(web, "13912345678")
    code = _sent_code(sqlite_city, "13912345678")
    web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13912345678", "code": code})
    for path in ("/my", "/my/data-uses", "/services/mine", "/"):
        assert web.get(path).headers["cache-control"] == "no-store", path
    kept = web.cookies.get("wecity_citizen")
    web.cookies.clear()
    assert web.get("/services/mine", headers={"Authorization": f"Bearer {kept}"}).headers["cache-control"] == "no-store"
    assert web.get("/").headers["cache-control"] == "no-cache"
