"""The staff JSON API signed in by the portal's session cookie: a change needs the page's CSRF token in a
header, JSON, and no foreign Origin; a hostile page that makes the browser send the cookie changes nothing."""

from __future__ import annotations

import sqlalchemy as sa

from wecity.cases.models import cases
from wecity.demo.changsha import DEMO_PASSWORD

from ..cases.conftest import open_case
from ..conftest import City, make_client
from ..web.conftest import csrf_token, log_in


def _status(city: City, case_id: int) -> str:
    return str(city.db.read_sync(lambda c: c.execute(sa.select(cases.c.status).where(cases.c.id == case_id))
                                 .scalar_one()))


def test_a_cookie_signed_change_needs_the_csrf_header_json_and_this_origin(sqlite_city: City) -> None:
    city = sqlite_city
    case_id = open_case(city)  # a manhole: 城管 (chengguan)
    url = f"/api/v1/cases/{case_id}/acknowledge"
    with make_client(city) as browser:
        assert log_in(browser, "chengguan").status_code == 303
        token = csrf_token(browser.get("/report").text)
        # What a hostile page can make the browser send: the cookie, a text/plain body, no token.
        forged = browser.post(url, content=b"x", headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
        assert forged.status_code == 403 and forged.headers["content-type"] == "application/problem+json"
        assert browser.post(url, content=b"x", headers={"Content-Type": "text/plain"}).status_code == 403
        assert browser.post(url, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}).status_code == 403
        assert browser.post(url, content=b"x", headers={"X-CSRF-Token": token,
                                                        "Content-Type": "text/plain"}).status_code == 403
        assert _status(city, case_id) == "dispatched"
        # The site's own page: its token in the header (and JSON for a body).
        done = browser.post(url, headers={"X-CSRF-Token": token, "Origin": str(browser.base_url)})
        assert done.status_code == 200, done.text
    assert _status(city, case_id) == "acknowledged"


def test_a_bearer_token_needs_no_csrf_token(sqlite_city: City) -> None:
    city = sqlite_city
    case_id = open_case(city)
    with make_client(city) as api:
        bearer = api.post("/api/v1/auth/token", json={"username": "chengguan", "password": DEMO_PASSWORD}).json()
        api.cookies.clear()
        done = api.post(f"/api/v1/cases/{case_id}/acknowledge", headers={"Authorization": f"Bearer {bearer['token']}"})
    assert done.status_code == 200, done.text
