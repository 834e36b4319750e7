"""A citizen's day on a 390x844 phone, in both languages, in a city whose street map and address search come
from an OpenStreetMap extract imported with `wecity city import-basemap`: the citizen searches an address,
sees the named streets and the district, a photo that knows where it was taken moves the pin (after asking),
an open report nearby is shown, the report is sent; the department says it is fixed, the citizen says
"still not fixed" and the case is open again."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, Pages, checked_pages, import_basemap, serve_demo, shot
from tests.e2e.test_loop import _drop_pin, _log_in, _log_out
from tests.geo.tiny_osm import write_changsha_osm
from tests.media.samples import exif_bytes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def street_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo city with central Changsha's streets (a small extract with Chinese and English names, written
    with pyosmium) imported by the real command: the street map and the address search."""
    var = tmp_path_factory.mktemp("e2e-street-city")
    import_basemap(var, write_changsha_osm(var / "changsha.osm.pbf"))
    yield from serve_demo(var, "--no-history", record_log=False)


@pytest.fixture
def street_pages(browser: Any, street_city: str) -> Iterator[Pages]:
    yield from checked_pages(browser, street_city)


TEXT = {
    "zh-CN": {"search": "垃圾", "where": (28.19020, 113.00500), "ask": "这张照片拍摄于", "yes": "好，移动标记",
              "address": "人民东", "place": "芙蓉区，人民东路附近", "street": "人民东路",
              "already": "附近已经有人反映了吗？", "send": "提交反映", "handler": "chengguan", "acknowledge": "签收",
              "resolve": "办结", "log_in": "登录", "log_out": "退出登录", "fixed": "已处理，待核实",
              "not_fixed": "问题仍未解决", "reopened": "案件已重新打开", "again": "已转交责任部门",
              "menu": "菜单"},
    "en": {"search": "rubbish", "where": (28.19020, 113.00500), "ask": "This photo was taken at",
           "address": "Renmin", "place": "near Renmin East Road, Furong District", "street": "Renmin East Road",
           "yes": "Yes, move the pin", "already": "Already reported nearby?", "send": "Send the report",
           "handler": "chengguan", "acknowledge": "Acknowledge", "resolve": "Resolve", "log_in": "Log in",
           "log_out": "Log out", "fixed": "Fixed, being checked", "not_fixed": "It is still not fixed",
           "reopened": "The case is open again", "again": "Passed to the department", "menu": "Menu"},
}


def _photo_taken_at(tmp_path: Path, name: str, lat: float, lon: float) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (140, 120, 70)).save(buffer, "JPEG", quality=85, exif=exif_bytes(gps=(lat, lon)))
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return path


def _choose_category(page: Any, t: dict[str, Any]) -> None:
    page.fill("#category-search", t["search"])
    page.locator("label.choice:visible", has=page.locator("input[name=service_code]")).first.click()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_a_citizens_day_on_a_phone(street_pages: Pages, tmp_path: Path, locale: str) -> None:
    pages = street_pages
    t = TEXT[locale]
    tag = "zh" if locale == "zh-CN" else "en"
    lat, lon = t["where"]
    phone = {"viewport": PHONE, "is_mobile": True, "has_touch": True}

    # Someone has already reported rubbish on 人民东路.
    first = pages.open(locale, **phone)
    first.goto("/report")
    _choose_category(first, t)
    _drop_pin(first, lat, lon)
    first.get_by_role("button", name=t["send"]).click()
    first.wait_for_url(re.compile(r"/track/[^/?]+\?new=(case|merged)"))  # the other language's run may be there

    # A citizen looks for the street by name: the pin goes there, on the street map, with the district.
    citizen = pages.open(locale, **phone)
    citizen.goto("/report")
    assert t["menu"] in citizen.locator(".menu-toggle").inner_text()
    _choose_category(citizen, t)
    citizen.wait_for_selector("#report-map[data-areas-loaded]")
    citizen.wait_for_function("() => document.getElementById('report-map').getAttribute('data-basemap') === 'ready'")
    citizen.locator("#address-search").scroll_into_view_if_needed()
    citizen.fill("#address-search", t["address"])
    citizen.locator("#address-results .address-result").first.click()
    citizen.locator("[data-place-line]").filter(has_text=t["place"]).wait_for(timeout=10_000)
    citizen.wait_for_function("""() => { const m = document.getElementById('report-map').wecityBasemap.getMaplibreMap();
        return m.loaded() && m.areTilesLoaded() && !m.isMoving(); }""", timeout=30_000)
    citizen.wait_for_timeout(300)  # labels fade in
    streets = citizen.evaluate("""() => document.getElementById('report-map').wecityBasemap.getMaplibreMap()
        .queryRenderedFeatures({layers: ['street-name']}).map(f => f.properties.name)""")
    assert "人民东路" in streets, streets  # the street is drawn with its name (its label in the reader's language)
    citizen.locator("#report-map").scroll_into_view_if_needed()
    shot(citizen, f"day-{tag}-0-street-map-phone", full_page=False)

    # A citizen takes a photo there: the form asks before moving the pin to where the photo was taken.
    citizen.set_input_files("#photo-file", str(_photo_taken_at(tmp_path, f"corner-{tag}.jpg", lat + 0.0002, lon)))
    citizen.wait_for_selector("#photo-place:not([hidden])")
    assert t["ask"] in citizen.locator("#photo-place").inner_text()
    searched = float(citizen.locator("#lat").input_value())
    assert abs(searched - (lat + 0.0002)) > 1e-5, "nothing moves before the citizen says yes"
    citizen.locator("#photo-place").scroll_into_view_if_needed()
    shot(citizen, f"day-{tag}-1-photo-asks-phone", full_page=False)
    citizen.get_by_role("button", name=t["yes"]).click()
    citizen.wait_for_selector("#report-map[data-pinned]", state="attached")
    assert abs(float(citizen.locator("#lat").input_value()) - (lat + 0.0002)) < 1e-5
    # The move looks for reports nearby, like any other.
    citizen.wait_for_selector("#nearby .nearby-cases")
    assert t["already"] in citizen.locator("#nearby").inner_text()
    assert citizen.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(citizen, f"day-{tag}-2-nearby-phone")
    assert a11y.problems(citizen) == []
    citizen.get_by_role("button", name=t["send"]).click()
    citizen.wait_for_url(re.compile(r"/track/[^/?]+\?new=(case|merged)"))
    code = citizen.locator("#tracking-code").inner_text().strip()
    case_id = citizen.locator("#case-number").inner_text().strip()

    # The department says it is fixed.
    handler = pages.open(locale)
    _log_in(handler, t["handler"], t)
    handler.goto(f"/staff/cases/{case_id}")
    handler.get_by_role("button", name=t["acknowledge"], exact=True).click()
    handler.wait_for_url("**?done=acknowledge")
    form = handler.locator("form[data-action=resolve]")
    form.locator("textarea").fill("已清运" if tag == "zh" else "Cleared")
    form.locator("input[type=file]").set_input_files(str(_photo_taken_at(tmp_path, f"after-{tag}.jpg", lat, lon)))
    form.get_by_role("button", name=t["resolve"], exact=True).click()
    handler.wait_for_url("**?done=resolve")
    _log_out(handler, t)

    # The citizen disagrees: still not fixed, and the case goes back to the department.
    citizen.goto(f"/track/{code}")
    assert citizen.locator("#case-status").inner_text() == t["fixed"]
    citizen.fill("#reopen-note", "垃圾还在" if tag == "zh" else "The rubbish is still there")
    shot(citizen, f"day-{tag}-3-still-not-fixed-phone")
    citizen.get_by_role("button", name=t["not_fixed"]).click()
    citizen.wait_for_url("**?new=reopened")
    assert t["reopened"] in citizen.locator("#reopened").inner_text()
    assert citizen.locator("#case-status").inner_text() == t["again"]
    assert citizen.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(citizen, f"day-{tag}-4-reopened-phone")
    assert a11y.problems(citizen) == []
