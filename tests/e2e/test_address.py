"""The report form's address search in a real browser, on a phone: type part of a road's name, choose it, and
the pin moves there and the form names the nearest road and the district; without scripts the address field
still carries the place."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, SERVER_LOG, shot
from tests.geo.tiny_osm import write_changsha_osm
from wecity.geo.gazetteer import build_gazetteer

pytestmark = pytest.mark.e2e


@pytest.fixture
def gazetteer(server: str) -> None:
    """The demo server's gazetteer, built from a small Changsha extract while it runs (it reads the new file)."""
    var = SERVER_LOG["path"].parent
    build_gazetteer(write_changsha_osm(var / "changsha.osm.pbf"), var / "gazetteer.sqlite")


@pytest.mark.parametrize(("locale", "typed", "line"), [
    ("zh-CN", "人民东", "芙蓉区，人民东路附近"),
    ("en", "Renmin", "near Renmin East Road, Furong District"),
])
def test_choosing_a_search_result_moves_the_pin_and_names_the_place(pages: Any, gazetteer: None, locale: str,
                                                                    typed: str, line: str) -> None:
    page = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/report")
    search = page.locator("#address-search")
    search.scroll_into_view_if_needed()
    search.fill(typed)
    result = page.locator("#address-results .address-result").first
    result.wait_for(timeout=10_000)
    assert ("芙蓉区" if locale == "zh-CN" else "Furong District") in result.inner_text()
    shot(page, f"report-address-results-{locale}-phone", full_page=False)
    result.click()
    expect(page.locator("#lat")).not_to_have_value("", timeout=10_000)
    assert abs(float(page.input_value("#lat")) - 28.19) < 0.005
    assert page.locator("#report-map .leaflet-marker-icon").count() == 1
    place = page.locator("[data-place-line]")
    place.filter(has_text=line).wait_for(timeout=10_000)
    assert page.input_value("#address") == ("人民东路" if locale == "zh-CN" else "Renmin East Road")
    # Tapping the map elsewhere names the new place: no road near, the district only.
    box = page.locator("#report-map").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15)  # some 300 m north
    expect(place).not_to_have_text(line, timeout=10_000)
    page.locator("#address-search").fill(typed)
    page.locator("#address-results .address-result").first.click()
    place.filter(has_text=line).wait_for(timeout=10_000)
    page.locator("#address-search").scroll_into_view_if_needed()
    shot(page, f"report-address-{locale}-phone", full_page=False)
    assert a11y.problems(page) == []


def test_without_scripts_the_address_field_carries_the_place(pages: Any) -> None:
    page = pages.open("zh-CN", viewport=PHONE, java_script_enabled=False)
    page.goto("/report")
    assert not page.locator("#address-search").is_visible()
    assert page.locator("#address").is_visible()
