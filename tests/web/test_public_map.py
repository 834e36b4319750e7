"""The public map of reports: open and recently fixed cases as GeoJSON, filtered, with nothing personal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.conftest import make_client
from tests.web.test_citizen import _report, _tracking_token, resolve_case_of
from wecity.cases.models import cases
from wecity.core.limits import parse_rule


def test_the_map_shows_open_and_recently_fixed_cases_without_personal_data(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web, description="张三家门口 13912345678", address="人民路 12 号"))
    body = web.get("/api/v1/public/map").json()
    assert body["type"] == "FeatureCollection" and body["features"]
    mine = [f for f in body["features"] if f["properties"]["category"] == "garbage"
            and f["properties"]["state"] == "open"]
    assert mine and mine[0]["properties"]["photo"].endswith("/thumbnail")
    text = web.get("/api/v1/public/map").text
    assert "13912345678" not in text and "张三" not in text and "人民路" not in text and token not in text
    # Filters: by category, and by state.
    only = web.get("/api/v1/public/map", params={"category": "manhole"}).json()["features"]
    assert all(f["properties"]["category"] == "manhole" for f in only)
    case_id = resolve_case_of(city, token)
    fixed = web.get("/api/v1/public/map", params={"state": "fixed"}).json()["features"]
    assert case_id in [f["id"] for f in fixed] and all(f["properties"]["state"] == "fixed" for f in fixed)
    assert case_id not in [f["id"] for f in web.get("/api/v1/public/map", params={"state": "open"}).json()["features"]]
    # Fixed more than 30 days ago: off the map.
    city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id == case_id).values(
        updated_at=city.clock.now() - timedelta(days=31))))
    assert case_id not in [f["id"] for f in web.get("/api/v1/public/map").json()["features"]]
    assert web.get("/api/v1/public/map", params={"state": "bogus"}).status_code == 400


def test_the_map_is_rate_limited_per_address(sqlite_city: Any) -> None:
    rules = {**sqlite_city.settings.rate_limits, "public_map": parse_rule("2/minute")}
    with make_client(sqlite_city, rate_limits=rules) as web:
        assert web.get("/api/v1/public/map").status_code == 200
        assert web.get("/api/v1/public/map").status_code == 200
        refused = web.get("/api/v1/public/map")
        assert refused.status_code == 429 and refused.headers["content-type"].startswith("application/problem+json")


def test_the_map_page_offers_the_filters_in_both_languages(web: Any) -> None:
    zh = web.get("/map").text
    assert 'id="map-category"' in zh and "全部类别" in zh and "井盖缺失/破损" in zh and "近 30 天已解决" in zh
    en = web.get("/map", headers={"Accept-Language": "en"}).text
    assert "All kinds" in en and "Missing or broken manhole cover" in en and 'data-reports-url="/api/v1/public/map"' in en


def test_merged_cases_are_not_on_the_map(web_city: Any) -> None:
    web, city = web_city
    _report(web)
    merged = city.db.read_sync(lambda c: c.execute(sa.select(cases.c.id).where(cases.c.status == "merged")).scalars().all())
    ids = {f["id"] for f in web.get("/api/v1/public/map").json()["features"]}
    assert not ids & set(merged)
