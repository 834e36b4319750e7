"""Multi-attributes: several instances of one attribute told apart by datasetId, on every verb."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, point, prop

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
E1 = "urn:ngsi-ld:Manhole:1"
GPS = "urn:ngsi-ld:Dataset:gps"
RADAR = "urn:ngsi-ld:Dataset:radar"
NULL = "urn:ngsi-ld:null"


def _speeds() -> list[dict[str, Any]]:
    return [prop(55), prop(11, datasetId=GPS)]


def _get(ngsi: Any, **params: Any) -> dict[str, Any]:
    r = ngsi.get(f"{BASE}/entities/{E1}", params=params)
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def test_instances_are_stored_and_rendered_in_every_representation(ngsi: Any) -> None:
    body = entity(speed=[prop(55, datasetId="@none"), prop(11, datasetId=GPS)])
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    assert _get(ngsi)["speed"] == [prop(55), prop(11, datasetId=GPS)]
    assert _get(ngsi, options="concise")["speed"] == [55, {"value": 11, "datasetId": GPS}]
    assert _get(ngsi, options="keyValues")["speed"] == {"dataset": {"@none": 55, GPS: 11}}


def test_concise_instances_are_accepted(ngsi: Any) -> None:
    body = entity(speed=[{"value": 55}, {"value": 11, "datasetId": GPS}])
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    assert _get(ngsi)["speed"] == _speeds()


def test_two_defaults_or_a_repeated_dataset_id_are_bad_request_data(ngsi: Any) -> None:
    for speeds in ([prop(1), prop(2, datasetId="@none")], [prop(1, datasetId=GPS), prop(2, datasetId=GPS)]):
        r = ngsi.post(f"{BASE}/entities", json=entity(speed=speeds))
        assert r.status_code == 400, speeds
        assert r.json()["type"] == ERR + "BadRequestData"
    assert ngsi.get(f"{BASE}/entities/{E1}").status_code == 404


def test_append_and_update_touch_only_the_instance_named(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds())).status_code == 201
    r = ngsi.post(f"{BASE}/entities/{E1}/attrs", json={"speed": prop(7, datasetId=RADAR)})
    assert r.status_code == 204
    assert _get(ngsi)["speed"] == [*_speeds(), prop(7, datasetId=RADAR)]
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs", json={"speed": prop(12, datasetId=GPS)})
    assert r.status_code == 204
    assert _get(ngsi)["speed"] == [prop(55), prop(12, datasetId=GPS), prop(7, datasetId=RADAR)]
    r = ngsi.post(f"{BASE}/entities/{E1}/attrs", params={"options": "noOverwrite"}, json={"speed": prop(99)})
    assert r.status_code == 207
    assert _get(ngsi)["speed"][0] == prop(55)


def test_partial_update_by_dataset_id(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds())).status_code == 201
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/speed", json={"value": 13, "datasetId": GPS})
    assert r.status_code == 204
    assert _get(ngsi)["speed"] == [prop(55), prop(13, datasetId=GPS)]
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/speed", json={"value": 1, "datasetId": RADAR})
    assert r.status_code == 404


def test_delete_one_instance_the_default_or_all(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds())).status_code == 201
    assert ngsi.delete(f"{BASE}/entities/{E1}/attrs/speed", params={"datasetId": RADAR}).status_code == 404
    assert ngsi.delete(f"{BASE}/entities/{E1}/attrs/speed", params={"datasetId": GPS}).status_code == 204
    assert _get(ngsi)["speed"] == prop(55)
    assert ngsi.post(f"{BASE}/entities/{E1}/attrs", json={"speed": prop(11, datasetId=GPS)}).status_code == 204
    assert ngsi.delete(f"{BASE}/entities/{E1}/attrs/speed").status_code == 204
    assert _get(ngsi)["speed"] == prop(11, datasetId=GPS)
    assert ngsi.delete(f"{BASE}/entities/{E1}/attrs/speed").status_code == 404
    assert ngsi.post(f"{BASE}/entities/{E1}/attrs", json={"speed": prop(55)}).status_code == 204
    assert ngsi.delete(f"{BASE}/entities/{E1}/attrs/speed", params={"deleteAll": "true"}).status_code == 204
    assert "speed" not in _get(ngsi)


def test_merge_with_null_deletes_one_instance(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds(), location=point(1, 2))).status_code == 201
    r = ngsi.patch(f"{BASE}/entities/{E1}", json={"speed": prop("urn:ngsi-ld:null", datasetId=GPS)})
    assert r.status_code == 204
    assert _get(ngsi)["speed"] == prop(55)
    r = ngsi.patch(f"{BASE}/entities/{E1}", json={"location": {"type": "GeoProperty", "value": "urn:ngsi-ld:null"}})
    assert r.status_code == 204
    assert "location" not in _get(ngsi)


def test_every_instance_is_recorded_in_the_history(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds())).status_code == 201
    assert ngsi.patch(f"{BASE}/entities/{E1}/attrs", json={"speed": prop(12, datasetId=GPS)}).status_code == 204
    r = ngsi.get(f"{BASE}/temporal/entities/{E1}", params={"attrs": "speed"})
    assert r.status_code == 200
    got = sorted((i["value"], i.get("datasetId")) for i in r.json()["speed"])
    assert got == [(11, GPS), (12, GPS), (55, None)]


def test_queries_see_every_instance_and_the_location_is_the_default(ngsi: Any) -> None:
    loc = [{**point(9, 9), "datasetId": GPS}, point(112.98, 28.2)]
    assert ngsi.post(f"{BASE}/entities", json=entity(speed=_speeds(), location=loc)).status_code == 201
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": "speed==11"})
    assert [e["id"] for e in r.json()] == [E1]
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "georel": "near;maxDistance==1000",
                                              "geometry": "Point", "coordinates": "[112.98,28.2]"})
    assert [e["id"] for e in r.json()] == [E1]
    r = ngsi.get(f"{BASE}/entities/{E1}", headers={"accept": "application/geo+json"})
    assert r.json()["geometry"] == point(112.98, 28.2)["value"]


def test_deleted_instances_are_notified_with_the_null_value(broker: Any, receiver: Any) -> None:
    sub = {"type": "Subscription", "entities": [{"type": "Manhole"}], "watchedAttributes": ["speed"],
           "notificationTrigger": ["attributeDeleted"],
           "notification": {"endpoint": {"uri": "http://receiver.test/n", "accept": "application/json"},
                            "attributes": ["speed"]}}
    assert broker.post(f"{BASE}/subscriptions", json=sub).status_code == 201
    assert broker.post(f"{BASE}/entities", json=entity(speed=_speeds())).status_code == 201
    r = broker.delete(f"{BASE}/entities/{E1}/attrs/speed", params={"datasetId": GPS})
    assert r.status_code == 204
    assert broker.delete(f"{BASE}/entities/{E1}/attrs/speed", params={"deleteAll": "true"}).status_code == 204
    broker.deliver()
    shown = [b["data"][0]["speed"] for b in receiver.bodies()][-2:]
    assert shown == [[prop(55), prop(NULL, datasetId=GPS)], prop(NULL)]
