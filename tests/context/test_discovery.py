"""Discovery (clauses 5.7.5-5.7.10): the entity types and attributes of the tenant's entities, as lists
and in detail."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, prop

DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"


def _setup(ngsi: Any) -> None:
    for body in (entity("urn:ngsi-ld:Manhole:1", depth=prop(1), owner={"type": "Relationship", "object": "urn:x:1"}),
                 entity("urn:ngsi-ld:Manhole:2", depth=prop(2)),
                 {"id": "urn:ngsi-ld:Pump:1", "type": "Pump", "depth": prop(3)}):
        assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    other = {"id": "urn:ngsi-ld:Valve:1", "type": "Valve", "flow": prop(1)}
    assert ngsi.post(f"{BASE}/entities", json=other, headers={"NGSILD-Tenant": "other"}).status_code == 201


def test_types_and_attributes_as_lists(ngsi: Any) -> None:
    _setup(ngsi)
    types = ngsi.get(f"{BASE}/types").json()
    assert types["type"] == "EntityTypeList" and types["typeList"] == ["Manhole", "Pump"]
    attrs = ngsi.get(f"{BASE}/attributes").json()
    assert attrs["type"] == "AttributeList" and attrs["attributeList"] == ["depth", "owner"]
    assert ngsi.get(f"{BASE}/types", headers={"NGSILD-Tenant": "other"}).json()["typeList"] == ["Valve"]


def test_types_and_attributes_in_detail(ngsi: Any) -> None:
    _setup(ngsi)
    detailed = ngsi.get(f"{BASE}/types", params={"details": "true"}).json()
    assert detailed == [
        {"id": DEFAULT + "Manhole", "type": "EntityType", "typeName": "Manhole", "attributeNames": ["depth", "owner"]},
        {"id": DEFAULT + "Pump", "type": "EntityType", "typeName": "Pump", "attributeNames": ["depth"]}]
    info = ngsi.get(f"{BASE}/types/Manhole").json()
    assert info["type"] == "EntityTypeInfo" and info["entityCount"] == 2
    assert {a["attributeName"]: a["attributeTypes"] for a in info["attributeDetails"]} == \
        {"depth": ["Property"], "owner": ["Relationship"]}
    assert ngsi.get(f"{BASE}/types/{DEFAULT}Manhole").json()["entityCount"] == 2  # an expanded name too
    listed = ngsi.get(f"{BASE}/attributes", params={"details": "true"}).json()
    assert {a["attributeName"]: a["typeNames"] for a in listed} == {"depth": ["Manhole", "Pump"], "owner": ["Manhole"]}
    depth = ngsi.get(f"{BASE}/attributes/depth").json()
    assert depth == {"id": DEFAULT + "depth", "type": "Attribute", "attributeName": "depth", "attributeCount": 3,
                     "attributeTypes": ["Property"], "typeNames": ["Manhole", "Pump"]}


def test_unknown_types_attributes_members_and_parameters(ngsi: Any) -> None:
    _setup(ngsi)
    for path in ("/types/Valve", "/types/Nothing", "/attributes/flow", "/attributes/id", "/attributes/createdAt"):
        r = ngsi.get(BASE + path)
        assert r.status_code == 404 and r.json()["type"].endswith("ResourceNotFound"), path
    for path, params in (("/types/Manhole", {"details": "true"}), ("/attributes", {"limit": "5"})):
        r = ngsi.get(BASE + path, params=params)
        assert r.status_code == 400 and r.json()["type"].endswith("InvalidRequest"), path
