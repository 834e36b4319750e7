"""Batch writes that name one entity several times (device readings in bursts): one row per entity in its
final state, and every change in the history with its own value."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, prop

E1 = "urn:ngsi-ld:Manhole:1"


def _history(ngsi: Any) -> list[Any]:
    r = ngsi.get(f"{BASE}/temporal/entities/{E1}?attrs=tiltAngle")
    assert r.status_code == 200, r.text
    return [i["value"] for i in r.json()["tiltAngle"]]


def test_a_new_entity_named_again_in_one_batch_keeps_each_change(ngsi: Any) -> None:
    body = [entity(tiltAngle=prop(1)), entity(tiltAngle=prop(2), status=prop("open")), entity(tiltAngle=prop(3))]
    r = ngsi.post(f"{BASE}/entityOperations/upsert?options=update", json=body)
    assert r.status_code == 201, r.text
    assert sorted(_history(ngsi)) == [1, 2, 3]
    stored = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert stored["tiltAngle"]["value"] == 3 and stored["status"]["value"] == "open"


def test_an_existing_entity_named_again_in_one_batch_ends_in_its_last_state(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(0), status=prop("closed"))).status_code == 201
    body = [entity(tiltAngle=prop(4)), entity(status=prop("open")), entity(tiltAngle=prop(5))]
    assert ngsi.post(f"{BASE}/entityOperations/update", json=body).status_code == 204
    stored = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert stored["tiltAngle"]["value"] == 5 and stored["status"]["value"] == "open"
    assert sorted(_history(ngsi)) == [0, 4, 5]
    body = [entity(tiltAngle=prop(6)), entity(tiltAngle=prop(7))]
    assert ngsi.post(f"{BASE}/entityOperations/upsert", json=body).status_code == 204
    stored = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert stored["tiltAngle"]["value"] == 7 and "status" not in stored  # replace: the last item's attributes
