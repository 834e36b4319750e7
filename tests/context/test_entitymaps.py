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
