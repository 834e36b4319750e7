"""Batch operations: create, upsert (replace/update), update (noOverwrite), delete, with 207 results."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, prop

OPS = f"{BASE}/entityOperations"


def _kv(ngsi: Any, eid: str) -> dict[str, Any]:
    return ngsi.get(f"{BASE}/entities/{eid}", params={"options": "keyValues"}).json()


def test_create_all_ok_then_partial_failure(ngsi: Any) -> None:
    items = [entity(f"urn:ngsi-ld:Manhole:{i}", tiltAngle=prop(i)) for i in range(3)]
    r = ngsi.post(f"{OPS}/create", json=items)
    assert r.status_code == 201 and r.json() == [e["id"] for e in items]
    r = ngsi.post(f"{OPS}/create", json=[entity("urn:ngsi-ld:Manhole:0"), entity("urn:ngsi-ld:Manhole:9"),
                                         {"id": "bad", "type": "Manhole"}])
    assert r.status_code == 207
    body = r.json()
    assert body["success"] == ["urn:ngsi-ld:Manhole:9"]
    errors = {e["entityId"]: e["error"]["type"].rsplit("/", 1)[1] for e in body["errors"]}
    assert errors == {"urn:ngsi-ld:Manhole:0": "AlreadyExists", "bad": "BadRequestData"}


def test_upsert_replace_and_update_modes(ngsi: Any) -> None:
    ngsi.post(f"{OPS}/create", json=[entity(tiltAngle=prop(1), depth=prop(2))])
    r = ngsi.post(f"{OPS}/upsert", json=[entity(tiltAngle=prop(5))])
    assert r.status_code == 204
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:1") == {"id": "urn:ngsi-ld:Manhole:1", "type": "Manhole", "tiltAngle": 5}
    r = ngsi.post(f"{OPS}/upsert", params={"options": "update"},
                  json=[entity(depth=prop(3)), entity("urn:ngsi-ld:Manhole:2", depth=prop(4))])
    assert r.status_code == 201 and r.json() == ["urn:ngsi-ld:Manhole:2"]
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:1") == {"id": "urn:ngsi-ld:Manhole:1", "type": "Manhole", "tiltAngle": 5,
                                                  "depth": 3}


def test_update_and_no_overwrite(ngsi: Any) -> None:
    ngsi.post(f"{OPS}/create", json=[entity(tiltAngle=prop(1))])
    r = ngsi.post(f"{OPS}/update", json=[entity(tiltAngle=prop(2)), entity("urn:ngsi-ld:Manhole:404", a=prop(1))])
    assert r.status_code == 207
    assert r.json()["success"] == ["urn:ngsi-ld:Manhole:1"]
    assert r.json()["errors"][0]["error"]["type"].endswith("ResourceNotFound")
    # noOverwrite: the new attribute is added, the existing one kept, and the entity reported (207).
    r = ngsi.post(f"{OPS}/update", params={"options": "noOverwrite"}, json=[entity(tiltAngle=prop(9), depth=prop(1))])
    assert r.status_code == 207
    assert r.json()["errors"][0]["entityId"] == "urn:ngsi-ld:Manhole:1"
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:1")["tiltAngle"] == 2
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:1")["depth"] == 1
    r = ngsi.post(f"{OPS}/update", params={"options": "noOverwrite"}, json=[entity(width=prop(3))])
    assert r.status_code == 204


def test_delete(ngsi: Any) -> None:
    ngsi.post(f"{OPS}/create", json=[entity(f"urn:ngsi-ld:Manhole:{i}") for i in range(3)])
    assert ngsi.post(f"{OPS}/delete", json=["urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:1"]).status_code == 204
    r = ngsi.post(f"{OPS}/delete", json=["urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2"])
    assert r.status_code == 207 and r.json()["success"] == ["urn:ngsi-ld:Manhole:2"]
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}).json() == []


def test_batch_body_errors(ngsi: Any) -> None:
    for body in ({}, [], "x"):
        assert ngsi.post(f"{OPS}/create", json=body).status_code == 400
    assert ngsi.post(f"{OPS}/delete", json=[]).status_code == 400


def test_the_same_new_entity_twice_in_one_batch(ngsi: Any) -> None:
    items = [entity("urn:ngsi-ld:Manhole:a", tiltAngle=prop(1)), entity("urn:ngsi-ld:Manhole:b", tiltAngle=prop(2)),
             entity("urn:ngsi-ld:Manhole:a", depth=prop(3))]
    r = ngsi.post(f"{OPS}/upsert", params={"options": "update"}, json=items)
    assert r.status_code == 201
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:a") == {"id": "urn:ngsi-ld:Manhole:a", "type": "Manhole", "tiltAngle": 1,
                                                  "depth": 3}
    assert _kv(ngsi, "urn:ngsi-ld:Manhole:b") == {"id": "urn:ngsi-ld:Manhole:b", "type": "Manhole", "tiltAngle": 2}
