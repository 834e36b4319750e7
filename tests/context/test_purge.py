"""Purge (DELETE /entities, clause 5.6.21): every entity a narrowed query matches deleted, or with keep
or drop only some of their attributes; a query narrowed by nothing is refused before anything goes."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, prop


def _setup(ngsi: Any) -> None:
    for i in (1, 2, 3):
        assert ngsi.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{i}", depth=prop(i),
                                                          level=prop(i * 10))).status_code == 201
    assert ngsi.post(f"{BASE}/entities", json={"id": "urn:ngsi-ld:Pump:1", "type": "Pump",
                                               "depth": prop(1)}).status_code == 201


def _ids(ngsi: Any) -> list[str]:
    return sorted(e["id"] for e in ngsi.get(f"{BASE}/entities", params={"local": "true"}).json())


def test_purge_deletes_what_the_query_matches(ngsi: Any) -> None:
    _setup(ngsi)
    r = ngsi.delete(f"{BASE}/entities", params={"type": "Manhole", "q": "depth>=2"})
    assert r.status_code == 204 and r.content == b""
    assert _ids(ngsi) == ["urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Pump:1"]
    assert ngsi.delete(f"{BASE}/entities", params={"type": "Pump", "id": "urn:ngsi-ld:Pump:1"}).status_code == 204
    assert _ids(ngsi) == ["urn:ngsi-ld:Manhole:1"]


def test_purge_with_drop_or_keep_removes_attributes_only(ngsi: Any) -> None:
    _setup(ngsi)
    assert ngsi.delete(f"{BASE}/entities", params={"type": "Manhole", "drop": "level"}).status_code == 204
    assert set(ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").json()) == {"id", "type", "depth"}
    assert ngsi.delete(f"{BASE}/entities", params={"type": "Pump", "keep": "level"}).status_code == 204
    assert set(ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Pump:1").json()) == {"id", "type"}
    assert len(_ids(ngsi)) == 4


def test_purges_too_wide_or_malformed_are_refused_and_delete_nothing(ngsi: Any) -> None:
    _setup(ngsi)
    for params in ({}, {"id": "urn:ngsi-ld:Manhole:1"}, {"idPattern": ".*"}, {"attrs": "createdAt"},
                   {"q": 'modifiedAt>"2020-01-01T00:00:00Z"'}, {"type": "Manhole", "keep": "depth", "drop": "level"},
                   {"type": "Manhole", "q": 'owner{name}=="x"'}, {"type": "Manhole", "attrs": "owner{name}"}):
        r = ngsi.delete(f"{BASE}/entities", params=params)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), params
    assert len(_ids(ngsi)) == 4
    assert ngsi.delete(f"{BASE}/entities", params={"local": "true"}).status_code == 204
    assert _ids(ngsi) == []
