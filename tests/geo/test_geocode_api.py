"""Address search and reverse geocoding on the API: public and rate-limited, errors as problem+json, a 街道 of
the demo city answering its district without any extract, a road's district and the nearest road of a point."""

from __future__ import annotations

from wecity.core.limits import parse_rule
from wecity.geo.gazetteer import build_gazetteer

from ..conftest import City, make_client
from .tiny_osm import write_changsha_osm


def test_a_subdistrict_resolves_to_its_district_without_an_extract(city: City) -> None:
    with make_client(city) as client:  # no credentials: the search is public
        body = client.get("/api/v1/geo/search", params={"q": "梅溪湖"}).json()
        assert body["gazetteer"] is False
        first = body["results"][0]
        assert (first["name"], first["kind"], first["approximate"]) == ("梅溪湖街道", "subdistrict", True)
        assert first["district"]["name_zh"] == "岳麓区" and first["district"]["code"] == "430104"
        # The district's point is inside the district.
        located = client.get("/api/v1/areas/locate", params={"lat": first["lat"], "long": first["long"]}).json()
        assert located["area"]["name_zh"] == "岳麓区"
        # A district by name, in either language; a two-character 街道 name as typed.
        assert client.get("/api/v1/geo/search", params={"q": "Yuelu"}).json()["results"][0]["name_zh"] == "岳麓区"
        found = client.get("/api/v1/geo/search", params={"q": "火星"}).json()["results"]
        assert [(r["name"], r["district"]["name_zh"]) for r in found] == [("火星街道", "芙蓉区")]
        # Another city's streets are not this city's.
        assert client.get("/api/v1/geo/search", params={"q": "华强北"}).json()["results"] == []
        # Without an extract a point has its district but no road.
        reverse = client.get("/api/v1/geo/reverse", params={"lat": 28.1960, "long": 112.9770}).json()
        assert reverse["road"] is None and reverse["district"]["name_zh"] == "芙蓉区"


def test_roads_answer_their_district_and_a_point_its_nearest_road(city: City) -> None:
    build_gazetteer(write_changsha_osm(city.settings.var_dir / "changsha.osm.pbf"),
                    city.settings.var_dir / "gazetteer.sqlite")
    with make_client(city) as client:
        body = client.get("/api/v1/geo/search", params={"q": "人民东", "limit": 5}).json()
        assert body["gazetteer"] is True
        road = body["results"][0]
        assert (road["name"], road["kind"], road["district"]["name_zh"]) == ("人民东路", "road", "芙蓉区")
        assert client.get("/api/v1/geo/search", params={"q": "岳麓大道"}).json()["results"][0]["district"][
            "name_en"] == "Yuelu District"
        near = client.get("/api/v1/geo/reverse", params={"lat": 28.1903, "long": 113.0050}).json()
        assert near["road"]["name"] == "人民东路" and near["road"]["name_en"] == "Renmin East Road"
        assert near["road"]["distance_m"] < 40 and near["district"]["name_zh"] == "芙蓉区"
        # The same point in GCJ-02 (as Chinese map apps give it) is the same road.
        from wecity.geo.coords import from_wgs84

        glat, glon = from_wgs84(28.1903, 113.0050, "gcj02")
        gcj = client.get("/api/v1/geo/reverse", params={"lat": glat, "long": glon, "coord_system": "gcj02"}).json()
        assert gcj["road"]["name"] == "人民东路"
        # Beyond the radius there is no road to name.
        far = client.get("/api/v1/geo/reverse", params={"lat": 28.1903 + 0.003, "long": 113.0050, "radius": 100})
        assert far.json()["road"] is None


def test_bad_queries_are_refused_in_the_api_error_format(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        for params in ({"q": "x" * 101}, {"q": ""}, {}, {"q": "路\x00"}, {"q": "路", "limit": 0}, {"q": "路", "limit": 21}):
            response = client.get("/api/v1/geo/search", params=params)
            assert response.status_code in (400, 422), params
            assert response.headers["content-type"].startswith("application/problem+json")
        for params in ({"lat": 91, "long": 0}, {"lat": 28.2}, {"lat": 28.2, "long": 113, "radius": 501}):
            response = client.get("/api/v1/geo/reverse", params=params)
            assert response.status_code in (400, 422), params
            assert response.headers["content-type"].startswith("application/problem+json")


def test_search_and_reverse_share_one_rate_limit_per_address(sqlite_city: City) -> None:
    limits = {**sqlite_city.settings.rate_limits, "geo_search": parse_rule("3/minute")}
    with make_client(sqlite_city, rate_limits=limits) as client:
        assert client.get("/api/v1/geo/search", params={"q": "岳麓"}).status_code == 200
        assert client.get("/api/v1/geo/reverse", params={"lat": 28.2, "long": 112.95}).status_code == 200
        assert client.get("/api/v1/geo/search", params={"q": "岳麓"}).status_code == 200
        refused = client.get("/api/v1/geo/reverse", params={"lat": 28.2, "long": 112.95})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert client.get("/api/v1/geo/search", params={"q": "岳麓"}).status_code == 429


def test_search_and_reverse_read_the_gazetteer_off_the_event_loop(sqlite_city: City, monkeypatch: object) -> None:
    """A search reads a file and ranks its matches: it must not stop the process serving other requests."""
    import asyncio

    import pytest

    from wecity.geo import geocode

    on_loop: list[bool] = []

    def running_loop() -> bool:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return False
        return True

    search, reverse = geocode.search, geocode.reverse
    patch = pytest.MonkeyPatch()
    patch.setattr(geocode, "search", lambda *a, **k: on_loop.append(running_loop()) or search(*a, **k))
    patch.setattr(geocode, "reverse", lambda *a, **k: on_loop.append(running_loop()) or reverse(*a, **k))
    try:
        with make_client(sqlite_city) as client:
            assert client.get("/api/v1/geo/search", params={"q": "岳麓"}).status_code == 200
            assert client.get("/api/v1/geo/reverse", params={"lat": 28.1960, "long": 112.9770}).status_code == 200
    finally:
        patch.undo()
    assert on_loop == [False, False]
