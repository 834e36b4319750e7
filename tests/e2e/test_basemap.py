"""The city's own street map in the browser: a demo city whose var dir holds a base map imported from the
committed OpenStreetMap extract, drawn by MapLibre under the Leaflet map, streets named, nothing fetched
from elsewhere."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import DESKTOP, PHONE, Pages, checked_pages, import_basemap, serve_demo, shot
from tests.geo.conftest import TRANSLATED_NAMES, TRANSLATED_STREET, with_translated_street

pytestmark = pytest.mark.e2e

CENTRE = (60.5300, 26.9500)  # lat, long: the middle of the extract


@pytest.fixture(scope="module")
def basemap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo city (without history, to start sooner) with the extract (one street given Chinese and English
    names) imported by the real command."""
    var = tmp_path_factory.mktemp("e2e-basemap")
    started = time.monotonic()
    printed = import_basemap(var, with_translated_street(var / "city.osm.pbf"))
    print(f"import-basemap: {time.monotonic() - started:.1f} s; {printed.strip()}")
    yield from serve_demo(var, "--no-history", record_log=False)


@pytest.fixture
def map_pages(browser: Any, basemap_server: str) -> Iterator[Pages]:
    yield from checked_pages(browser, basemap_server)


def drawn(page: Any, zoom: float, selector: str = "#city-map") -> dict[str, Any]:
    """Centre the Leaflet map on the extract at `zoom`, wait until MapLibre has drawn every tile, and say what
    it drew: the street names and road classes on screen."""
    page.wait_for_selector(f"{selector}[data-areas-loaded]")
    page.wait_for_function(f"() => document.querySelector('{selector}').getAttribute('data-basemap') !== 'loading'")
    state = page.get_attribute(selector, "data-basemap")
    assert state == "ready", state
    page.evaluate(f"document.querySelector('{selector}').wecityMap.setView([{CENTRE[0]}, {CENTRE[1]}], {zoom}, "
                  "{animate: false})")
    page.wait_for_function(f"""() => {{
        const m = document.querySelector('{selector}').wecityBasemap.getMaplibreMap();
        return m.loaded() && m.areTilesLoaded() && !m.isMoving();
    }}""", timeout=30_000)
    page.wait_for_timeout(300)  # labels fade in after the tiles are placed
    return page.evaluate(f"""() => {{
        const m = document.querySelector('{selector}').wecityBasemap.getMaplibreMap();
        const labels = m.queryRenderedFeatures({{layers: ['street-name']}});
        const names = labels.map(f => f.properties.name);
        const translated = labels.filter(f => f.properties['name:zh']).map(f => [f.properties['name:zh'],
                                                                                 f.properties['name:en']]);
        const roads = m.queryRenderedFeatures({{layers: ['road-minor', 'road-tertiary', 'road-secondary',
                                                        'road-primary']}}).length;
        const buildings = m.queryRenderedFeatures({{layers: ['building']}}).length;
        return {{names: [...new Set(names)], translated, roads, buildings, zoom: m.getZoom(),
                 attribution: document.querySelector('{selector} .leaflet-control-attribution').textContent}};
    }}""")


def test_the_city_map_draws_named_streets_from_the_imported_extract(map_pages: Pages) -> None:
    page = map_pages.open("zh-CN", DESKTOP)
    page.goto("/map")
    seen = drawn(page, 17)
    shot(page, "basemap-streets-zh", full_page=False)
    # Leaflet zoom 17 is MapLibre zoom 16 (512-pixel tiles); the tiles stop at 14 and are drawn larger.
    assert seen["zoom"] == pytest.approx(16, abs=0.01)
    assert seen["roads"] > 0 and seen["buildings"] > 0
    # The streets around the extract's centre, labelled along their lines (read back from what was drawn).
    assert TRANSLATED_STREET in seen["names"] and len(seen["names"]) >= 3, seen["names"]
    # The street with a Chinese name is labelled with it here (drawn with the machine's own CJK font: see
    # the screenshot), the others with the name on the ground.
    assert [TRANSLATED_NAMES["name:zh"], TRANSLATED_NAMES["name:en"]] in seen["translated"], seen["translated"]
    assert all(seen["names"]), seen["names"]
    assert "OpenStreetMap" in seen["attribution"] and "ODbL" in seen["attribution"]
    # The districts' layer stays Leaflet's, over the base map, as before.
    assert page.locator("#city-map .leaflet-tile-pane .leaflet-gl-layer canvas").count() == 1
    assert "OpenStreetMap" in page.locator(".map-note").inner_text()


def test_the_report_map_on_a_phone_puts_the_pin_over_the_streets(map_pages: Pages) -> None:
    page = map_pages.open("en", PHONE)
    page.goto("/report")
    seen = drawn(page, 16, "#report-map")
    element = page.locator("#report-map")
    element.scroll_into_view_if_needed()
    element.click()  # a tap in the middle of the map puts the pin there, over the streets
    page.wait_for_selector("#report-map[data-pinned]")
    page.wait_for_timeout(300)
    shot(page, "basemap-report-phone-en", full_page=False)
    assert float(page.input_value("#lat")) == pytest.approx(CENTRE[0], abs=2e-4)
    assert float(page.input_value("#long")) == pytest.approx(CENTRE[1], abs=2e-4)
    assert page.locator("#report-map .leaflet-marker-pane .leaflet-marker-icon").count() == 1
    assert seen["roads"] > 0 and seen["names"], seen
