"""Deeply nested input gets the broker's 400, never a RecursionError's 500: parentheses in q, scopeQ and
type selections, linked-entity terms, pick/omit projections."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, entity, prop

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
DEEP = 400


def _bad_request(r: Any, kind: str = "BadRequestData") -> None:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["type"] == ERRORS + kind


@pytest.mark.parametrize("params", [
    {"type": "Manhole", "q": "(" * DEEP + "tiltAngle>1" + ")" * DEEP},
    {"type": "Manhole", "q": "(" * 10_000 + "tiltAngle>1"},
    {"type": "Manhole", "q": "rel" + "{rel" * 2000 + "}" * 2000 + "==1"},
    {"type": "Manhole", "scopeQ": "(" * DEEP + "/a" + ")" * DEEP},
    {"type": "(" * DEEP + "Manhole" + ")" * DEEP},
    {"type": "Manhole", "pick": "id,rel" + "{rel" * DEEP + "}" * DEEP},
], ids=["q", "q-unclosed", "q-linked", "scopeQ", "type", "pick"])
def test_nesting_past_the_limit_is_bad_request_data(ngsi: Any, params: dict[str, str]) -> None:
    _bad_request(ngsi.get(f"{BASE}/entities", params=params))


def test_nesting_within_the_limit_still_works(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(5), scope="/a")).status_code == 201
    for params in ({"type": "Manhole", "q": "(" * 32 + "tiltAngle>1" + ")" * 32},
                   {"type": "Manhole", "scopeQ": "(" * 32 + "/a" + ")" * 32},
                   {"type": "(" * 32 + "Manhole" + ")" * 32}):
        r = ngsi.get(f"{BASE}/entities", params=params)
        assert r.status_code == 200, r.text
        assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Manhole:1"]


def test_a_subscription_with_deeply_nested_q_is_refused(ngsi: Any) -> None:
    body = {"type": "Subscription", "entities": [{"type": "Manhole"}], "q": "(" * DEEP + "a>1" + ")" * DEEP,
            "notification": {"endpoint": {"uri": "http://receiver.test/notify"}}}
    _bad_request(ngsi.post(f"{BASE}/subscriptions", json=body))


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _deep_body(depth: int) -> bytes:
    # Built as text: json.dumps itself would run out of recursion on 10,000 levels.
    return b'{"id": "urn:ngsi-ld:Manhole:deep", "type": "Manhole", "x": {"type": "Property", "value": ' + \
        b"[" * depth + b"1" + b"]" * depth + b"}}"


@pytest.mark.parametrize("depth", [10_000, 100])
def test_a_deeply_nested_body_is_invalid_request_and_nothing_is_stored(ngsi: Any, depth: int) -> None:
    headers = {"Content-Type": "application/json"}
    attrs = b'{"x": {"type": "Property", "value": ' + b"[" * depth + b"1" + b"]" * depth + b"}}"
    assert ngsi.post(f"{BASE}/entities", json=entity()).status_code == 201
    for method, path, body in (("POST", "/entities", _deep_body(depth)),
                               ("POST", "/entityOperations/upsert", b"[" + _deep_body(depth) + b"]"),
                               ("POST", "/entityOperations/create", b"[" + _deep_body(depth) + b"]"),
                               ("PATCH", "/entities/urn:ngsi-ld:Manhole:1/attrs", attrs),
                               ("POST", "/entities/urn:ngsi-ld:Manhole:1/attrs", attrs)):
        r = ngsi.request(method, f"{BASE}{path}", content=body, headers=headers)
        _bad_request(r, "InvalidRequest")
        assert "64" in r.json()["detail"]
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:deep").status_code == 404
    assert "x" not in ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").json()


def test_a_body_nested_to_the_limit_is_taken(ngsi: Any) -> None:
    # 64 levels: the entity, the attribute, then 62 arrays.
    body = entity("urn:ngsi-ld:Manhole:deep", x=prop(_nested(62)))
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201


def test_deeply_nested_json_in_strings_and_parameters_is_bad_request_data(ngsi: Any) -> None:
    deep = "[" * 10_000 + "]" * 10_000
    geometry = '{"type": "Point", "coordinates": ' + deep + "}"
    r = ngsi.post(f"{BASE}/entities", json=entity(location={"type": "GeoProperty", "value": geometry}))
    _bad_request(r)
    params = {"type": "Manhole", "georel": "near;maxDistance==10", "geometry": "Point", "coordinates": deep}
    _bad_request(ngsi.get(f"{BASE}/entities", params=params))
    params = {"type": "Manhole", "orderBy": "location;dist-asc", "orderFrom": deep}
    r = ngsi.get(f"{BASE}/entities", params=params)
    assert r.status_code == 400, r.text
