"""What the broker accepts when entities are written (ETSI GS CIM 009 clauses 4.5-4.18, 5.5.4, 5.6), and
how merge, delete and the batch verbs treat the NGSI-LD Null, scopes and selectors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, LD, entity, point, prop

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
E1 = "urn:ngsi-ld:Manhole:1"
NULL = "urn:ngsi-ld:null"
OPS = f"{BASE}/entityOperations"


def _rel(obj: str, **extra: Any) -> dict[str, Any]:
    return {"type": "Relationship", "object": obj, **extra}


def _create(ngsi: Any, body: Any, **kw: Any) -> Any:
    return ngsi.post(f"{BASE}/entities", json=body, **kw)


def _get(ngsi: Any, eid: str = E1, **params: Any) -> Any:
    return ngsi.get(f"{BASE}/entities/{eid}", params=params)


def _assert_bad(r: Any, kind: str = "BadRequestData") -> None:
    assert r.status_code == 400, r.text
    assert r.json()["type"] == ERR + kind


@pytest.mark.parametrize("attr", [
    prop(1, object="urn:ngsi-ld:X:1"), prop(1, languageMap={"en": "a"}), prop(1, valueList=[1]),
    prop(1, previousValue=0), prop(1, entityIdSealed=E1),
    _rel("urn:ngsi-ld:X:1", unitCode="MTR"), _rel("urn:ngsi-ld:X:1", value=42),
    {"type": "JsonProperty", "json": {"a": 1}, "unitCode": "MTR"}, {"type": "JsonProperty", "json": 5},
    {"type": "JsonProperty", "json": {"a": 1}, "value": 1},
    {"type": "ListProperty", "valueList": [1], "value": 3}, {"type": "ListRelationship", "objectList": ["not a uri"]},
    {"type": "LanguageProperty", "languageMap": {"en": "x"}, "valueType": "xsd:string"},
    {"type": "LanguageProperty", "languageMap": {"en": ["a", 5]}}, {"type": "LanguageProperty", "languageMap": {"": "x"}},
    {"type": "LanguageProperty", "languageMap": {"@none": NULL}},
    prop(NULL), _rel(NULL), prop(1, sub=prop(NULL)), prop({"country": {"code": NULL}}),
    prop(3, observedAt="2026-08-10T12:00:00+02:00"),
])
def test_member_combinations_the_spec_forbids_are_bad_request_data(ngsi: Any, attr: dict[str, Any]) -> None:
    _assert_bad(_create(ngsi, entity(probe=attr)))
    assert _get(ngsi).status_code == 404


def test_legal_members_round_trip(ngsi: Any) -> None:
    body = entity(speed=prop(1, valueType="xsd:double"), parkedAt=_rel("urn:ngsi-ld:Road:1", objectType="Road"),
                  route={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Road:1", {"object": "urn:ngsi-ld:Road:2"}]},
                  label={"type": "LanguageProperty", "languageMap": {"en": ["a", "b"]}, "valueType": "langString"})
    assert _create(ngsi, body).status_code == 201
    got = _get(ngsi).json()
    assert got["speed"]["valueType"] == "xsd:double"
    assert got["parkedAt"]["objectType"] == "Road"
    assert got["route"]["objectList"] == [{"object": "urn:ngsi-ld:Road:1"}, {"object": "urn:ngsi-ld:Road:2"}]


@pytest.mark.parametrize("body", [
    entity(datasetId=prop(1)), entity(observedAt=prop("2026-01-01T00:00:00Z")), entity(instanceId=prop(1)),
    {"id": E1, "type": "9Manhole"}, {"id": E1, "type": "type"},
    {"id": "urn:ngsi-ld:Manhole:A<B", "type": "Manhole"}, {"id": "urn:ngsi-ld:Manhole:A\ufe0fB", "type": "Manhole"},
    {"id": "urn:ngsi-ld:Manhole:A\u3164B", "type": "Manhole"}, {"id": "urn:ngsi-ld:Manhole:A\u2800B", "type": "Manhole"},
    {"id": NULL, "type": "Manhole"},
    entity(scope="9bad"), entity(scope="/a//b"), entity(scope="a-b"), entity(scope=NULL), entity(scope=["/ok", "9bad"]),
    entity(location={"type": "GeoProperty", "value": {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [1, 2]}]}}),
    entity(location=prop(7)), entity(location={"type": "GeoProperty", "value": "not a geometry"}),
])
def test_names_ids_scopes_and_geometries_are_checked(ngsi: Any, body: dict[str, Any]) -> None:
    _assert_bad(_create(ngsi, body))


def test_control_characters_are_in_no_id_or_name(ngsi: Any) -> None:
    # PostgreSQL text cannot hold NUL: an id, type or attribute name with one was a 500 there, in a body,
    # a path or a query alike. No IRI or name holds a control character: BadRequestData, or nothing found.
    bodies = [{"id": "urn:ngsi-ld:Manhole:\x00", "type": "Manhole"}, {"id": "urn:ngsi-ld:Manhole:\x01", "type": "Manhole"},
              {"id": E1, "type": "a:\x00"}, entity(**{"a:\x00b": prop(1)}), entity(**{"a:b\x7f": prop(1)})]
    for body in bodies:
        _assert_bad(_create(ngsi, body))
        r = ngsi.post(f"{OPS}/upsert", json=[body])
        assert r.status_code == 207 and r.json()["errors"][0]["error"]["status"] == 400
        _assert_bad(ngsi.post(f"{BASE}/temporal/entities", json=body))
    r = ngsi.post(f"{OPS}/delete", json=["urn:ngsi-ld:Manhole:\x00"])
    assert r.status_code == 207 and r.json()["errors"][0]["error"]["status"] == 400
    sub = {"type": "Subscription", "id": "urn:ngsi-ld:Subscription:\x00", "entities": [{"type": "Manhole"}],
           "notification": {"endpoint": {"uri": "http://receiver.test/n"}}}
    _assert_bad(ngsi.post(f"{BASE}/subscriptions", json=sub))
    for path in ("/entities/urn:a:%00", "/subscriptions/urn:a:%00", "/temporal/entities/urn:a:%00",
                 "/entities/urn:a:1/attrs/a:%00"):
        for method in ("GET", "DELETE") if "/attrs/" not in path else ("DELETE",):
            _assert_bad(ngsi.request(method, f"{BASE}{path}"))
    for params in ({"type": "Manhole\x00"}, {"type": "Manhole", "attrs": "a:\x00"}, {"id": "urn:a:\x00"}):
        _assert_bad(ngsi.get(f"{BASE}/entities", params=params))
        _assert_bad(ngsi.get(f"{BASE}/temporal/entities", params=params))
    for method in ("GET", "DELETE"):
        _assert_bad(ngsi.request(method, f"{BASE}/entityMaps/urn:a:%00"))  # not a URI (5.14.1.4)
        assert ngsi.request(method, f"{BASE}/jsonldContexts/%00").status_code == 404, method
    assert _create(ngsi, entity(tiltAngle=prop(1))).status_code == 201
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"NGSILD-EntityMap": "urn:a:%00"})
    assert r.status_code == 200 and r.headers["NGSILD-EntityMap"].startswith(f"{BASE}/entityMaps/urn:ngsi-ld:")


def test_unicode_names_scopes_and_iris_are_accepted(ngsi: Any) -> None:
    body = {"id": E1, "type": "Škola", "výška_1": prop(7), "scope": ["/Madrid/Gardens/ParqueNorte", "/北京"],
            "owner": _rel("urn:ngsi-ld:Ciudad:París"), "vocab": {"type": "VocabProperty", "vocab": "stopped"},
            "json": {"type": "JsonProperty", "json": {"a": 1}}}
    assert _create(ngsi, body).status_code == 201
    got = _get(ngsi).json()
    assert got["výška_1"]["value"] == 7 and got["scope"] == ["/Madrid/Gardens/ParqueNorte", "/北京"]


def test_a_string_encoded_geometry_is_stored_as_the_geometry(ngsi: Any) -> None:
    body = entity(location={"type": "GeoProperty", "value": '{"type": "Point", "coordinates": [112.98, 28.2]}'})
    assert _create(ngsi, body).status_code == 201
    assert _get(ngsi).json()["location"] == point(112.98, 28.2)


def test_a_body_that_is_no_object_is_invalid_request(ngsi: Any) -> None:
    _assert_bad(ngsi.post(f"{BASE}/entities", content=b"[]", headers={"content-type": LD}), "InvalidRequest")


def test_a_user_context_with_scoped_contexts_is_rejected(ngsi: Any) -> None:
    ctx = [{"Manhole": {"@id": "https://example.org/Manhole", "@context": {"depth": "https://example.org/d"}}}]
    _assert_bad(ngsi.post(f"{BASE}/entities", json={**entity(), "@context": ctx}, headers={"content-type": LD}))


def test_ngsildproof_keeps_its_sealed_members_as_plain_strings(ngsi: Any) -> None:
    proof = {"type": "Property", "entityIdSealed": E1, "entityTypeSealed": "Manhole",
             "value": {"type": "DataIntegrityProof", "proofValue": "z123"}}
    assert _create(ngsi, entity(ngsildproof=proof)).status_code == 201
    got = _get(ngsi).json()["ngsildproof"]
    assert (got["entityIdSealed"], got["entityTypeSealed"], got["value"]["proofValue"]) == (E1, "Manhole", "z123")
    _assert_bad(_create(ngsi, entity("urn:ngsi-ld:Manhole:2", ngsildproof=prop("not-a-proof"))))


def test_merge_keeps_members_not_given_and_null_deletes(ngsi: Any) -> None:
    body = entity(depth=prop(3, unitCode="MTR"), name=prop("东门"),
                  address=prop({"street": "五一大道", "city": "长沙", "country": "CN"}), scope="/Changsha")
    assert _create(ngsi, body).status_code == 201
    r = ngsi.patch(f"{BASE}/entities/{E1}", json={
        "depth": prop(4), "name": NULL, "address": prop({"street": "芙蓉路", "country": NULL}), "scope": NULL})
    assert r.status_code == 204
    got = _get(ngsi).json()
    assert got["depth"] == prop(4, unitCode="MTR")
    assert "name" not in got and "scope" not in got
    assert got["address"]["value"] == {"street": "芙蓉路", "city": "长沙"}
    assert NULL not in _get(ngsi).text


def test_merge_or_replace_without_an_id_is_bad_request_data(ngsi: Any) -> None:
    _assert_bad(ngsi.patch(f"{BASE}/entities/", json={"name": prop("x")}))
    _assert_bad(ngsi.put(f"{BASE}/entities/", json={"name": prop("x")}))


def test_partial_update_null_deletes_but_a_null_inside_a_value_is_rejected(ngsi: Any) -> None:
    assert _create(ngsi, entity(address=prop({"city": "长沙"}), name=prop("东门"))).status_code == 201
    _assert_bad(ngsi.patch(f"{BASE}/entities/{E1}/attrs/address", json={"value": {"city": NULL}}))
    assert _get(ngsi).json()["address"]["value"] == {"city": "长沙"}
    assert ngsi.patch(f"{BASE}/entities/{E1}/attrs/name", json={"value": NULL}).status_code == 204
    assert "name" not in _get(ngsi).json()
    assert ngsi.patch(f"{BASE}/entities/{E1}/attrs", json={"address": prop(NULL)}).status_code == 204
    assert "address" not in _get(ngsi).json()


def test_delete_with_a_type_selector(ngsi: Any) -> None:
    assert _create(ngsi, entity()).status_code == 201
    assert ngsi.delete(f"{BASE}/entities/{E1}", params={"type": "Vehicle"}).status_code == 404
    assert _get(ngsi).status_code == 200
    assert ngsi.delete(f"{BASE}/entities/{E1}", params={"type": "Manhole"}).status_code == 204
    assert _get(ngsi).status_code == 404


def test_a_term_the_context_maps_elsewhere_is_shown_as_a_compact_iri(ngsi: Any) -> None:
    assert _create(ngsi, entity(almostFull=prop(True))).status_code == 201
    ctx = {"@context": {"almostFull": "https://example.org/almostFull"}}
    r = ngsi.get(f"{BASE}/entities/{E1}", headers={"accept": LD}, params={})
    assert "almostFull" in r.json()
    r = ngsi.post(f"{OPS}/query", json={"type": "Query", "entities": [{"type": "Manhole"}], **ctx},
                  headers={"content-type": LD})
    assert "ngsi-ld:default-context/almostFull" in r.json()[0]


def test_batch_with_a_null_item_or_no_items_fails_whole(ngsi: Any) -> None:
    for op in ("create", "upsert", "update", "merge"):
        _assert_bad(ngsi.post(f"{OPS}/{op}", json=[entity(), None]))
        _assert_bad(ngsi.post(f"{OPS}/{op}", json=[]))
    assert _get(ngsi).status_code == 404


def test_batch_merge(ngsi: Any) -> None:
    assert _create(ngsi, entity(depth=prop(3, unitCode="MTR"), name=prop("东门"))).status_code == 201
    r = ngsi.post(f"{OPS}/merge", json=[entity(depth=prop(4), name=NULL)])
    assert r.status_code == 204 and not r.content
    assert _get(ngsi).json() == {"id": E1, "type": "Manhole", "depth": prop(4, unitCode="MTR")}
    r = ngsi.post(f"{OPS}/merge", json=[entity(depth=prop(5)), entity("urn:ngsi-ld:Manhole:404", depth=prop(1))])
    assert r.status_code == 207
    assert r.json()["success"] == [E1]
    assert r.json()["errors"][0]["entityId"] == "urn:ngsi-ld:Manhole:404"


def test_batch_upsert_keeps_the_scope(ngsi: Any) -> None:
    assert _create(ngsi, entity()).status_code == 201
    for options in ("replace", "update"):
        r = ngsi.post(f"{OPS}/upsert", params={"options": options}, json=[entity(scope="/Changsha/Yuelu")])
        assert r.status_code == 204
        assert _get(ngsi).json()["scope"] == "/Changsha/Yuelu"


def test_attribute_verbs_honour_the_type_selector(ngsi: Any) -> None:
    assert _create(ngsi, entity(name=prop("东门"), depth=prop(1))).status_code == 201
    url = f"{BASE}/entities/{E1}/attrs"
    assert ngsi.post(url, params={"type": "Vehicle"}, json={"width": prop(1)}).status_code == 404
    assert ngsi.patch(url, params={"type": "Vehicle"}, json={"depth": prop(2)}).status_code == 404
    assert ngsi.patch(f"{url}/depth", params={"type": "Vehicle"}, json={"value": 2}).status_code == 404
    assert ngsi.delete(f"{url}/name", params={"type": "Vehicle"}).status_code == 404
    assert _get(ngsi).json() == {"id": E1, "type": "Manhole", "name": prop("东门"), "depth": prop(1)}
    assert ngsi.patch(f"{url}/depth", params={"type": "Manhole"}, json={"value": 2}).status_code == 204
    assert ngsi.delete(f"{url}/name", params={"type": "Manhole"}).status_code == 204
    assert _get(ngsi).json() == {"id": E1, "type": "Manhole", "depth": prop(2)}


def test_scope_and_types_through_the_attribute_verbs(ngsi: Any) -> None:
    assert _create(ngsi, entity()).status_code == 201
    url = f"{BASE}/entities/{E1}/attrs"
    r = ngsi.patch(url, json={"scope": "/Changsha"})
    assert r.status_code == 207 and r.json()["notUpdated"][0]["attributeName"] == "scope"
    assert ngsi.post(url, json={"scope": "/Changsha"}).status_code == 204
    assert ngsi.post(url, params={"options": "noOverwrite"}, json={"scope": "/Yuelu"}).status_code == 204
    assert _get(ngsi).json()["scope"] == ["/Changsha", "/Yuelu"]
    assert ngsi.patch(url, json={"scope": "/Tianxin", "type": "Asset"}).status_code == 204
    got = _get(ngsi).json()
    assert got["scope"] == "/Tianxin" and got["type"] == ["Manhole", "Asset"]
    _assert_bad(ngsi.patch(f"{url}/scope", json={"value": "/x"}))
    assert ngsi.delete(f"{url}/scope").status_code == 204
    assert "scope" not in _get(ngsi).json()
    assert ngsi.delete(f"{url}/scope").status_code == 404


def test_writes_that_name_no_entity_are_bad_request_data(ngsi: Any) -> None:
    _assert_bad(ngsi.post(f"{BASE}/entities//attrs/", json={"name": prop("x")}))
    _assert_bad(ngsi.patch(f"{BASE}/entities//attrs/name", json={"value": "x"}))
    _assert_bad(ngsi.delete(f"{BASE}/entities//attrs/name"))


def test_update_adds_an_instance_with_a_new_dataset_id_but_never_deletes_one_by_null(ngsi: Any) -> None:
    assert _create(ngsi, entity(temperature=prop(20))).status_code == 201
    _assert_bad(ngsi.patch(f"{BASE}/entities/{E1}/attrs/temperature", json={"datasetId": NULL}))
    extra = "urn:ngsi-ld:Dataset:extra"
    assert ngsi.patch(f"{BASE}/entities/{E1}/attrs", json={"temperature": prop(30, datasetId=extra)}).status_code == 204
    assert _get(ngsi).json()["temperature"] == [prop(20), prop(30, datasetId=extra)]
