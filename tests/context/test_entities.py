"""Entity and attribute endpoints: create, retrieve, replace, merge, delete, attributes, representations."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, CORE, LD, entity, point, prop

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
E1 = "urn:ngsi-ld:Manhole:1"


def _create(ngsi: Any, body: dict[str, Any], **kw: Any) -> Any:
    return ngsi.post(f"{BASE}/entities", json=body, **kw)


def test_create_then_retrieve_normalized_with_core_link(ngsi: Any) -> None:
    r = _create(ngsi, entity(tiltAngle=prop(3.5, unitCode="DD"), location=point(112.98, 28.2)))
    assert r.status_code == 201
    assert r.headers["location"] == f"{BASE}/entities/{E1}"
    r = ngsi.get(f"{BASE}/entities/{E1}")
    assert r.status_code == 200
    assert CORE in r.headers["link"]
    assert r.json() == {"id": E1, "type": "Manhole", "tiltAngle": {"type": "Property", "value": 3.5, "unitCode": "DD"},
                        "location": point(112.98, 28.2)}


def test_creating_an_existing_entity_is_already_exists(ngsi: Any) -> None:
    assert _create(ngsi, entity(tiltAngle=prop(1))).status_code == 201
    r = _create(ngsi, entity(tiltAngle=prop(2)))
    assert r.status_code == 409
    assert r.json()["type"] == ERR + "AlreadyExists"
    assert ngsi.get(f"{BASE}/entities/{E1}").json()["tiltAngle"]["value"] == 1


def test_bad_entities_are_bad_request_data_and_nothing_is_written(ngsi: Any) -> None:
    for body in ({"id": "not a uri", "type": "Manhole"}, {"id": E1}, entity(tiltAngle={"type": "Property"}),
                 entity(owner={"type": "Relationship", "object": "nope"}),
                 entity(location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}),
                 entity(**{"bad=name": prop(1)}), entity(tiltAngle=prop(1, observedAt="yesterday"))):
        r = _create(ngsi, body)
        assert r.status_code == 400, body
        assert r.json()["type"] == ERR + "BadRequestData"
        assert r.json()["title"] and r.json()["detail"]
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "count": "true"}).headers["ngsild-results-count"] == "0"


def test_malformed_json_is_invalid_request_and_other_media_types_are_415(ngsi: Any) -> None:
    r = ngsi.post(f"{BASE}/entities", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == ERR + "InvalidRequest"
    r = ngsi.post(f"{BASE}/entities", content=b"{}", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_problem_title_follows_accept_language(ngsi: Any) -> None:
    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:404", headers={"accept-language": "en"})
    assert r.status_code == 404
    assert r.json()["type"] == ERR + "ResourceNotFound"
    assert "not found" in r.json()["title"]
    r = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:404", headers={"accept-language": "zh-CN"})
    assert "不存在" in r.json()["title"]


def test_ld_json_body_context_and_link_rules(ngsi: Any) -> None:
    ctx = {"tilt": "https://example.org/manhole#tiltAngle"}
    body = entity(tilt=prop(7)) | {"@context": [ctx, CORE]}
    r = ngsi.post(f"{BASE}/entities", json=body, headers={"content-type": LD})
    assert r.status_code == 201
    # Without that context the attribute is known by its full IRI; with it, by its short name.
    plain = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert "https://example.org/manhole#tiltAngle" in plain
    r = ngsi.get(f"{BASE}/entities/{E1}", headers={"accept": LD})
    assert r.headers["content-type"].startswith(LD)
    assert r.json()["@context"] == CORE
    # @context in an application/json body, or ld+json without one, is refused.
    assert _create(ngsi, entity("urn:ngsi-ld:Manhole:2") | {"@context": CORE}).status_code == 400
    r = ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:3"), headers={"content-type": LD})
    assert r.status_code == 400


def test_representations_keyvalues_concise_sysattrs_and_attrs(ngsi: Any) -> None:
    _create(ngsi, entity(tiltAngle=prop(3, observedAt="2026-11-02T08:00:00Z"), name=prop("东门"),
                         near={"type": "Relationship", "object": "urn:ngsi-ld:Road:1"}, location=point(112.9, 28.1)))
    kv = ngsi.get(f"{BASE}/entities/{E1}", params={"options": "keyValues"}).json()
    assert kv == {"id": E1, "type": "Manhole", "tiltAngle": 3, "name": "东门", "near": "urn:ngsi-ld:Road:1",
                  "location": {"type": "Point", "coordinates": [112.9, 28.1]}}
    concise = ngsi.get(f"{BASE}/entities/{E1}", params={"options": "concise"}).json()
    assert concise["name"] == "东门"
    assert concise["tiltAngle"] == {"value": 3, "observedAt": "2026-11-02T08:00:00Z"}
    assert concise["near"] == {"object": "urn:ngsi-ld:Road:1"}
    sys = ngsi.get(f"{BASE}/entities/{E1}", params={"options": "sysAttrs", "attrs": "name"}).json()
    assert set(sys) == {"id", "type", "createdAt", "modifiedAt", "name"}
    assert sys["name"]["createdAt"].endswith("Z")
    assert ngsi.get(f"{BASE}/entities/{E1}", params={"options": "bogus"}).status_code == 400


def test_concise_input_is_accepted(ngsi: Any) -> None:
    body = {"id": E1, "type": "Manhole", "tiltAngle": 4, "depth": {"value": 1.2, "unitCode": "MTR"},
            "location": {"type": "Point", "coordinates": [112.9, 28.1]}, "road": {"object": "urn:ngsi-ld:Road:9"}}
    assert _create(ngsi, body).status_code == 201
    got = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert got["tiltAngle"] == prop(4)
    assert got["depth"] == prop(1.2, unitCode="MTR")
    assert got["location"] == point(112.9, 28.1)
    assert got["road"] == {"type": "Relationship", "object": "urn:ngsi-ld:Road:9"}


def test_replace_and_delete_entity(ngsi: Any) -> None:
    _create(ngsi, entity(tiltAngle=prop(1), depth=prop(2)))
    r = ngsi.put(f"{BASE}/entities/{E1}", json={"type": "Manhole", "depth": prop(9)})
    assert r.status_code == 204
    assert ngsi.get(f"{BASE}/entities/{E1}").json() == {"id": E1, "type": "Manhole", "depth": prop(9)}
    assert ngsi.delete(f"{BASE}/entities/{E1}").status_code == 204
    assert ngsi.get(f"{BASE}/entities/{E1}").status_code == 404
    assert ngsi.delete(f"{BASE}/entities/{E1}").status_code == 404


def test_append_update_partial_update_and_delete_attribute(ngsi: Any) -> None:
    _create(ngsi, entity(tiltAngle=prop(1, unitCode="DD")))
    attrs = f"{BASE}/entities/{E1}/attrs"
    assert ngsi.post(attrs, json={"depth": prop(2)}).status_code == 204
    r = ngsi.post(attrs, params={"options": "noOverwrite"}, json={"depth": prop(3), "lid": prop("iron")})
    assert r.status_code == 207
    # A 207 body is plain JSON without a @context: the names are the full IRIs.
    vocab = "https://uri.etsi.org/ngsi-ld/default-context/"
    assert r.json() == {"updated": [vocab + "lid"],
                        "notUpdated": [{"attributeName": vocab + "depth", "reason": r.json()["notUpdated"][0]["reason"]}]}
    r = ngsi.patch(attrs, json={"depth": prop(5), "cover": prop("new")})  # an attribute not there yet is appended
    assert r.status_code == 204
    assert ngsi.get(f"{BASE}/entities/{E1}").json()["cover"] == prop("new")
    r = ngsi.patch(attrs, json={"depth": prop(5), "missing": {"type": "Property", "value": "urn:ngsi-ld:null"}})
    assert r.status_code == 207 and r.json()["updated"] == [vocab + "depth"]  # nothing to delete: not updated
    assert ngsi.patch(f"{attrs}/tiltAngle", json={"value": 17}).status_code == 204
    got = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert got["tiltAngle"] == prop(17, unitCode="DD")  # partial update keeps the unit
    assert got["depth"]["value"] == 5 and got["lid"]["value"] == "iron"
    assert ngsi.patch(f"{attrs}/nothing", json={"value": 1}).status_code == 404
    assert ngsi.put(f"{attrs}/lid", json=prop("steel")).status_code == 204
    assert ngsi.delete(f"{attrs}/lid").status_code == 204
    assert ngsi.delete(f"{attrs}/lid").status_code == 404
    assert "lid" not in ngsi.get(f"{BASE}/entities/{E1}").json()
    assert ngsi.post(f"{BASE}/entities/urn:ngsi-ld:Manhole:9/attrs", json={"a": prop(1)}).status_code == 404


def test_merge_entity_patch(ngsi: Any) -> None:
    _create(ngsi, entity(tiltAngle=prop(1)))
    assert ngsi.patch(f"{BASE}/entities/{E1}", json={"depth": prop(2), "tiltAngle": prop(3)}).status_code == 204
    got = ngsi.get(f"{BASE}/entities/{E1}", params={"options": "keyValues"}).json()
    assert got["tiltAngle"] == 3 and got["depth"] == 2


def test_tenants_are_isolated(ngsi: Any) -> None:
    a, b = {"NGSILD-Tenant": "changsha"}, {"NGSILD-Tenant": "other"}
    assert _create(ngsi, entity(tiltAngle=prop(1)), headers=a).status_code == 201
    assert _create(ngsi, entity(tiltAngle=prop(2)), headers=b).status_code == 201
    assert ngsi.get(f"{BASE}/entities/{E1}", headers=a).json()["tiltAngle"]["value"] == 1
    assert ngsi.get(f"{BASE}/entities/{E1}", headers=b).json()["tiltAngle"]["value"] == 2
    assert ngsi.get(f"{BASE}/entities/{E1}").status_code == 404
    assert ngsi.delete(f"{BASE}/entities/{E1}", headers=a).status_code == 204
    assert ngsi.get(f"{BASE}/entities/{E1}", headers=b).status_code == 200
    assert ngsi.get(f"{BASE}/entities/{E1}", headers={"NGSILD-Tenant": "bad tenant!"}).status_code == 400


def test_types_lists_entity_types(ngsi: Any) -> None:
    _create(ngsi, entity(tiltAngle=prop(1)))
    _create(ngsi, {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "status": prop("on")})
    body = ngsi.get(f"{BASE}/types").json()
    assert body["type"] == "EntityTypeList" and sorted(body["typeList"]) == ["Manhole", "Streetlight"]


def test_ids_with_invisible_characters_are_refused_and_unicode_iris_work(ngsi: Any) -> None:
    for bad in ("urn:ngsi-ld:Manhole:\u200bx", "urn:ngsi-ld:Manhole:\ufeffx", "urn:ngsi-ld:Manhole:a b"):
        r = _create(ngsi, entity(bad))
        assert r.status_code == 400, bad
    r = _create(ngsi, entity("urn:ngsi-ld:Manhole:五一广场"))
    assert r.status_code == 201
    assert r.headers["location"] == f"{BASE}/entities/urn:ngsi-ld:Manhole:%E4%BA%94%E4%B8%80%E5%B9%BF%E5%9C%BA"
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:五一广场").status_code == 200


def test_geojson_is_offered_for_entities_only(ngsi: Any) -> None:
    geo = {"accept": "application/geo+json"}
    assert _create(ngsi, entity(location=point(112.98, 28.2))).status_code == 201
    assert ngsi.post(f"{BASE}/jsonldContexts", json={"@context": {"tilt": "https://example.org/tilt"}}).status_code == 201
    r = ngsi.get(f"{BASE}/entities/{E1}", headers=geo)
    assert r.status_code == 200 and r.json()["geometry"]["type"] == "Point"
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=geo).json()["type"] == "FeatureCollection"
    # A list of @context URLs, subscriptions or types are no entities: GeoJSON is not acceptable there.
    for path in ("/jsonldContexts", "/subscriptions", "/types"):
        r = ngsi.get(f"{BASE}{path}", headers=geo)
        assert r.status_code == 406, path
        assert r.json()["type"] == ERR + "InvalidRequest"
    r = ngsi.get(f"{BASE}/jsonldContexts", headers={"accept": "application/geo+json, application/json;q=0.5"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"', '{"\\udc00": 1}'])
def test_what_json_has_not_is_refused_before_it_is_stored(ngsi: Any, value: str) -> None:
    # NaN and infinities were stored as null on SQLite and made PostgreSQL fail (a 500); a lone surrogate
    # was stored, and from then on no response holding the entity could be encoded (a 500 on every query).
    body = '{"id": "urn:ngsi-ld:Manhole:1", "type": "Manhole", "tiltAngle": {"type": "Property", "value": VALUE}}'
    body = body.replace("VALUE", value)
    json_ = {"content-type": "application/json"}
    writes = [ngsi.post(f"{BASE}/entities", content=body, headers=json_),
              ngsi.post(f"{BASE}/entityOperations/upsert", content=f"[{body}]", headers=json_),
              ngsi.post(f"{BASE}/temporal/entities", content=body.replace('"tiltAngle": {', '"tiltAngle": [{')[:-1] + "]}",
                        headers=json_)]
    for r in writes:
        assert r.status_code == 400, (r.request.url.path, r.text)
        assert r.json()["type"] == ERR + "InvalidRequest"
    assert _create(ngsi, entity(tiltAngle=prop(1))).status_code == 201
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", content='{"value": ' + value + "}", headers=json_)
    assert r.status_code == 400
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"})
    assert r.status_code == 200 and r.json()[0]["tiltAngle"] == prop(1)
