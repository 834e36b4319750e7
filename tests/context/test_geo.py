"""Geo-queries: near with max/min distance, within, intersects, contains, and their errors."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, point

# Around 五一广场, Changsha (WGS-84).
CENTRE = (112.9770, 28.1960)


def _seed(ngsi: Any) -> None:
    items = [entity(f"urn:ngsi-ld:Manhole:{i}", location=point(CENTRE[0] + i * 0.001, CENTRE[1])) for i in range(5)]
    items.append({"id": "urn:ngsi-ld:Park:1", "type": "Park", "location": {"type": "GeoProperty", "value": {
        "type": "Polygon", "coordinates": [[[112.970, 28.190], [112.975, 28.190], [112.975, 28.195],
                                            [112.970, 28.195], [112.970, 28.190]]]}}})
    assert ngsi.post(f"{BASE}/entityOperations/create", json=items).status_code == 201


def _ids(ngsi: Any, **params: Any) -> list[str]:
    r = ngsi.get(f"{BASE}/entities", params=params)
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


def test_near_max_and_min_distance(ngsi: Any) -> None:
    _seed(ngsi)
    coords = f"[{CENTRE[0]},{CENTRE[1]}]"
    # 0.001° of longitude at 28.2°N is about 98 m.
    assert _ids(ngsi, type="Manhole", georel="near;maxDistance==150", geometry="Point", coordinates=coords) == [
        "urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:1"]
    assert _ids(ngsi, type="Manhole", georel="near;minDistance==250", geometry="Point", coordinates=coords) == [
        "urn:ngsi-ld:Manhole:3", "urn:ngsi-ld:Manhole:4"]


def test_within_intersects_contains(ngsi: Any) -> None:
    _seed(ngsi)
    box = "[[[112.9765,28.195],[112.9795,28.195],[112.9795,28.197],[112.9765,28.197],[112.9765,28.195]]]"
    assert _ids(ngsi, type="Manhole", georel="within", geometry="Polygon", coordinates=box) == [
        "urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2"]
    line = "[[112.972,28.180],[112.972,28.200]]"
    assert _ids(ngsi, georel="intersects", geometry="LineString", coordinates=line) == ["urn:ngsi-ld:Park:1"]
    assert _ids(ngsi, georel="contains", geometry="Point", coordinates="[112.972,28.192]") == ["urn:ngsi-ld:Park:1"]
    assert _ids(ngsi, type="Park", georel="near;maxDistance==10", geometry="Point",
                coordinates="[112.9725,28.1925]") == ["urn:ngsi-ld:Park:1"]


def test_geo_query_errors(ngsi: Any) -> None:
    for params in ({"georel": "near", "geometry": "Point", "coordinates": "[112,28]"},
                   {"georel": "near;maxDistance==x", "geometry": "Point", "coordinates": "[112,28]"},
                   {"georel": "around", "geometry": "Point", "coordinates": "[112,28]"},
                   {"georel": "within", "geometry": "Circle", "coordinates": "[112,28]"},
                   {"georel": "within", "geometry": "Polygon", "coordinates": "[1,2"},
                   {"georel": "within", "geometry": "Point", "coordinates": "[500,28]"},
                   {"georel": "within", "geometry": "Polygon"}):
        r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", **params})
        assert r.status_code == 400, params
        assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def test_near_beyond_the_size_of_the_earth_matches_everything(ngsi: Any) -> None:
    # A box that large used to overflow the grid-cell count (answered as 404), or the float range at a pole.
    _seed(ngsi)
    everything = sorted([f"urn:ngsi-ld:Manhole:{i}" for i in range(5)] + ["urn:ngsi-ld:Park:1"])
    for distance in ("1e308", "1e15", "40075017"):
        for where in ("Point", "Polygon"):
            coords = (f"[{CENTRE[0]},{CENTRE[1]}]" if where == "Point" else
                      f"[[[{CENTRE[0]},{CENTRE[1]}],[{CENTRE[0] + 0.01},{CENTRE[1]}],[{CENTRE[0]},{CENTRE[1] + 0.01}],"
                      f"[{CENTRE[0]},{CENTRE[1]}]]]")
            assert _ids(ngsi, georel=f"near;maxDistance=={distance}", geometry=where, coordinates=coords,
                        type="Manhole,Park") == everything, (distance, where)
    assert _ids(ngsi, georel="near;maxDistance==1e308", geometry="Point", coordinates="[0,90]", type="Manhole,Park") \
        == everything
