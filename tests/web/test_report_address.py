"""The report form's place in words: the address search on the form, a report with only an address placed from
the gazetteer (and told so), or kept without a place when the address is not on the city's map."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import City
from tests.geo.tiny_osm import write_changsha_osm
from tests.web.conftest import csrf_token
from wecity.cases.models import cases
from wecity.geo.gazetteer import build_gazetteer


def _report(web: Any, address: str, locale: str = "zh-CN") -> Any:
    token = csrf_token(web.get("/report").text)
    data = {"csrf_token": token, "service_code": "garbage", "address": address, "description": "垃圾堆了三天"}
    return web.post("/report", data=data, follow_redirects=False, headers={"Accept-Language": locale})


def _case(city: City) -> Any:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases.c.lat, cases.c.long, cases.c.area_id, cases.c.address)
                                                 .order_by(cases.c.id.desc()).limit(1)).one())


def test_the_form_carries_the_address_search_hidden_until_scripts_show_it(web: Any) -> None:
    html = web.get("/report", headers={"Accept-Language": "zh-CN"}).text
    assert 'data-address-search hidden' in html and "搜索地址或地点" in html
    assert '/static/js/address.js' in html and 'name="address"' in html  # the field that works without scripts
    english = web.get("/report", headers={"Accept-Language": "en"}).text
    assert "Search for an address or place" in english and "near %(road)s, %(district)s" in english


def test_an_address_without_a_pin_is_placed_from_the_gazetteer_and_the_citizen_is_told(
        web: Any, sqlite_city: City) -> None:
    var = sqlite_city.settings.var_dir
    build_gazetteer(write_changsha_osm(var / "changsha.osm.pbf"), var / "gazetteer.sqlite")
    sent = _report(web, "人民东路 靠近公交站")
    assert sent.status_code == 303 and "placed=address" in sent.headers["location"]
    case = _case(sqlite_city)
    assert case.lat is not None and abs(case.lat - 28.19) < 0.005 and case.area_id is not None
    assert case.address == "人民东路 靠近公交站"
    page = web.get(sent.headers["location"], headers={"Accept-Language": "zh-CN"}).text
    assert "已根据您填写的地址定位：芙蓉区，人民东路附近" in page
    page = web.get(sent.headers["location"], headers={"Accept-Language": "en"}).text
    assert "placed from the address you wrote: near Renmin East Road, Furong District" in page


def test_an_address_not_on_the_map_is_kept_without_a_place(web: Any, sqlite_city: City) -> None:
    sent = _report(web, "火星街道菜市场门口")  # a 街道 names only a district: too coarse for a pin
    assert sent.status_code == 303 and "placed=none" in sent.headers["location"]
    case = _case(sqlite_city)
    assert case.lat is None and case.address == "火星街道菜市场门口"
    page = web.get(sent.headers["location"], headers={"Accept-Language": "zh-CN"}).text
    assert "填写的地址也未能在本市地图上找到" in page


def test_a_pinned_report_is_not_moved_by_its_address(web: Any, sqlite_city: City) -> None:
    var = sqlite_city.settings.var_dir
    build_gazetteer(write_changsha_osm(var / "changsha.osm.pbf"), var / "gazetteer.sqlite")
    token = csrf_token(web.get("/report").text)
    sent = web.post("/report", data={"csrf_token": token, "service_code": "garbage", "address": "人民东路",
                                     "lat": "28.2100", "long": "112.9150", "description": "x"}, follow_redirects=False)
    assert sent.status_code == 303 and "placed" not in sent.headers["location"]
    assert _case(sqlite_city).lat == 28.21


def test_reports_placed_from_one_road_are_not_merged_by_that_place(web: Any, sqlite_city: City) -> None:
    """Every address on 人民东路 gets the road's one point: two such reports of one category, a kilometre
    apart in fact, must stay two cases; and a pinned report at that point does not join one of them."""
    var = sqlite_city.settings.var_dir
    build_gazetteer(write_changsha_osm(var / "changsha.osm.pbf"), var / "gazetteer.sqlite")
    first, second = _report(web, "人民东路 东头菜市场"), _report(web, "人民东路 西头桥下")
    assert "new=case" in first.headers["location"] and "new=case" in second.headers["location"]
    placed = sqlite_city.db.read_sync(lambda c: c.execute(
        sa.select(cases.c.id, cases.c.lat, cases.c.long, cases.c.place_from_address)
        .order_by(cases.c.id.desc()).limit(2)).all())
    assert len({(r.lat, r.long) for r in placed}) == 1 and all(r.place_from_address for r in placed)
    token = csrf_token(web.get("/report").text)
    pinned = web.post("/report", data={"csrf_token": token, "service_code": "garbage", "lat": str(placed[0].lat),
                                       "long": str(placed[0].long), "description": "垃圾堆了三天"},
                      follow_redirects=False)
    assert "new=case" in pinned.headers["location"]
    assert not _case_flag(sqlite_city)
    again = web.post("/report", data={"csrf_token": csrf_token(web.get("/report").text), "service_code": "garbage",
                                      "lat": str(placed[0].lat), "long": str(placed[0].long), "description": "又一次"},
                     follow_redirects=False)
    assert "new=merged" in again.headers["location"]  # pinned reports still merge with each other


def _case_flag(city: City) -> bool:
    return bool(city.db.read_sync(lambda c: c.execute(sa.select(cases.c.place_from_address)
                                                      .order_by(cases.c.id.desc()).limit(1)).scalar_one()))
