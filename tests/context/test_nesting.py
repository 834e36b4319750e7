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
