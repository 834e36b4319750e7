"""Point-in-area: known points land in the right district, on the API, the CLI and the index."""

import random
from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.cli import main
from wecity.demo.changsha import boundaries
from wecity.geo.coords import from_wgs84, gcj02_to_wgs84
from wecity.geo.models import areas
from wecity.geo.service import import_areas, load_area_index

from ..conftest import SEED_TIME, City, make_client

DATA = Path(__file__).parents[2] / "src" / "wecity" / "demo" / "data"

CHANGSHA = [
    ((28.1960, 112.9770), "芙蓉区"),   # 五一广场
    ((28.1870, 112.9370), "岳麓区"),   # 岳麓山
    ((28.1890, 113.2150), "长沙县"),   # 黄花机场
]


@pytest.mark.parametrize(("point", "district"), CHANGSHA)
@pytest.mark.parametrize("system", ["wgs84", "gcj02", "bd09"])
def test_known_changsha_points_in_every_coordinate_system(city: City, point: tuple[float, float],
                                                          district: str, system: str) -> None:
    lat, lon = from_wgs84(*point, system)
    with make_client(city) as client:
        body = client.get("/api/v1/areas/locate", params={"lat": lat, "long": lon, "coord_system": system}).json()
    assert body["inside"] is True
    assert body["area"]["name_zh"] == district


def test_outside_the_city_is_an_answer_not_an_error(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = client.get("/api/v1/areas/locate", params={"lat": 39.9042, "long": 116.4074})
    assert response.status_code == 200
    assert response.json()["inside"] is False and response.json()["area"] is None


def test_bad_coordinates_are_a_clear_400(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = client.get("/api/v1/areas/locate", params={"lat": 128, "long": "east"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "lat" in response.json()["title"] and "long" in response.json()["title"]


def test_converting_gcj02_changes_the_answer_near_borders(sqlite_city: City) -> None:
    """Points whose raw GCJ-02 value falls in another district are answered by their true position."""
    index = sqlite_city.db.read_sync(load_area_index)
    rng = random.Random(3)
    differing = []
    while len(differing) < 5:
        glat, glon = rng.uniform(27.9, 28.5), rng.uniform(112.6, 113.4)
        true_area = index.locate(*gcj02_to_wgs84(glat, glon))
        naive_area = index.locate(glat, glon)
        if true_area and naive_area and true_area.id != naive_area.id:
            differing.append((glat, glon, true_area.name_zh))
    with make_client(sqlite_city) as client:
        for glat, glon, name in differing:
            body = client.get("/api/v1/areas/locate",
                              params={"lat": glat, "long": glon, "coord_system": "gcj02"}).json()
            assert body["area"]["name_zh"] == name


def test_grid_index_agrees_with_the_strtree_on_random_points(sqlite_city: City) -> None:
    index = sqlite_city.db.read_sync(load_area_index)
    rng = random.Random(11)
    for _ in range(20_000):
        lat, lon = rng.uniform(27.8, 28.7), rng.uniform(111.8, 114.3)
        assert index.locate(lat, lon) == index.locate_exact(lat, lon)


OTHER_CITIES = {
    "guangzhou": [((23.1395, 113.2655), "越秀区"), ((22.9986, 113.3200), "番禺区"),
                  ((23.5486, 113.5868), "从化区"), ((23.1378, 113.3244), "天河区")],
    "shenzhen": [((22.6094, 114.0293), "龙华区"), ((22.5367, 113.9735), "南山区"),
                 ((22.5950, 114.3060), "盐田区"), ((22.6393, 113.8107), "宝安区")],
}


@pytest.mark.parametrize("name", sorted(OTHER_CITIES))
def test_cli_imports_another_city_and_locates_its_points(sqlite_city: City, name: str, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    assert main(["city", "import-areas", str(DATA / f"{name}-districts.gcj02.geojson"), "--crs", "gcj02"]) == 0
    for (lat, lon), district in OTHER_CITIES[name]:
        capsys.readouterr()
        assert main(["city", "locate", str(lat), str(lon)]) == 0
        assert district in capsys.readouterr().out
    # The file is the new map: Changsha's districts are gone.
    assert main(["city", "locate", "28.1960", "112.9770"]) == 1
    assert "outside the city" in capsys.readouterr().out


def test_import_refuses_a_feature_without_a_name(sqlite_city: City) -> None:
    from wecity.core.errors import ValidationFailed

    features = boundaries()[:2]
    features[1] = {**features[1], "properties": {}}
    with pytest.raises(ValidationFailed):
        sqlite_city.db.write_sync(lambda c: import_areas(c, features, coord_system="gcj02", now=SEED_TIME))
    # Nothing half-written: the transaction rolled back, all 9 districts are still there.
    assert len(sqlite_city.db.read_sync(load_area_index)) == 9


def test_the_index_is_built_again_when_only_an_areas_geometry_changes(city: City) -> None:
    index = city.db.read_sync(load_area_index)
    assert city.db.read_sync(load_area_index) is index  # unchanged areas: the index already built
    assert index.locate(28.1960, 112.9770).name_zh == "芙蓉区"
    furong = next(f for f in boundaries() if f["properties"]["name"] == "芙蓉区")
    square = {"type": "Polygon", "coordinates": [[[116.3, 39.8], [116.5, 39.8], [116.5, 40.0], [116.3, 40.0],
                                                  [116.3, 39.8]]]}
    # The same names and import time as stored: only the geometry says that the map changed.
    imported_at = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.max(areas.c.imported_at))).scalar_one())
    moved_furong = {**furong, "properties": {**furong["properties"], "name_en": "Furong District"}, "geometry": square}
    city.db.write_sync(lambda c: import_areas(c, [moved_furong], coord_system="wgs84", now=imported_at, replace=False))
    moved = city.db.read_sync(load_area_index)
    assert moved.locate(39.9042, 116.4074).name_zh == "芙蓉区"
    assert moved.locate(28.1960, 112.9770) is None


def test_areas_are_served_as_geojson_in_wgs84(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        collection = client.get("/api/v1/areas").json()
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 9
    names = {f["properties"]["name_zh"] for f in collection["features"]}
    assert {"芙蓉区", "岳麓区", "长沙县"} <= names
    lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0][0]
    assert 111 < lon < 115 and 27 < lat < 29.5


def test_areas_imported_while_the_server_runs_are_used_for_the_next_reports(city: City) -> None:
    """The running server locates reports with the areas as stored (within the cache's seconds), not as
    they were at its start."""
    from wecity.core import cache

    beijing = {"type": "Feature", "properties": {"name": "东城区", "name_en": "Dongcheng", "adcode": "110101"},
               "geometry": {"type": "Polygon", "coordinates": [[[116.3, 39.8], [116.5, 39.8], [116.5, 40.0],
                                                                [116.3, 40.0], [116.3, 39.8]]]}}
    with make_client(city) as client:
        data = {"api_key": city.api_key, "service_code": "noise", "lat": 39.9042, "long": 116.4074}
        assert client.post("/open311/v2/requests.json", data=data).status_code == 400  # outside the city
        city.db.write_sync(lambda c: import_areas(c, [beijing], coord_system="wgs84", now=SEED_TIME, replace=False))
        city.db.read_sync(lambda c: cache.invalidate(c, "area index"))  # what the cache's lifetime does in seconds
        taken = client.post("/open311/v2/requests.json", data=data)
        assert taken.status_code == 200, taken.text
        case = client.get(f"/open311/v2/requests/{taken.json()[0]['service_request_id']}.json").json()[0]
        assert case["lat"] == pytest.approx(39.9042, abs=0.01)
