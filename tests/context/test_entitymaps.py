"""EntityMaps: asked for with entityMap=true, referred to by the NGSILD-EntityMap header, retrieved and
deleted under /entityMaps."""

from __future__ import annotations

from typing import Any

from tests.conftest import City
from tests.context.conftest import BASE, entity, prop


def test_entity_map_lifecycle(city: City, ngsi: Any) -> None:
    for i in (1, 2):
        assert ngsi.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{i}", depth=prop(i))).status_code == 201
    assert "ngsild-entitymap" not in ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").headers

    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1", params={"entityMap": "true"})
    assert r.status_code == 200 and "entityMap" not in r.json()
    where = r.headers["ngsild-entitymap"]
    assert where.startswith(f"{BASE}/entityMaps/urn:ngsi-ld:entitymap:")
    got = ngsi.get(where)
    assert got.status_code == 200
    assert got.json()["type"] == "EntityMap" and got.json()["entityMap"] == {"urn:ngsi-ld:Manhole:1": ["@none"]}

    # a live map fixes the entities a query referring to it answers with; its location is echoed
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"NGSILD-EntityMap": where})
    assert r.status_code == 200 and r.headers["ngsild-entitymap"] == where
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Manhole:1"]
    # a retrieval referring to it adds the entity it named
    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:2", headers={"NGSILD-EntityMap": where})
    assert r.headers["ngsild-entitymap"] == where
    assert set(ngsi.get(where).json()["entityMap"]) == {"urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2"}

    # an unknown or expired reference gets a new map, never an error
    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:2",
                 headers={"NGSILD-EntityMap": "urn:ngsi-ld:entitymap:gone"})
    assert r.status_code == 200 and "gone" not in r.headers["ngsild-entitymap"]
    city.clock.advance(hours=2)
    assert ngsi.get(where).status_code == 404
    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:2", headers={"NGSILD-EntityMap": where})
    fresh = r.headers["ngsild-entitymap"]
    assert fresh != where

    assert ngsi.delete(fresh).status_code == 204
    assert ngsi.get(fresh).status_code == 404
    assert ngsi.delete(fresh).status_code == 404


def test_a_map_made_for_a_query_holds_every_match_and_pages_over_them(city: City, ngsi: Any) -> None:
    for i in range(5):
        assert ngsi.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{i}", depth=prop(i * 10))).status_code == 201
    r = ngsi.get(f"{BASE}/entityMaps", params={"type": "Manhole", "q": "depth>=20"})
    assert r.status_code == 201 and r.json()["type"] == "EntityMap"
    assert list(r.json()["entityMap"]) == [f"urn:ngsi-ld:Manhole:{i}" for i in (2, 3, 4)]
    assert r.headers["ngsild-entitymap"].endswith(r.json()["id"])
    assert ngsi.get(f"{BASE}/entityMaps", params={"id": "urn:ngsi-ld:Manhole:1"}).status_code == 400  # too wide
    assert ngsi.get(f"{BASE}/entityMaps", params={"type": "Manhole", "entityMapLifetime": "1hour"}).status_code == 400

    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "entityMap": "true", "limit": 2})
    assert r.status_code == 201 and len(r.json()) == 2
    where = r.headers["ngsild-entitymap"]
    assert len(ngsi.get(where).json()["entityMap"]) == 5
    assert ngsi.delete(f"{BASE}/entities/urn:ngsi-ld:Manhole:0").status_code == 204
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "limit": 3, "count": "true"},
                 headers={"NGSILD-EntityMap": where})
    assert r.status_code == 200 and len(r.json()) == 3 and r.headers["ngsild-results-count"] == "4"
    assert "urn:ngsi-ld:Manhole:0" not in ngsi.get(where).json()["entityMap"]


def test_a_maps_expiry_can_be_moved_within_bounds(city: City, ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:1", depth=prop(1))).status_code == 201
    where = ngsi.get(f"{BASE}/entityMaps", params={"type": "Manhole"}).headers["ngsild-entitymap"]
    r = ngsi.patch(where, json={"expiresAt": "2099-01-01T00:00:00Z", "entityMap": {"urn:x:injected": ["@none"]}})
    assert r.status_code == 204
    got = ngsi.get(where).json()
    assert got["expiresAt"] < "2099" and list(got["entityMap"]) == ["urn:ngsi-ld:Manhole:1"]
    assert ngsi.patch(where, json={"expiresAt": "tomorrow"}).status_code == 400
    assert ngsi.patch(where, json={"expiresAt": "2000-01-01T00:00:00Z"}).status_code == 204
    assert ngsi.get(where).status_code == 404
    assert ngsi.get(f"{BASE}/entityMaps/not%20a%20uri").status_code == 400


def test_a_temporal_map_selects_by_the_time_property_asked_for(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:old-readings"
    readings = [{"type": "Property", "value": v, "observedAt": f"2020-01-0{v}T00:00:00Z"} for v in (1, 2)]
    assert ngsi.post(f"{BASE}/temporal/entities", json={"id": e, "type": "Vehicle", "speed": readings}).status_code == 201

    def mapped(**params: str) -> list[str]:
        r = ngsi.get(f"{BASE}/temporal/entityMaps", params={"type": "Vehicle", **params})
        assert r.status_code == 201, r.text
        return list(r.json()["entityMap"])

    assert mapped(timerel="after", timeAt="2021-01-01T00:00:00Z") == []  # observedAt: 2020
    assert mapped(timerel="after", timeAt="2021-01-01T00:00:00Z", timeproperty="createdAt") == [e]  # stored now
    assert mapped(timerel="before", timeAt="2021-01-01T00:00:00Z", timeproperty="createdAt") == []
    r = ngsi.get(f"{BASE}/temporal/entityMaps", params={"type": "Vehicle", "timerel": "after",
                                                         "timeAt": "2021-01-01T00:00:00Z", "timeproperty": "when"})
    assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")
