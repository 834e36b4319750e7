"""`wecity city import-basemap`: tilemaker on a real OpenStreetMap extract, tiles kept as one PMTiles file."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from tests.geo.conftest import EXTRACT, TRANSLATED_NAMES, TRANSLATED_STREET, need_tilemaker
from wecity.core.errors import DependencyUnavailable, ValidationFailed
from wecity.geo.basemap import ATTRIBUTION, import_basemap, load_basemap


def tile_at(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2 ** z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def read_tile(pmtiles: Path, z: int, x: int, y: int) -> dict:
    import mapbox_vector_tile
    from pmtiles.reader import MmapSource, Reader

    with pmtiles.open("rb") as f:
        data = Reader(MmapSource(f)).get(z, x, y)
    assert data, f"no tile {z}/{x}/{y}"
    return mapbox_vector_tile.decode(gzip.decompress(data))


def test_import_writes_one_pmtiles_file_and_its_metadata(built_basemap: Path) -> None:
    meta = json.loads((built_basemap / "basemap.json").read_text(encoding="utf-8"))
    assert meta["tiles"] == "city.pmtiles" and meta["attribution"] == ATTRIBUTION
    # The extract's own header box (its nodes lie at 60.52-60.54 N, 26.93-26.97 E).
    assert meta["bounds"] == pytest.approx([26.93, 60.52, 26.97, 60.54], abs=1e-4)
    assert meta["center"] == pytest.approx([26.95, 60.53], abs=1e-4)
    assert (meta["minzoom"], meta["maxzoom"]) == (0, 14)
    assert {"transportation", "transportation_name", "building", "landuse", "place"} <= set(meta["layers"])
    assert meta["bytes"] == (built_basemap / "city.pmtiles").stat().st_size > 10_000
    assert not [p for p in built_basemap.iterdir() if p.name.startswith(".import-")]  # no work left behind


def test_a_street_level_tile_carries_real_street_names(built_basemap: Path) -> None:
    tile = read_tile(built_basemap / "city.pmtiles", *tile_at(26.95, 60.53, 14))
    assert {"transportation", "transportation_name", "building"} <= set(tile)
    names = {f["properties"].get("name") for f in tile["transportation_name"]["features"]}
    # Streets of the extract (OSM `name`), as the portal's labels read them.
    assert {"Hiidenkirnuntie", "Suurniitynkatu", "Hillerinkatu"} <= names
    classes = {f["properties"]["class"] for f in tile["transportation"]["features"]}
    assert {"minor", "tertiary"} & classes
    # A street with names in the portal's languages carries them beside its own.
    translated = [f["properties"] for f in tile["transportation_name"]["features"]
                  if f["properties"].get("name") == TRANSLATED_STREET]
    assert translated and all(p["name:zh"] == TRANSLATED_NAMES["name:zh"] for p in translated)
    assert all(p["name:en"] == TRANSLATED_NAMES["name:en"] for p in translated)
    assert not any("name:zh" in f["properties"] for f in tile["transportation_name"]["features"]
                   if f["properties"].get("name") != TRANSLATED_STREET)


def test_reimport_replaces_the_map_whole(tmp_path: Path) -> None:
    need_tilemaker()
    out = tmp_path / "basemap"
    first = import_basemap(EXTRACT, out, say=lambda _: None)
    second = import_basemap(EXTRACT, out, say=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["basemap.json", "city.pmtiles"]
    assert second["tile_count"] == first["tile_count"]
    loaded = load_basemap(tmp_path)
    assert loaded is not None and loaded.size == second["bytes"] and loaded.maxzoom == 14


def test_no_basemap_is_none(tmp_path: Path) -> None:
    assert load_basemap(tmp_path) is None
    (tmp_path / "basemap").mkdir()
    (tmp_path / "basemap" / "basemap.json").write_text('{"tiles": "city.pmtiles"}', encoding="utf-8")
    assert load_basemap(tmp_path) is None  # metadata without its tiles


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as err:
        import_basemap(tmp_path / "nowhere.osm.pbf", tmp_path / "out")
    assert err.value.code == "basemap.no_file" and "no such file" in err.value.message
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_pbf_is_refused(tmp_path: Path) -> None:
    for name, content in (("city.osm", b"<?xml version='1.0'?><osm version='0.6'></osm>"),
                          ("empty.osm.pbf", b""), ("zip.osm.pbf", b"PK\x03\x04" + b"\0" * 64)):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValidationFailed) as err:
            import_basemap(path, tmp_path / "out")
        assert err.value.code == "basemap.not_pbf", name
        assert "not an OpenStreetMap PBF extract" in err.value.message


def test_tilemaker_missing_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(DependencyUnavailable) as err:
        import_basemap(EXTRACT, tmp_path / "out", tilemaker="no-such-tilemaker")
    assert err.value.code == "basemap.no_tilemaker" and "apt-get install tilemaker" in err.value.message


def test_tilemaker_profile_missing_is_refused(tmp_path: Path) -> None:
    need_tilemaker()
    with pytest.raises(DependencyUnavailable) as err:
        import_basemap(EXTRACT, tmp_path / "out", examples=tmp_path)
    assert err.value.code == "basemap.no_tilemaker" and "config-openmaptiles.json" in err.value.message


def test_the_command_imports_into_the_var_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    need_tilemaker()
    from wecity.cli import main

    monkeypatch.setenv("WECITY_VAR_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["city", "import-basemap", str(EXTRACT)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "basemap" / "city.pmtiles") in out and ATTRIBUTION in out
    assert load_basemap(tmp_path) is not None
    # The same command builds the address search from the same extract: a street the map draws is found.
    from wecity.geo.gazetteer import Gazetteer

    assert str(tmp_path / "gazetteer.sqlite") in out
    found = Gazetteer(tmp_path / "gazetteer.sqlite").search("Hiidenkirnun")
    assert found and found[0].name == "Hiidenkirnuntie"
    assert main(["city", "import-basemap", str(tmp_path / "missing.osm.pbf")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_cut_extract_is_completed_and_its_extent_read_from_its_nodes(tmp_path: Path) -> None:
    import osmium

    from wecity.geo.basemap import complete_extract, extract_bounds

    complete = tmp_path / "complete.osm.pbf"
    complete_extract(EXTRACT, complete)
    nodes: set[int] = set()
    ways = dangling = 0
    for obj in osmium.FileProcessor(str(complete)):
        if isinstance(obj, osmium.osm.Node):
            nodes.add(obj.id)
        elif isinstance(obj, osmium.osm.Way):
            ways += 1
            dangling += sum(1 for n in obj.nodes if n.ref not in nodes)
    assert ways > 2000 and dangling == 0
    # The copy has no header box, so its extent comes from its nodes: inside the original's box.
    west, south, east, north = extract_bounds(complete)
    assert 26.93 <= west < east <= 26.97 and 60.52 <= south < north <= 60.54
