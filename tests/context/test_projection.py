"""Entity projection (pick, omit), linked entity retrieval (join, joinLevel, containedBy) and the
format/options parameters of retrieval and query."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, entity, prop
from wecity.context.ldcontext import ContextStore
from wecity.context.projection import parse, project
from wecity.core.errors import ValidationFailed

TERMS = ContextStore().core
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


def rel(target: str) -> dict[str, Any]:
    return {"type": "Relationship", "object": target}


@pytest.mark.parametrize("text", ["id;name", "id,locatedAt{name", "id,locatedAt{{name}", "id,,name",
                                  "id,locatedAt{,name}", "id,locatedAt{}", "name||status", "", "a}"])
def test_malformed_projections_are_bad_request_data(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse(text, TERMS)
    assert caught.value.code == "ngsild.bad_request_data"


def test_projection_keeps_picked_members_and_drops_omitted_ones() -> None:
    rendered = {"id": "urn:x:1", "type": "T", "name": prop("a"), "status": prop("b"), "@context": "c"}
    assert project(rendered, parse("name|id", TERMS), None) == {"id": "urn:x:1", "name": prop("a"), "@context": "c"}
    assert project(rendered, None, parse("type,status", TERMS)) == {"id": "urn:x:1", "name": prop("a"), "@context": "c"}
    # A nested omit removes members of the linked entity, not the relationship itself.
    assert "status" in project(rendered, None, parse("status{name}", TERMS))
    assert parse("a{b{c}},d", TERMS).depth() == 2  # type: ignore[union-attr]


def _city(ngsi: Any) -> None:
    for body in (entity("urn:ngsi-ld:Manhole:1", name=prop("东门井盖"), status=prop("open"),
                        locatedAt=rel("urn:ngsi-ld:Street:1")),
                 {"id": "urn:ngsi-ld:Street:1", "type": "Street", "name": prop("五一大道"),
                  "inDistrict": rel("urn:ngsi-ld:District:1")},
                 {"id": "urn:ngsi-ld:District:1", "type": "District", "name": prop("芙蓉区"), "code": prop(430102)}):
        assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201


def test_retrieve_with_pick_and_omit(ngsi: Any) -> None:
    _city(ngsi)
    url = f"{BASE}/entities/urn:ngsi-ld:Manhole:1"
    assert ngsi.get(url, params={"pick": "name"}).json() == {"name": prop("东门井盖")}
    assert ngsi.get(url, params={"pick": "id,status"}).json() == {"id": "urn:ngsi-ld:Manhole:1", "status": prop("open")}
    omitted = ngsi.get(url, params={"omit": "id,type,locatedAt"}).json()
    assert omitted == {"name": prop("东门井盖"), "status": prop("open")}
    # Nothing left to show is ResourceNotFound, as is an attrs list the entity has none of.
    for params in ({"pick": "unknown"}, {"omit": "id,type,name,status,locatedAt"}, {"attrs": "unknown"}):
        response = ngsi.get(url, params=params)
        assert response.status_code == 404, params
        assert response.json()["type"] == ERRORS + "ResourceNotFound"


@pytest.mark.parametrize("params", [{"pick": "name", "omit": "name"}, {"pick": "name", "attrs": "status"},
                                    {"omit": "name", "attrs": "status"}, {"pick": "locatedAt{name}"},
                                    {"pick": "locatedAt{inDistrict{name}}", "join": "inline", "joinLevel": "1"},
                                    {"join": "inline", "joinLevel": "0"}, {"join": "sideways"}])
def test_inconsistent_projection_or_join_is_bad_request_data(ngsi: Any, params: dict[str, str]) -> None:
    _city(ngsi)
    response = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1", params=params)
    assert response.status_code == 400
    assert response.json()["type"] == ERRORS + "BadRequestData"


def test_inline_join_nests_linked_entities_with_their_projection(ngsi: Any) -> None:
    _city(ngsi)
    body = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1",
                    params={"join": "inline", "joinLevel": "2",
                            "pick": "id,locatedAt{name,inDistrict{code}}"}).json()
    assert body == {"id": "urn:ngsi-ld:Manhole:1", "locatedAt": {
        **rel("urn:ngsi-ld:Street:1"), "entity": {
            "name": prop("五一大道"), "inDistrict": {**rel("urn:ngsi-ld:District:1"),
                                                    "entity": {"code": prop(430102)}}}}}
    one_level = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1",
                         params={"join": "inline", "options": "keyValues", "pick": "locatedAt"}).json()
    assert one_level == {"locatedAt": {"id": "urn:ngsi-ld:Street:1", "type": "Street", "name": "五一大道",
                                       "inDistrict": "urn:ngsi-ld:District:1"}}


def test_flat_join_lists_each_linked_entity_once(ngsi: Any) -> None:
    _city(ngsi)
    assert ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:2",
                                                     locatedAt=rel("urn:ngsi-ld:Street:1"))).status_code == 201
    body = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "join": "flat", "joinLevel": "2",
                                                "omit": "name,status"}).json()
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2", "urn:ngsi-ld:Street:1",
                                       "urn:ngsi-ld:District:1"]
    assert "entity" not in body[0]["locatedAt"]
    # containedBy names entities already seen: they are not fetched again.
    seen = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1",
                    params={"join": "flat", "containedBy": "urn:ngsi-ld:Street:1"}).json()
    assert seen["id"] == "urn:ngsi-ld:Manhole:1"
    # A relationship whose target does not exist is shown as it is.
    assert ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:3",
                                                     locatedAt=rel("urn:ngsi-ld:Street:404"))).status_code == 201
    alone = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:3", params={"join": "inline"}).json()
    assert alone["locatedAt"] == rel("urn:ngsi-ld:Street:404")


def test_query_projection_drops_entities_left_empty_and_works_in_a_query_body(ngsi: Any) -> None:
    _city(ngsi)
    body = ngsi.get(f"{BASE}/entities", params={"type": "Manhole,Street", "pick": "status"}).json()
    assert body == [{"status": prop("open")}]
    posted = ngsi.post(f"{BASE}/entityOperations/query",
                       json={"type": "Query", "entities": [{"type": "Street"}], "omit": ["inDistrict", "type"]})
    assert posted.json() == [{"id": "urn:ngsi-ld:Street:1", "name": prop("五一大道")}]
    zero = ngsi.post(f"{BASE}/entityOperations/query",
                     json={"type": "Query", "entities": [{"type": "Street"}], "join": "inline", "joinLevel": 0})
    assert zero.status_code == 400


def test_format_wins_over_options_and_unknown_values_are_invalid_request(ngsi: Any) -> None:
    _city(ngsi)
    url = f"{BASE}/entities/urn:ngsi-ld:Street:1"
    assert ngsi.get(url, params={"format": "simplified"}).json()["name"] == "五一大道"
    assert ngsi.get(url, params={"options": "simplified"}).json()["name"] == "五一大道"
    assert ngsi.get(url, params={"format": "keyValues", "options": "normalized"}).json()["name"] == "五一大道"
    for params in ({"format": "fancy"}, {"options": "keyValues,fancy"}):
        response = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Street:404", params=params)
        assert response.status_code == 400
        assert response.json()["type"] == ERRORS + "InvalidRequest"


def test_geojson_feature_carries_the_context_and_the_chosen_geometry(ngsi: Any) -> None:
    body = entity("urn:ngsi-ld:Manhole:9", location={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.9, 28.2]}},
                  observationSpace={"type": "GeoProperty", "value": {"type": "Point", "coordinates": [113.0, 28.1]}},
                  name=prop("井"))
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    geo = {"Accept": "application/geo+json"}
    url = f"{BASE}/entities/urn:ngsi-ld:Manhole:9"
    feature = ngsi.get(url, headers=geo).json()
    assert feature["type"] == "Feature" and feature["geometry"]["coordinates"] == [112.9, 28.2]
    assert "id" not in feature["properties"] and feature["properties"]["type"] == "Manhole"
    assert feature["@context"]
    other = ngsi.get(url, headers=geo, params={"geometryProperty": "observationSpace", "options": "keyValues"}).json()
    assert other["geometry"]["coordinates"] == [113.0, 28.1] and other["properties"]["name"] == "井"
    assert ngsi.get(url, headers=geo, params={"geometryProperty": "name"}).json()["geometry"] is None
    collection = ngsi.get(f"{BASE}/entities", headers=geo, params={"type": "Manhole"}).json()
    assert collection["type"] == "FeatureCollection" and "@context" in collection
    assert all("@context" not in f for f in collection["features"])
    # geometryProperty means nothing outside GeoJSON.
    plain = ngsi.get(url, params={"geometryProperty": "location"})
    assert plain.status_code == 400 and plain.json()["type"] == ERRORS + "BadRequestData"


@pytest.mark.parametrize(("wanted", "lang", "value"), [
    ("fr;q=0.2,nl;q=0.9", "nl", "Grote Markt"), ("FR", "fr", "Grand Place"), ("nl-BE", "nl", "Grote Markt"),
    ("en", "en-US", "Main Square"), ("pt", "fr", "Grand Place"), ("*", "fr", "Grand Place"),
])
def test_language_filter_uses_quality_values_and_range_lookup(ngsi: Any, wanted: str, lang: str, value: str) -> None:
    square = {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt", "en-US": "Main Square"}}
    assert ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Square:1", street=square)).status_code == 201
    street = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Square:1", params={"lang": wanted}).json()["street"]
    assert street == {"type": "Property", "value": value, "lang": lang}
    simplified = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Square:1", params={"lang": wanted, "options": "keyValues"})
    assert simplified.json()["street"] == value


def test_expires_at_is_shown_with_sys_attrs_only(ngsi: Any) -> None:
    body = entity("urn:ngsi-ld:Manhole:7", expiresAt="2100-01-01T00:00:00Z",
                  speed=prop(7, expiresAt="2100-01-01T00:00:00Z"))
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    url = f"{BASE}/entities/urn:ngsi-ld:Manhole:7"
    assert "expiresAt" not in ngsi.get(url).text
    shown = ngsi.get(url, params={"options": "sysAttrs"}).json()
    assert shown["expiresAt"] == "2100-01-01T00:00:00Z" and shown["speed"]["expiresAt"] == "2100-01-01T00:00:00Z"
    history = ngsi.get(f"{BASE}/temporal/entities/urn:ngsi-ld:Manhole:7",
                       params={"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"})
    assert history.status_code == 200 and "expiresAt" not in history.text


def test_simplified_representation_per_attribute_type(ngsi: Any) -> None:
    body = entity("urn:ngsi-ld:Manhole:5",
                  label={"type": "LanguageProperty", "languageMap": {"zh": "井盖", "en": "manhole"}},
                  spec={"type": "JsonProperty", "json": {"a": 1}}, material={"type": "VocabProperty", "vocab": "iron"},
                  depths={"type": "ListProperty", "valueList": [1.2, 3.4]},
                  owner={"type": "Relationship", "object": "urn:ngsi-ld:Dept:1"},
                  route={"type": "ListRelationship", "objectList": ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]})
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    simple = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:5", params={"options": "keyValues"}).json()
    assert simple["label"] == {"languageMap": {"zh": "井盖", "en": "manhole"}}
    assert simple["spec"] == {"json": {"a": 1}} and simple["material"] == {"vocab": "iron"}
    assert simple["depths"] == [1.2, 3.4] and simple["owner"] == "urn:ngsi-ld:Dept:1"
    assert simple["route"] == ["urn:ngsi-ld:Road:1", "urn:ngsi-ld:Road:2"]
    normalized = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:5").json()
    assert normalized["route"]["objectList"] == [{"object": "urn:ngsi-ld:Road:1"}, {"object": "urn:ngsi-ld:Road:2"}]


def test_join_stops_at_entities_already_on_the_path(ngsi: Any) -> None:
    for me, other in (("urn:ngsi-ld:Manhole:A", "urn:ngsi-ld:Manhole:B"), ("urn:ngsi-ld:Manhole:B", "urn:ngsi-ld:Manhole:A")):
        assert ngsi.post(f"{BASE}/entities", json=entity(me, next=rel(other))).status_code == 201
    inline = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:A", params={"join": "inline", "joinLevel": "5"}).json()
    assert inline["next"]["entity"]["id"] == "urn:ngsi-ld:Manhole:B"
    assert "entity" not in inline["next"]["entity"]["next"]
    flat = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:A", params={"join": "flat", "joinLevel": "5"}).json()
    assert [e["id"] for e in flat] == ["urn:ngsi-ld:Manhole:A", "urn:ngsi-ld:Manhole:B"]


def test_dataset_selection_keeps_the_named_instances() -> None:
    from wecity.context.projection import select_datasets

    name = [prop("Eiffel Tower"), prop("Tour Eiffel", datasetId="urn:ngsi-ld:Dataset:fr"),
            prop("Torre Eiffel", datasetId="urn:ngsi-ld:Dataset:es")]
    attrs = {"n": name, "h": prop(300)}
    assert select_datasets(attrs, frozenset({"@none"})) == {"n": name[0], "h": prop(300)}
    assert select_datasets(attrs, frozenset({"urn:ngsi-ld:Dataset:fr", "urn:ngsi-ld:Dataset:es"})) == {"n": name[1:]}
    assert select_datasets(attrs, frozenset({"urn:ngsi-ld:Dataset:de"})) == {}


def test_query_with_dataset_id_shows_only_those_instances(ngsi: Any) -> None:
    body = entity("urn:ngsi-ld:Manhole:8", name=prop("井", datasetId="urn:ngsi-ld:Dataset:zh"), depth=prop(2))
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    got = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "datasetId": "urn:ngsi-ld:Dataset:zh"}).json()
    assert got == [{"id": "urn:ngsi-ld:Manhole:8", "type": "Manhole", "name": prop("井", datasetId="urn:ngsi-ld:Dataset:zh")}]
    default = ngsi.post(f"{BASE}/entityOperations/query", json={"type": "Query", "entities": [{"type": "Manhole"}],
                                                                "datasetId": ["@none"]}).json()
    assert default == [{"id": "urn:ngsi-ld:Manhole:8", "type": "Manhole", "depth": prop(2)}]


def test_geojson_geometry_is_the_default_instance_of_a_multi_attribute(ngsi: Any) -> None:
    gps = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [9.0, 9.0]}, "datasetId": "urn:ngsi-ld:Dataset:gps"}
    body = entity("urn:ngsi-ld:Manhole:6", location=[gps, {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1.0, 2.0]}}],
                  speed=[prop(55), prop(11, datasetId="urn:ngsi-ld:Dataset:gps")])
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    geo = {"Accept": "application/geo+json"}
    url = f"{BASE}/entities/urn:ngsi-ld:Manhole:6"
    assert ngsi.get(url, headers=geo).json()["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0]}
    simple = ngsi.get(url, headers=geo, params={"options": "keyValues"}).json()
    assert simple["geometry"] == {"type": "Point", "coordinates": [1.0, 2.0]}
    assert simple["properties"]["speed"] == {"dataset": {"@none": 55, "urn:ngsi-ld:Dataset:gps": 11}}
    assert sorted(simple["properties"]["location"]["dataset"]) == ["@none", "urn:ngsi-ld:Dataset:gps"]
    only_gps = ngsi.get(url, params={"datasetId": "urn:ngsi-ld:Dataset:gps", "pick": "speed"})
    assert only_gps.json() == {"speed": prop(11, datasetId="urn:ngsi-ld:Dataset:gps")}
