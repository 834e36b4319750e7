"""Which entities a query selects and in what order: scopeQ, type selection, orderBy with collation and
distance, pagination links, geo-query and Query body validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import City
from tests.context.conftest import BASE, point, prop
from wecity.context.scopeq import compile_scope_q
from wecity.core.errors import ValidationFailed

BAD = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


@pytest.mark.parametrize(("q", "scope", "expected"), [
    ("/Madrid/Gardens", "/Madrid/Gardens", True), ("/Madrid/Gardens", "/Madrid/Gardens/North", False),
    ("/Madrid/+/North", ["/Madrid/Gardens/North"], True), ("/Madrid/+", "/Madrid/Gardens/North", False),
    ("/Madrid/#", "/Madrid", True), ("/Madrid/#", "/Madrid/Gardens/North", True), ("/Madrid/#", "/Madri", False),
    ("/#", "/x", True), ("/#", None, False), ("/a;/b", ["/a", "/b"], True), ("/a;/b", ["/a"], False),
    ("/a,/b", "/b", True), ("/a|/b", "/b", True), ("(/a;/b)|/c", "/c", True), ("(/a;/b)|/c", ["/a"], False),
    ("(/a;/c)", ["/a", "/b"], False),
])
def test_scope_query_language(q: str, scope: Any, expected: bool) -> None:
    assert compile_scope_q(q)(scope) is expected


@pytest.mark.parametrize("q", ["", "Madrid", "/a;;/b", "(/a", "/a)", "/a b", "/a/#/b"])
def test_malformed_scope_queries_are_bad_request_data(q: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        compile_scope_q(q)
    assert info.value.code == "ngsild.bad_request_data"


def _ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def _seed(ngsi: Any) -> None:
    items = [
        {"id": "urn:ngsi-ld:Shop:1", "type": "Shop", "scope": ["/Changsha/Yuelu", "/CompanyA"],
         "name": prop("b", rank=prop(2)), "location": point(112.94, 28.23)},
        {"id": "urn:ngsi-ld:Shop:2", "type": "Shop", "scope": "/Changsha/Furong/Wuyi",
         "name": prop("A", rank=prop(3)), "location": point(112.99, 28.20), "score": prop(5)},
        {"id": "urn:ngsi-ld:Shop:3", "type": ["Shop", "Cafe"], "name": prop("á", rank=prop(1)),
         "location": point(113.10, 28.10), "score": prop("abc")},
    ]
    assert ngsi.post(f"{BASE}/entityOperations/create", json=items).status_code == 201


def test_scope_and_type_selection(ngsi: Any) -> None:
    _seed(ngsi)
    get = lambda **p: ngsi.get(f"{BASE}/entities", params={"type": "Shop", **p})  # noqa: E731
    assert _ids(get(scopeQ="/Changsha/#")) == ["urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Shop:2"]
    assert _ids(get(scopeQ="/Changsha/+/Wuyi")) == ["urn:ngsi-ld:Shop:2"]
    assert _ids(get(scopeQ="(/Changsha/Yuelu;/CompanyA)|/Nowhere")) == ["urn:ngsi-ld:Shop:1"]
    assert _ids(get(scopeQ="/Changsha/Yuelu;/Nowhere")) == []
    assert get(scopeQ="Changsha").status_code == 400
    assert _ids(get(type="(Shop;Cafe)")) == ["urn:ngsi-ld:Shop:3"]
    assert _ids(get(type="Cafe,Shop", idPattern="Shop:[12]$")) == ["urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Shop:2"]
    assert len(_ids(get(type="*"))) >= 3
    assert get(type="*", local="false").json()["type"] == BAD
    assert get(attrs="id,type").json()["type"] == BAD


def test_order_by(ngsi: Any) -> None:
    _seed(ngsi)
    get = lambda **p: _ids(ngsi.get(f"{BASE}/entities", params={"type": "Shop", **p}))  # noqa: E731
    one, two, three = (f"urn:ngsi-ld:Shop:{i}" for i in (1, 2, 3))
    assert get(orderBy="name") == [two, one, three]  # code point order: "A" < "b" < "á"
    assert get(orderBy="name", collation="und") == [two, three, one]  # root collation: á ranks with a
    assert get(orderBy="name;desc") == [three, one, two]
    assert get(orderBy="name.rank;desc") == [two, one, three]
    assert get(orderBy="id;desc") == [three, two, one]
    assert get(orderBy="score") == [two, three, one]  # numbers, then strings, then absent
    assert get(orderBy="score;desc") == [three, two, one]  # absent stays last
    assert get(orderBy="type,name.rank") == [three, one, two]
    assert get(orderBy="location;dist-asc", orderFrom="[113.1,28.1]") == [three, two, one]
    assert get(orderBy="location;dist-desc", orderFrom="[113.1,28.1]") == [one, two, three]
    assert get(orderBy="name", limit=1, offset=1) == [one]
    for params in ({"orderBy": "location;dist-asc"}, {"orderBy": "name", "collation": "!!nope"},
                   {"orderBy": "name;sideways"}, {"orderBy": "id;dist-asc", "orderFrom": "[1,2]"}):
        r = ngsi.get(f"{BASE}/entities", params={"type": "Shop", **params})
        assert r.status_code == 400 and r.json()["type"] == BAD, params


def test_pagination_links(ngsi: Any) -> None:
    _seed(ngsi)

    def links(**p: Any) -> list[str]:
        r = ngsi.get(f"{BASE}/entities", params={"type": "Shop", **p})
        assert r.status_code == 200
        return [x.strip() for x in r.headers["link"].split(",") if "json-ld#context" not in x]

    path = f"{BASE}/entities"
    assert links(limit=1) == [f'<{path}?limit=1&offset=1&type=Shop>; rel="next"; type="application/json"']
    assert links(limit=1, offset=1) == [f'<{path}?limit=1&offset=0&type=Shop>; rel="prev"; type="application/json"',
                                        f'<{path}?limit=1&offset=2&type=Shop>; rel="next"; type="application/json"']
    assert links(limit=2, offset=2, q="name") == [
        f'<{path}?limit=2&offset=0&q=name&type=Shop>; rel="prev"; type="application/json"']
    assert links(limit=5) == []


@pytest.mark.parametrize("georel", ["near;maxDistance==0", "near;maxDistance==-100", "near;maxDistance==inf",
                                    "near;maxDistance==1e400", "near;maxDistance==5;minDistance==1", "near"])
def test_bad_distances_are_rejected(ngsi: Any, georel: str) -> None:
    r = ngsi.get(f"{BASE}/entities", params={"type": "Shop", "georel": georel, "geometry": "Point",
                                             "coordinates": "[113,28]"})
    assert r.status_code == 400 and r.json()["type"] == BAD


def test_query_body(ngsi: Any) -> None:
    _seed(ngsi)
    post = lambda body: ngsi.post(f"{BASE}/entityOperations/query", json={"type": "Query", **body})  # noqa: E731
    shop = {"type": "Shop"}
    assert _ids(post({"entities": [{**shop, "id": ["urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Shop:3"]}]})) == [
        "urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Shop:3"]
    # id takes precedence over idPattern
    assert _ids(post({"entities": [{**shop, "id": "urn:ngsi-ld:Shop:1", "idPattern": "Shop:2$"}]})) == [
        "urn:ngsi-ld:Shop:1"]
    assert _ids(post({"entities": [{**shop, "id": "urn:ngsi-ld:Shop:1"}, {"type": "Cafe"}]})) == [
        "urn:ngsi-ld:Shop:1", "urn:ngsi-ld:Shop:3"]
    assert _ids(post({"entities": [shop], "scopeQ": "/CompanyA"})) == ["urn:ngsi-ld:Shop:1"]
    assert _ids(post({"entities": [shop], "ordering": {"orderBy": ["name;asc"], "collation": "de"}})) == [
        "urn:ngsi-ld:Shop:2", "urn:ngsi-ld:Shop:3", "urn:ngsi-ld:Shop:1"]
    assert _ids(post({"entities": [shop], "geoQ": {"georel": "near;maxDistance==3000", "geometry": "Point",
                                                   "coordinates": [112.94, 28.23]}})) == ["urn:ngsi-ld:Shop:1"]
    for body in ({"entities": []}, {"entities": [{"id": "urn:ngsi-ld:Shop:1"}]}, {"entities": [shop], "attrs": []},
                 {"entities": [{**shop, "id": ["urn:ngsi-ld:Shop:1", 5]}]},
                 {"entities": [shop], "joinLevel": 0},
                 {"entities": [shop], "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}},
                 {"entities": [shop], "ordering": {"orderBy": ["location;dist-asc"]}},
                 {"entities": [shop], "ordering": {"orderBy": ["location;dist-asc"], "coordinates": "8,40"}},
                 {"entities": [shop], "ordering": {"orderBy": ["id;asc"], "geometry": 5}},
                 {"entities": [shop], "ordering": {"orderBy": ["id"], "collation": "not a tag!!"}},
                 {"entities": [shop], "geoQ": {"georel": "near;maxDistance==10", "geometry": "Point",
                                               "coordinates": "8"}}):
        r = post(body)
        assert r.status_code == 400 and r.json()["type"] == BAD, body


def test_query_language_on_language_maps_relationships_and_vocab(ngsi: Any) -> None:
    items = [
        {"id": "urn:ngsi-ld:Shop:1", "type": "Shop", "color": {"type": "LanguageProperty",
                                                              "languageMap": {"en": "red", "fr": "rouge"}},
         "category": {"type": "VocabProperty", "vocab": "commercial"},
         "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:Office:1"}},
        {"id": "urn:ngsi-ld:Office:1", "type": "Office", "name": prop("天心区办公室"),
         "partOf": {"type": "Relationship", "object": "urn:ngsi-ld:Office:2"}},
        {"id": "urn:ngsi-ld:Office:2", "type": "Office", "name": prop("长沙市")},
    ]
    assert ngsi.post(f"{BASE}/entityOperations/create", json=items).status_code == 201

    def count(q: str, **extra: Any) -> int:
        return len(_ids(ngsi.get(f"{BASE}/entities", params={"type": "Shop", "q": q, **extra})))

    assert count('color[en]=="red"') == 1
    assert count('color[en]=="rouge"') == 0
    assert count('color[*]=="rouge"') == 1
    assert count('color[*]!="red"') == 0
    assert count('managedBy>"urn:a"') == 0  # ordering operators never match a Relationship
    assert count('managedBy=="urn:ngsi-ld:Office:1"') == 1
    assert count("category==commercial") == 0  # vocab values are IRIs
    assert count("category==commercial", expandValues="category") == 1
    assert count('managedBy{name}=="天心区办公室"', join="inline") == 1
    assert count('managedBy{Office:name}=="天心区办公室"', join="inline") == 1
    assert count('managedBy{Shop:name}=="天心区办公室"', join="inline") == 0
    assert count('managedBy{partOf{name}}=="长沙市"', join="inline", joinLevel="2") == 1
    for params in ({"q": 'managedBy{name}=="x"'}, {"q": 'managedBy{partOf{name}}=="x"', "join": "inline"},
                   {"q": "name>4..5"}, {"csf": "))bad(("}):
        r = ngsi.get(f"{BASE}/entities", params={"type": "Shop", **params})
        assert r.status_code == 400 and r.json()["type"] == BAD, params
    for params in ({"attrs": "createdAt"}, {"q": 'modifiedAt>"2020-01-01T00:00:00Z"'}, {"id": "urn:ngsi-ld:Shop:1"}):
        r = ngsi.get(f"{BASE}/entities", params=params)
        assert r.status_code == 400 and r.json()["type"] == BAD, params


def test_order_by_entity_members_pages_in_the_database(city: City, ngsi: Any) -> None:
    ids = ["urn:ngsi-ld:Shop:b", "urn:ngsi-ld:Shop:B", "urn:ngsi-ld:Shop:a", "urn:ngsi-ld:Shop:_"]
    for i in ids:  # a second apart, so creation order is the order above
        assert ngsi.post(f"{BASE}/entities", json={"id": i, "type": "Shop"}).status_code == 201
        city.clock.advance(seconds=1)
    get = lambda **p: _ids(ngsi.get(f"{BASE}/entities", params={"type": "Shop", **p}))  # noqa: E731
    by_code_point = sorted(ids)
    assert get(orderBy="id") == by_code_point
    assert get(orderBy="id;desc") == by_code_point[::-1]
    assert get(orderBy="id", limit=2, offset=1) == by_code_point[1:3]
    assert get(orderBy="createdAt;desc") == ids[::-1]
    assert get(orderBy="type,id;desc", limit=1) == [by_code_point[-1]]
