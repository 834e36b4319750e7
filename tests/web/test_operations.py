"""The operations page: figures that count what happened, for supervisors only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import csrf_token, log_in
from tests.web.test_citizen import _report, _tracking_token, resolve_case_of


def _kpi(html: str, name: str) -> str:
    match = re.search(rf'id="kpi-{name}">([^<]+)<', html)
    assert match, name
    return match.group(1)


def test_operations_counts_received_open_closed_and_ratings(web: Any, sqlite_city: Any) -> None:
    log_in(web, "supervisor")
    before = web.get("/ops").text
    assert _kpi(before, "received-today") == "0" and _kpi(before, "satisfaction") == "—"
    tokens = [_tracking_token(_report(web, service_code=code)) for code in ("garbage", "noise")]
    html = web.get("/ops").text
    assert _kpi(html, "received-today") == "2" and _kpi(html, "open") == "2" and _kpi(html, "overdue") == "0"
    resolve_case_of(sqlite_city, tokens[0])
    page = web.get(f"/track/{tokens[0]}").text
    web.post(f"/track/{tokens[0]}/rate", data={"csrf_token": csrf_token(page), "stars": "4"})
    html = web.get("/ops").text
    assert _kpi(html, "satisfaction") == "4.00"
    assert "市城市管理和综合执法局" in html and "芙蓉区" in html  # the tables by department and district
    assert '<script type="application/json" id="trend-data">' in html
    geo = web.get("/ops/open-cases.geojson").json()
    assert {f["properties"]["status"] for f in geo["features"]} == {"verified", "dispatched"}


def test_overdue_cases_are_counted_once_the_clock_runs_out(web: Any, sqlite_city: Any) -> None:
    from datetime import timedelta

    token = _tracking_token(_report(web))
    sqlite_city.clock.at += timedelta(hours=2)  # 垃圾堆积 must be acknowledged within 30 minutes
    log_in(web, "supervisor")
    html = web.get("/ops").text
    assert _kpi(html, "overdue") == "1" and _kpi(html, "urged") == "0"
    # The reporter presses 催办: counted until the department answers.
    page = web.get(f"/track/{token}").text
    assert web.post(f"/track/{token}/urge", data={"csrf_token": csrf_token(page)},
                    follow_redirects=False).status_code == 303
    assert _kpi(web.get("/ops").text, "urged") == "1"


def test_operations_is_for_supervisors(web: Any) -> None:
    assert web.get("/ops", follow_redirects=False).status_code == 303
    log_in(web, "chengguan")
    assert web.get("/ops").status_code == 403


@pytest.mark.parametrize("url", ["/ops/open-cases.geojson", "/ops/sensors.geojson"])
def test_the_maps_data_refuses_like_every_portal_path(web: Any, url: str) -> None:
    # The platform's 401 and 403, rendered as the portal renders errors: a page in the reader's language.
    anonymous = web.get(url)
    assert anonymous.status_code == 401 and anonymous.headers["content-type"].startswith("text/html")
    assert "无权访问" in anonymous.text and "请以督办身份登录" in anonymous.text
    log_in(web, "chengguan")
    handler = web.get(url, params={"lang": "en"})
    assert handler.status_code == 403 and handler.headers["content-type"].startswith("text/html")
    assert "Not allowed" in handler.text and "needs the supervisor role" in handler.text
