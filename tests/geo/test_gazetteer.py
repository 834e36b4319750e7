"""The gazetteer built from real OpenStreetMap data: a street found by a piece of its name, a point on a street
geocoded back to it, Chinese names found by substring and by a two-character prefix."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import shapely

from wecity.cli import main
from wecity.geo.gazetteer import Gazetteer, build_gazetteer

from .tiny_osm import write_changsha_osm

FIXTURE = Path(__file__).parents[1] / "fixtures" / "osm" / "helsinki-test.osm.pbf"


@pytest.fixture(scope="module")
def finnish(tmp_path_factory: pytest.TempPathFactory) -> Gazetteer:
    out = tmp_path_factory.mktemp("gazetteer") / "gazetteer.sqlite"
    stats = build_gazetteer(FIXTURE, out)
    # What the extract holds (counted independently with osmium: 96 distinct names on highway ways, one of
    # them a bus platform; 11 named amenities and shops; 6 named places; 4 bare house numbers).
    assert (stats.roads, stats.pois, stats.places, stats.addresses) == (95, 11, 6, 4)
    return Gazetteer(out)


def _named_roads() -> dict[str, list[list[tuple[float, float]]]]:
    """Every named road's lines, read straight from the extract: the reference the gazetteer is checked against."""
    import osmium

    roads: dict[str, list[list[tuple[float, float]]]] = {}
    for way in osmium.FileProcessor(str(FIXTURE)).with_locations():
        if way.is_way() and "highway" in way.tags and "name" in way.tags and way.tags["highway"] != "platform":
            roads.setdefault(way.tags["name"], []).append([(n.lon, n.lat) for n in way.nodes if n.location.valid()])
    return roads


def test_a_street_is_found_by_a_piece_of_its_name(finnish: Gazetteer) -> None:
    found = finnish.search("kirnun")
    assert [f.name for f in found] == ["Hiidenkirnuntie"]
    assert found[0].kind == "road"
    # Any case; the exact name comes before names that only contain it.
    assert finnish.search("TIKANKATU")[0].name == "Tikankatu"
    assert [(f.kind, f.name) for f in finnish.search("Suurniit")][:2] == [("place", "Suurniitty"),
                                                                          ("road", "Suurniitynkatu")]
    # An address's street finds the POI that has it.
    assert "Teboil Karhula Tikankatu" in [f.name for f in finnish.search("Tikankatu 11")]
    assert finnish.search("no such street") == []


def test_one_or_two_characters_match_the_start_of_a_name(finnish: Gazetteer) -> None:
    names = [f.name for f in finnish.search("Ti", limit=20)]
    assert "Tikankatu" in names and "Tapiontie" not in names
    assert all(n.lower().startswith("ti") for n in names)
    assert finnish.search("k", limit=3) and len(finnish.search("k", limit=3)) == 3


def test_a_point_beside_a_street_is_geocoded_to_that_street(finnish: Gazetteer) -> None:
    roads = _named_roads()
    line = max(roads["Hiidenkirnuntie"], key=len)
    (x1, y1), (x2, y2) = line[len(line) // 2 - 1], line[len(line) // 2]
    lon, lat = (x1 + x2) / 2, (y1 + y2) / 2 + 8 / 110_574  # 8 m north of the middle of a segment
    found = finnish.nearest_road(lat, lon, 150)
    assert found is not None
    road, distance = found
    # The reference: the nearest of every named way, measured with shapely on a local metric plane.
    kx = 111_320 * math.cos(math.radians(lat))

    def metres(points: list[tuple[float, float]]) -> float:
        return float(shapely.LineString([((x - lon) * kx, (y - lat) * 110_574) for x, y in points])
                     .distance(shapely.Point(0, 0)))

    nearest = min(((name, metres(ln)) for name, lines in roads.items() for ln in lines if len(ln) >= 2),
                  key=lambda t: t[1])
    assert road.name == nearest[0] == "Hiidenkirnuntie"
    assert distance == pytest.approx(nearest[1], abs=0.5) and distance <= 8.5
    # Far from every road: nothing within the radius.
    assert finnish.nearest_road(lat + 0.5, lon, 150) is None


def test_chinese_names_by_substring_and_by_prefix(tmp_path: Path) -> None:
    out = tmp_path / "g.sqlite"
    stats = build_gazetteer(write_changsha_osm(tmp_path / "changsha.osm.pbf"), out)
    assert (stats.roads, stats.places, stats.pois) == (4, 1, 1)
    g = Gazetteer(out)
    assert [f.name for f in g.search("民东路")] == ["人民东路"]  # three characters: the trigram index
    assert [f.name for f in g.search("五一")] == ["五一广场", "五一大道"]  # two: a prefix; the place first
    assert [f.name for f in g.search("大道")] == []  # two characters inside a name are not searched
    assert g.search("Renmin")[0].name_zh == "人民东路"
    assert g.search("营盘路")[0].name == "长沙市第一医院"  # by its address
    road, _ = g.nearest_road(28.1903, 113.0050, 100) or (None, 0)
    assert road is not None and road.label("en") == "Renmin East Road" and road.label("zh_CN") == "人民东路"


def test_the_command_builds_the_file_and_a_reader_sees_a_new_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gazetteer.sqlite"
    write_changsha_osm(tmp_path / "changsha.osm.pbf")
    assert main(["city", "import-gazetteer", str(tmp_path / "changsha.osm.pbf"), "--out", str(out)]) == 0
    assert "4 roads" in capsys.readouterr().out
    reader = Gazetteer(out)
    assert reader.search("人民东路") and not reader.search("Hiidenkirnuntie")
    assert main(["city", "import-gazetteer", str(FIXTURE), "--out", str(out)]) == 0
    assert reader.search("Hiidenkirnuntie") and not reader.search("人民东路")  # replaced whole, read anew
    (tmp_path / "bad.osm.pbf").write_bytes(b"not osm")
    assert main(["city", "import-gazetteer", str(tmp_path / "bad.osm.pbf"), "--out", str(out)]) == 2
    assert reader.search("Hiidenkirnuntie")  # a failed build leaves the last one in place
    assert not list(tmp_path.glob("*.partial"))


def test_a_search_matching_many_features_ranks_a_bounded_set(finnish: Gazetteer, monkeypatch: pytest.MonkeyPatch) -> None:
    """A word in nearly every name ranks the first MATCHED matches, not all of them; what is found still
    contains the word, best first."""
    from wecity.geo import gazetteer

    every = finnish.search("tie", limit=50)
    assert len(every) > 5
    monkeypatch.setattr(gazetteer, "MATCHED", 5)
    bounded = finnish.search("tie", limit=50)
    assert 0 < len(bounded) <= 5 and all("tie" in f"{f.name} {f.address}".lower() for f in bounded)
    assert [f.name for f in finnish.search("kirnun")] == ["Hiidenkirnuntie"]


def test_a_road_is_found_first_though_thousands_of_addresses_name_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3

    from wecity.geo import gazetteer

    monkeypatch.setattr(gazetteer, "MATCHED", 50)
    path = tmp_path / "g.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(gazetteer.SCHEMA)
    writer = gazetteer._Writer(conn)
    for n in range(300):  # written before the road, as an extract's addresses are
        writer.feature("address", f"{n}号", None, None, None, f"人民东路{n}号, 410000 长沙市", 113.0, 28.2, f"n{n}")
    writer.feature("road", "人民东路", "人民东路", "Renmin East Road", "highway=primary", None, 113.0, 28.2, "w1")
    conn.execute("INSERT INTO features_fts(features_fts) VALUES ('rebuild')")
    conn.execute("INSERT INTO meta VALUES ('format', ?)", (gazetteer.FORMAT,))
    conn.commit()
    conn.close()
    found = Gazetteer(path).search("人民东路", limit=3)
    assert (found[0].kind, found[0].name) == ("road", "人民东路")
    assert Gazetteer(path).search("民东路", limit=3)  # inside a name: the trigram index still answers
