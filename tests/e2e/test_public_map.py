"""The public map of reports in a real browser: clustered markers over the districts, filters, a popup with
the category, the state and the photo, and a link to the case's public page."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_city_map_shows_reports_clustered_and_filtered(pages: Any, locale: str) -> None:
    page = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/map")
    page.wait_for_selector("#city-map[data-reports-loaded]")
    every = int(page.get_attribute("#city-map", "data-reports-loaded") or 0)
    assert every > 20, "the demo city's open and recent cases are on the map"
    assert page.locator("#city-map .marker-cluster").count() > 0, "many reports show as clusters"
    assert str(every) in page.locator("#map-count").inner_text()
    shot(page, f"public-map-{locale}-phone", full_page=False)
    # One kind only: fewer reports.
    page.select_option("#map-category", "garbage")
    page.wait_for_function(f"() => document.getElementById('city-map').getAttribute('data-reports-loaded') !== '{every}'")
    garbage = int(page.get_attribute("#city-map", "data-reports-loaded") or 0)
    assert 0 < garbage < every
    # Zoom to one report and open its popup: category, state and a link to its page, nothing personal.
    page.evaluate("""() => { const element = document.getElementById('city-map');
        const one = element.wecityReports.getLayers()[0];
        element.wecityMap.setView(one.getLatLng(), 19, {animate: false}); }""")
    page.wait_for_timeout(300)
    page.evaluate("() => document.getElementById('city-map').wecityReports.getLayers()[0].openPopup()")
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    assert ("垃圾堆积" if locale == "zh-CN" else "Rubbish pile-up") in popup.inner_text()
    assert popup.locator("a[href^='/cases/']").count() == 1
    assert a11y.problems(page) == []
