"""Temporal API: queries judged on the instances inside the time interval, the attribute verbs, partial
answers with Content-Range, the representations and their validation, and the Core API in step."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.conftest import City, make_client
from tests.context.conftest import BASE

TEMPORAL = f"{BASE}/temporal/entities"
QUERY = f"{BASE}/temporal/entityOperations/query"
IN, OUT = "2026-03-01T12:00:00Z", "2026-01-05T00:00:00Z"
WINDOW = {"timerel": "between", "timeAt": "2026-03-01T00:00:00Z", "endTimeAt": "2026-03-02T00:00:00Z"}


def _at(value: Any, when: str, **more: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, "observedAt": when, **more}


def _create(ngsi: Any, entity_id: str, **attrs: Any) -> None:
    r = ngsi.post(TEMPORAL, json={"id": entity_id, "type": "Vehicle", **attrs})
    assert r.status_code == 201, r.text


def _ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(e["id"] for e in r.json())


def test_context_is_no_attribute_and_several_types_are_kept(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:t1"
    r = ngsi.post(TEMPORAL, json={"id": e, "type": ["Vehicle", "Truck"], "speed": [_at(1, IN)],
                                  "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]},
                  headers={"Content-Type": "application/ld+json"})
    assert r.status_code == 201, r.text
    body = ngsi.get(f"{TEMPORAL}/{e}").json()
    assert "@context" not in body and set(body) == {"id", "type", "speed"}
    assert body["type"] == ["Vehicle", "Truck"]
    assert _ids(ngsi.get(TEMPORAL, params={"type": "Truck", **WINDOW})) == [e]


def test_q_holds_only_on_instances_inside_the_interval(ngsi: Any) -> None:
    _create(ngsi, "urn:ngsi-ld:Vehicle:fast", speed=[_at(30, IN), _at(90, OUT)])
    _create(ngsi, "urn:ngsi-ld:Vehicle:slow", speed=[_at(10, IN), _at(80, OUT)])
    r = ngsi.get(TEMPORAL, params={"type": "Vehicle", "q": "speed>25", **WINDOW})
    assert _ids(r) == ["urn:ngsi-ld:Vehicle:fast"]
    shown = r.json()[0]["speed"]
    assert [i["value"] for i in shown] == [30]  # the instance outside the interval is not shown either
    counted = ngsi.get(TEMPORAL, params={"type": "Vehicle", "q": "speed>5", "count": "true", "limit": 1, **WINDOW})
    assert counted.headers["NGSILD-Results-Count"] == "2" and len(counted.json()) == 1


def test_geo_query_on_windowed_positions(ngsi: Any) -> None:
    here = {"type": "Point", "coordinates": [2.29, 48.85]}
    _create(ngsi, "urn:ngsi-ld:Vehicle:in", location=[{"type": "GeoProperty", "value": here, "observedAt": IN}])
    _create(ngsi, "urn:ngsi-ld:Vehicle:out", location=[{"type": "GeoProperty", "value": here, "observedAt": OUT}])
    r = ngsi.get(TEMPORAL, params={"type": "Vehicle", "georel": "near;maxDistance==2000", "geometry": "Point",
                                   "coordinates": "[2.29,48.85]", **WINDOW})
    assert _ids(r) == ["urn:ngsi-ld:Vehicle:in"]


def test_scope_valid_during_the_interval_bounds_the_instances(ngsi: Any) -> None:
    window = {"timerel": "between", "timeAt": "2026-03-01T12:00:00Z", "endTimeAt": "2026-03-01T13:00:00Z"}
    _create(ngsi, "urn:ngsi-ld:Vehicle:rep",
            scope=[_at("/R", "2026-03-01T10:00:00Z"), _at("/S", "2026-03-01T12:30:00Z")],
            speed=[_at("old", "2026-03-01T12:15:00Z"), _at("new", "2026-03-01T12:45:00Z")])
    _create(ngsi, "urn:ngsi-ld:Vehicle:late", scope=[_at("/Z", "2026-03-01T14:00:00Z")],
            speed=[_at("late", "2026-03-01T12:05:00Z")])
    old = ngsi.get(TEMPORAL, params={"type": "Vehicle", "scopeQ": "/R", **window})
    assert _ids(old) == ["urn:ngsi-ld:Vehicle:rep"] and "old" in old.text and "new" not in old.text
    new = ngsi.get(TEMPORAL, params={"type": "Vehicle", "scopeQ": "/S", **window})
    assert "new" in new.text and "old" not in new.text
    assert _ids(ngsi.get(TEMPORAL, params={"type": "Vehicle", "scopeQ": "/Z", **window})) == []


def test_pick_omit_datasets_and_simplified_members(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:d"
    _create(ngsi, e, speed=[_at(1, IN), _at(2, IN, datasetId="urn:ngsi-ld:Dataset:a")],
            ref=[{"type": "Relationship", "object": "urn:ngsi-ld:Road:1", "observedAt": IN}])
    picked = ngsi.get(f"{TEMPORAL}/{e}", params={"pick": "id,ref"}).json()
    assert set(picked) == {"id", "ref"}
    simple = ngsi.get(TEMPORAL, params={"type": "Vehicle", "datasetId": "urn:ngsi-ld:Dataset:a",
                                        "options": "temporalValues", **WINDOW}).json()[0]
    assert simple["speed"] == {"type": "Property", "datasetId": "urn:ngsi-ld:Dataset:a", "values": [[2, IN]]}
    objects = ngsi.get(f"{TEMPORAL}/{e}", params={"options": "temporalValues", "attrs": "ref"}).json()["ref"]
    assert objects == {"type": "Relationship", "objects": [["urn:ngsi-ld:Road:1", IN]]}
    assert ngsi.get(f"{TEMPORAL}/{e}", params={"pick": "speed", "omit": "speed"}).status_code == 400
    assert ngsi.get(f"{TEMPORAL}/{e}", params={"pick": "unknown"}).status_code == 404


@pytest.mark.parametrize(("params", "status", "kind"), [
    ({"format": "bogus"}, 400, "InvalidRequest"),
    ({"options": "temporalValues,bogus"}, 400, "InvalidRequest"),
    ({"timerel": "during", "timeAt": IN}, 400, "BadRequestData"),
    ({"timerel": "after", "timeAt": "2026-03-01"}, 400, "BadRequestData"),
    ({"timeproperty": "expiresAt"}, 400, "BadRequestData"),
    ({"lastN": "0"}, 400, "BadRequestData"),
    ({"orderBy": "name"}, 400, "BadRequestData"),
    ({"q": "owner{name}==\"x\""}, 400, "BadRequestData"),
])
def test_query_parameters_are_checked(ngsi: Any, params: dict[str, str], status: int, kind: str) -> None:
    r = ngsi.get(TEMPORAL, params={"type": "Vehicle", **params})
    assert r.status_code == status and r.json()["type"].endswith(kind), r.text


def test_query_needs_more_than_ids(ngsi: Any) -> None:
    assert ngsi.get(TEMPORAL, params={"id": "urn:ngsi-ld:Vehicle:x", **WINDOW}).status_code == 400


def test_more_instances_than_a_page_answer_206_with_content_range(city: City) -> None:
    city.settings = replace(city.settings, ngsild_temporal_instances=30)  # WECITY_NGSILD_TEMPORAL_INSTANCES
    with make_client(city) as ngsi:
        ngsi.headers["Authorization"] = f"Bearer {city.api_key}"
        _more_than_a_page(ngsi)


def _more_than_a_page(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:many"
    _create(ngsi, e, speed=[_at(n, f"2026-03-01T10:{n:02d}:00Z") for n in range(40)])
    r = ngsi.get(f"{TEMPORAL}/{e}")
    assert r.status_code == 206
    shown = r.json()["speed"]
    assert len(shown) < 40
    assert r.headers["Content-Range"] == f"date-time 2026-03-01T10:00:00Z-{shown[-1]['observedAt']}/*"
    newest = ngsi.get(f"{TEMPORAL}/{e}", params={"lastN": 35})
    assert newest.status_code == 206 and newest.headers["Content-Range"].endswith("/35")
    assert newest.json()["speed"][-1]["value"] == 39
    assert ngsi.get(f"{TEMPORAL}/{e}", params={"lastN": 5}).status_code == 200


def test_attribute_verbs(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:verbs"
    _create(ngsi, e, speed=[_at(1, IN), _at(2, "2026-03-01T13:00:00Z")], fuel=[_at(9, IN)])
    assert ngsi.post(f"{TEMPORAL}/{e}/attrs", json={"heading": [_at(45, IN)]}).status_code == 204
    body = ngsi.get(f"{TEMPORAL}/{e}").json()
    assert [i["value"] for i in body["heading"]] == [45]
    first = body["speed"][0]["instanceId"]
    r = ngsi.patch(f"{TEMPORAL}/{e}/attrs/speed/{first}", json={"type": "Property", "value": 5, "observedAt": IN})
    assert r.status_code == 204
    after = ngsi.get(f"{TEMPORAL}/{e}").json()["speed"]
    assert after[0]["instanceId"] == first and after[0]["value"] == 5
    assert ngsi.delete(f"{TEMPORAL}/{e}/attrs/speed/{first}").status_code == 204
    assert [i["value"] for i in ngsi.get(f"{TEMPORAL}/{e}").json()["speed"]] == [2]
    assert ngsi.delete(f"{TEMPORAL}/{e}/attrs/speed/{first}").status_code == 404
    assert ngsi.delete(f"{TEMPORAL}/{e}/attrs/speed/notAnId").status_code == 400
    assert ngsi.delete(f"{TEMPORAL}/{e}/attrs/fuel").status_code == 204
    assert "fuel" not in ngsi.get(f"{TEMPORAL}/{e}").json()
    assert ngsi.delete(f"{TEMPORAL}/{e}/attrs/fuel").status_code == 404
    assert ngsi.post(f"{TEMPORAL}/urn:ngsi-ld:Vehicle:none/attrs", json={"a": [_at(1, IN)]}).status_code == 404


def test_query_body(ngsi: Any) -> None:
    _create(ngsi, "urn:ngsi-ld:Vehicle:b1", speed=[_at(1, IN), _at(3, "2026-03-01T13:00:00Z")])
    body = {"type": "Query", "entities": [{"type": "Vehicle"}],
            "temporalQ": {"timerel": "after", "timeAt": "2026-03-01T00:00:00Z", "lastN": 1}}
    r = ngsi.post(QUERY, json=body)
    assert r.status_code == 200 and [i["value"] for i in r.json()[0]["speed"]] == [3]
    aggregated = ngsi.post(QUERY, json={**body, "temporalQ": {"timerel": "after", "timeAt": "2026-03-01T00:00:00Z"},
                                        "aggrParams": {"aggrMethods": ["avg"], "aggrPeriodDuration": "PT0S"}})
    assert aggregated.json()[0]["speed"]["avg"][0][0] == 2
    bad = ngsi.post(QUERY, json={**body, "temporalQ": {"timerel": "after", "timeAt": IN, "lastN": 1.5}})
    assert bad.status_code == 400


def test_core_api_changes_become_instances(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:core"
    _create(ngsi, e, speed=[_at(1, IN), _at(2, "2026-03-01T13:00:00Z")])
    current = ngsi.get(f"{BASE}/entities/{e}").json()
    assert current["speed"]["value"] == 2  # the entity is held with its newest instance
    assert ngsi.delete(f"{BASE}/entities/{e}/attrs/speed").status_code == 204
    deleted = ngsi.get(f"{TEMPORAL}/{e}", params={"timeproperty": "deletedAt"}).json()["speed"]
    assert len(deleted) == 1 and deleted[0]["value"] == "urn:ngsi-ld:null" and "deletedAt" in deleted[0]
    assert ngsi.patch(f"{BASE}/entities/{e}", json={"scope": "/New"}).status_code == 204
    scope = ngsi.get(f"{TEMPORAL}/{e}", params={"options": "sysAttrs"}).json()["scope"]
    assert scope[-1]["value"] == "/New" and scope[-1]["observedAt"] == scope[-1]["modifiedAt"]


def test_a_null_expiry_in_a_temporal_entity_is_refused_and_nothing_kept(ngsi: Any) -> None:
    e = "urn:ngsi-ld:Vehicle:null"
    r = ngsi.post(TEMPORAL, json={"id": e, "type": "Vehicle", "expiresAt": "urn:ngsi-ld:null", "speed": [_at(1, IN)]})
    assert r.status_code == 400
    assert ngsi.get(f"{TEMPORAL}/{e}").status_code == 404
