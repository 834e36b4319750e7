"""The base map over HTTP: its style, its PMTiles file by byte ranges, and the pages that draw it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_client
from tests.geo.conftest import install_basemap
from wecity.core.limits import parse_rule
from wecity.geo.basemap_api import MAX_RANGE_BYTES

TILES = "/api/v1/basemap/city.pmtiles"
STYLE = "/api/v1/basemap/style.json"


@pytest.fixture
def mapped(sqlite_city: Any, built_basemap: Path) -> Any:
    """The demo city with the extract's base map imported into its var dir."""
    install_basemap(built_basemap, sqlite_city.settings.var_dir)
    return sqlite_city


def test_without_a_basemap_both_answer_not_found_and_pages_draw_no_basemap(sqlite_city: Any) -> None:
    with make_client(sqlite_city) as c:
        for path in (STYLE, TILES):
            r = c.get(path, headers={"Range": "bytes=0-16383"})
            assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "basemap.none"
        html = c.get("/map").text
    assert "data-basemap-style" not in html and "maplibre" not in html


def test_a_range_is_answered_with_206_and_its_bytes(mapped: Any, built_basemap: Path) -> None:
    data = (built_basemap / "city.pmtiles").read_bytes()
    with make_client(mapped) as c:
        r = c.get(TILES, headers={"Range": "bytes=0-16383"})
        assert r.status_code == 206
        assert r.content == data[:16384] and r.content[:7] == b"PMTiles"
        assert r.headers["content-range"] == f"bytes 0-16383/{len(data)}"
        assert r.headers["accept-ranges"] == "bytes" and r.headers["etag"]
        assert r.headers["content-type"] == "application/vnd.pmtiles"
        # Past the end is cut to the end; the last N bytes; an open range.
        r = c.get(TILES, headers={"Range": f"bytes={len(data) - 10}-{len(data) + 50}"})
        assert r.status_code == 206 and r.content == data[-10:]
        r = c.get(TILES, headers={"Range": "bytes=-100"})
        assert r.status_code == 206 and r.content == data[-100:]
        r = c.get(TILES, headers={"Range": "bytes=100-"})
        assert r.status_code == 206 and r.content == data[100:]
        # A small archive may be read whole.
        r = c.get(TILES)
        assert r.status_code == 200 and r.content == data


def test_ranges_it_cannot_answer_are_416(mapped: Any, built_basemap: Path) -> None:
    size = (built_basemap / "city.pmtiles").stat().st_size
    with make_client(mapped) as c:
        for asked in (f"bytes={size}-{size + 10}", "bytes=0-10,20-30", "items=0-10", "bytes=10-5", "bytes=-0",
                      "bytes=-", "bytes=abc"):
            r = c.get(TILES, headers={"Range": asked})
            assert r.status_code == 416, asked
            assert r.headers["content-range"] == f"bytes */{size}"
            assert r.headers["content-type"] == "application/problem+json"


def test_a_range_over_the_limit_is_refused_and_an_open_one_is_cut(mapped: Any, built_basemap: Path) -> None:
    # Make the archive bigger than one range may be (its head stays a valid PMTiles header).
    path = mapped.settings.var_dir / "basemap" / "city.pmtiles"
    with path.open("ab") as f:
        f.write(b"\0" * (MAX_RANGE_BYTES + 1000))
    size = path.stat().st_size
    with make_client(mapped) as c:
        r = c.get(TILES, headers={"Range": f"bytes=0-{MAX_RANGE_BYTES}"})
        assert r.status_code == 400 and r.json()["code"] == "basemap.range_too_large"
        r = c.get(TILES, headers={"Range": "bytes=10-"})
        assert r.status_code == 206 and len(r.content) == MAX_RANGE_BYTES
        assert r.headers["content-range"] == f"bytes 10-{10 + MAX_RANGE_BYTES - 1}/{size}"
        r = c.get(TILES)  # too big to be read whole
        assert r.status_code == 400 and r.json()["code"] == "basemap.range_required"


def test_the_basemap_is_rate_limited_per_client_before_any_file_is_read(mapped: Any) -> None:
    with make_client(mapped, rate_limits={**mapped.settings.rate_limits, "basemap": parse_rule("3/minute")}) as c:
        for _ in range(3):
            assert c.get(TILES, headers={"Range": "bytes=0-127"}).status_code == 206
        r = c.get(STYLE)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert c.get(TILES, headers={"Range": "bytes=0-127"}).status_code == 429


def test_anyone_may_read_the_basemap_without_signing_in(mapped: Any) -> None:
    # The streets are public: no session, no API key, no cookie.
    with make_client(mapped) as c:
        assert c.get(STYLE).status_code == 200
        assert c.get(TILES, headers={"Range": "bytes=0-127"}).status_code == 206


def test_the_style_labels_in_the_reader_language(mapped: Any) -> None:
    with make_client(mapped) as c:
        zh = c.get(STYLE, params={"lang": "zh_CN"}).json()
        en = c.get(STYLE, headers={"Accept-Language": "en"}).json()
        assert c.get(STYLE, params={"lang": "fr"}).status_code == 400
    assert "glyphs" not in zh  # labels are drawn from the reader's own fonts
    source = zh["sources"]["city"]
    assert source["type"] == "vector" and source["url"].startswith("pmtiles:///api/v1/basemap/city.pmtiles?v=")
    assert "OpenStreetMap" in source["attribution"] and "ODbL" in source["attribution"]
    layers = {layer["id"]: layer for layer in zh["layers"]}
    for needed in ("water", "park", "building", "road-minor", "road-primary", "street-name", "place-major"):
        assert needed in layers, needed
    assert layers["street-name"]["source-layer"] == "transportation_name"
    assert layers["building"]["minzoom"] >= 14
    zh_label = layers["street-name"]["layout"]["text-field"]
    en_label = {layer["id"]: layer for layer in en["layers"]}["street-name"]["layout"]["text-field"]
    assert zh_label[1] == ["get", "name:zh"] and ["get", "name"] in zh_label
    assert en_label[1] == ["get", "name:en"] and ["get", "name"] in en_label
    assert zh["metadata"]["wecity:bounds"] == pytest.approx([26.93, 60.52, 26.97, 60.54], abs=1e-4)


def test_map_pages_name_the_basemap_and_allow_only_their_own_origin(mapped: Any) -> None:
    from tests.web.conftest import log_in

    with make_client(mapped) as c:
        r = c.get("/map", headers={"Accept-Language": "en"})
        assert 'data-basemap-style="/api/v1/basemap/style.json?lang=en"' in r.text
        assert '<script type="module" src="/static/js/basemap.js"' in r.text
        assert "/static/vendor/maplibre-gl-6.20.0/maplibre-gl.mjs" in r.text
        assert "OpenStreetMap contributors" in r.text and "data-tile-url" not in r.text
        csp = r.headers["content-security-policy"]
        assert "worker-src 'self'" in csp and "http" not in csp
        assert 'data-basemap-style="/api/v1/basemap/style.json?lang=zh_CN"' in c.get("/report").text
        log_in(c, "admin")
        assert "data-basemap-style" in c.get("/ops").text
        for path in ("/static/vendor/maplibre-gl-6.20.0/maplibre-gl.mjs",
                     "/static/vendor/maplibre-gl-6.20.0/maplibre-gl-worker.mjs", "/static/js/basemap.js"):
            assert "javascript" in c.get(path).headers["content-type"], path
