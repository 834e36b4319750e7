"""The NGSI-LD query language and entity queries: type, id, idPattern, attrs, q, paging and count."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, entity, prop
from wecity.context.ldcontext import ContextStore
from wecity.context.query import compile_q
from wecity.core.errors import ValidationFailed

TERMS = ContextStore().core
V = TERMS.vocab


def attrs(**values: Any) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        out[TERMS.expand(name)] = value if isinstance(value, dict) and "type" in value else prop(value)
    return out


DOC = attrs(temperature=21.5, name="东门井盖", status="open", tags=["a", "b"],
            address={"type": "Property", "value": {"city": "长沙", "street": {"no": 12}}},
            seen={"type": "Property", "value": 1, "observedAt": "2026-11-02T08:00:00Z",
                  V + "accuracy": prop(0.5)},
            owner={"type": "Relationship", "object": "urn:ngsi-ld:Dept:1"},
            when="2026-11-01T00:00:00Z")


@pytest.mark.parametrize(("q", "expected"), [
    ("temperature==21.5", True), ("temperature!=21.5", False), ("temperature>20", True),
    ("temperature>=21.5", True), ("temperature<21.5", False), ("temperature<=21.5", True),
    ("temperature==20..22", True), ("temperature==22..30", False), ("temperature!=22..30", True),
    ("status==\"open\",\"closed\"", True), ("status==closed,broken", False),
    ('name~="^东门"', True), ('name!~="^西门"', True), ("temperature>20;status==\"closed\"", False),
    ("temperature>30|status==\"open\"", True), ("(temperature>30|status==\"open\");name~=\"井\"", True),
    ("(temperature>30|status==\"closed\");name~=\"井\"", False),
    ("address[city]==\"长沙\"", True), ("address[street.no]==12", True), ("address[street][no]>12", False),
    ("seen.observedAt>=\"2026-11-01T00:00:00Z\"", True), ("seen.accuracy<1", True),
    ("owner==\"urn:ngsi-ld:Dept:1\"", True), ("tags==\"b\"", True), ("when<2026-11-02T00:00:00Z", True),
    ("temperature", True), ("missing", False), ("!missing", True), ("!temperature", False),
    ("missing==1", False), ("missing!=1", False), ("status>5", False),
])
def test_query_language(q: str, expected: bool) -> None:
    assert compile_q(q, TERMS)(DOC) is expected


@pytest.mark.parametrize("q", ["", "temperature>>1", "temperature==", "(temperature>1", "name~=\"[\"",
                               "temperature>1)", "a b==1"])
def test_malformed_queries_are_bad_request_data(q: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        compile_q(q, TERMS)
    assert info.value.code == "ngsild.bad_request_data"


def _seed(ngsi: Any) -> None:
    items = [entity(f"urn:ngsi-ld:Manhole:{i}", tiltAngle=prop(i * 5)) for i in range(6)]
    items.append({"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight", "status": prop("on")})
    items.append({"id": "urn:ngsi-ld:Hybrid:1", "type": ["Streetlight", "Camera"], "status": prop("off")})
    assert ngsi.post(f"{BASE}/entityOperations/create", json=items).status_code == 201


def _ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [e["id"] for e in r.json()]


def test_query_by_type_id_pattern_attrs_and_q(ngsi: Any) -> None:
    _seed(ngsi)
    get = lambda **p: ngsi.get(f"{BASE}/entities", params=p)  # noqa: E731
    assert len(_ids(get(type="Manhole"))) == 6
    assert _ids(get(type="Camera")) == ["urn:ngsi-ld:Hybrid:1"]
    assert sorted(_ids(get(type="Streetlight,Camera"))) == ["urn:ngsi-ld:Hybrid:1", "urn:ngsi-ld:Streetlight:1"]
    assert _ids(get(type="Manhole", id="urn:ngsi-ld:Manhole:2,urn:ngsi-ld:Manhole:3")) == [
        "urn:ngsi-ld:Manhole:2", "urn:ngsi-ld:Manhole:3"]
    assert _ids(get(type="Manhole", idPattern=r"urn:ngsi-ld:Manhole:[45]")) == ["urn:ngsi-ld:Manhole:4",
                                                                                "urn:ngsi-ld:Manhole:5"]
    # ids alone are not enough to query by (clause 5.7.2: a type, attrs, q or a geo-query is needed)
    assert get(id="urn:ngsi-ld:Manhole:2").status_code == 400
    assert len(_ids(get(attrs="status"))) == 2
    assert _ids(get(type="Manhole", q="tiltAngle>15")) == ["urn:ngsi-ld:Manhole:4", "urn:ngsi-ld:Manhole:5"]
    r = get(type="Manhole", q="tiltAngle>=0", limit=2, offset=1, count="true")
    assert _ids(r) == ["urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2"]
    assert r.headers["ngsild-results-count"] == "6"
    r = get(type="Manhole", limit=0, count="true")
    assert r.json() == [] and r.headers["ngsild-results-count"] == "6"
    assert "ngsild-results-count" not in get(type="Manhole").headers


def test_query_errors(ngsi: Any) -> None:
    err = "https://uri.etsi.org/ngsi-ld/errors/"
    for params in ({"type": "Manhole", "q": "tiltAngle>"}, {"type": "Manhole", "limit": "-1"},
                   {"type": "Manhole", "limit": "x"}, {"type": "Manhole", "idPattern": "("},
                   {"type": "Manhole", "id": "nope"},
                   {"type": "Manhole", "count": "maybe"}):
        r = ngsi.get(f"{BASE}/entities", params=params)
        assert r.status_code == 400, params
        assert r.json()["type"] == err + "BadRequestData"
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "limit": "5000"})
    assert r.status_code == 403 and r.json()["type"] == err + "TooManyResults"


def test_an_offset_beyond_what_a_database_can_skip_is_bad_request_data(ngsi: Any) -> None:
    # 2**63 overflowed the database driver: an OverflowError, answered as 404 "no such resource".
    ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1)))
    query = {"type": "Query", "entities": [{"type": "Manhole"}]}
    for offset in (str(2**63), "9" * 30):
        for r in (ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "offset": offset}),
                  ngsi.post(f"{BASE}/entityOperations/query", params={"offset": offset}, json=query),
                  ngsi.get(f"{BASE}/subscriptions", params={"offset": offset}),
                  ngsi.get(f"{BASE}/temporal/entities", params={"type": "Manhole", "offset": offset})):
            assert r.status_code == 400, (offset, r.request.url.path, r.text)
            assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "offset": str(2**63 - 1)})
    assert r.status_code == 200 and r.json() == []


def test_post_query(ngsi: Any) -> None:
    _seed(ngsi)
    body = {"type": "Query", "entities": [{"type": "Manhole"}], "q": "tiltAngle<10"}
    r = ngsi.post(f"{BASE}/entityOperations/query", json=body, params={"count": "true"})
    assert _ids(r) == ["urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:1"]
    assert r.headers["ngsild-results-count"] == "2"


def test_post_query_refuses_malformed_members(ngsi: Any) -> None:
    for body in ({"type": "Query", "q": 5}, {"type": "Query", "attrs": "a"}, {"type": "Query", "geoQ": []},
                 {"type": "Query", "entities": [{"type": 1}]}, {"type": "Entity"}):
        r = ngsi.post(f"{BASE}/entityOperations/query", json=body)
        assert r.status_code == 400, body
        assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def test_a_query_without_any_filter_is_refused_unless_local(ngsi: Any) -> None:
    _seed(ngsi)
    r = ngsi.get(f"{BASE}/entities")
    assert r.status_code == 400 and r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    r = ngsi.get(f"{BASE}/entities", params={"local": "true", "count": "true", "limit": 0})
    assert r.status_code == 200 and r.headers["ngsild-results-count"] == "8"


def test_a_query_tested_in_python_reads_no_further_than_its_page(ngsi: Any, monkeypatch: Any) -> None:
    """Without a count or an order, the scan stops once the page (and one more, for the next link) is found;
    with a count every row is judged."""
    from wecity.context import search

    for n in range(30):
        assert ngsi.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{n}", depth=prop(n))).status_code == 201
    judged: list[str] = []
    shown = search._shown
    monkeypatch.setattr(search, "_shown", lambda row, now: judged.append(row.entity_id) or shown(row, now))
    page = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": "depth>=0", "limit": 2})
    assert [e["id"] for e in page.json()] == ["urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:1"]
    assert 'rel="next"' in page.headers["Link"] and len(judged) == 3
    judged.clear()
    counted = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": "depth>=0", "limit": 2, "count": "true"})
    assert counted.headers["NGSILD-Results-Count"] == "30" and len(judged) == 30
    judged.clear()
    later = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": "depth>=20", "limit": 3, "offset": 2})
    assert [e["id"] for e in later.json()] == [f"urn:ngsi-ld:Manhole:{n}" for n in (22, 23, 24)]
