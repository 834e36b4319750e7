"""@context handling: user contexts in Link headers fetched once and cached, hosted contexts, failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import City
from tests.context.conftest import BASE, CORE, LD, entity, prop

REMOTE = "https://contexts.example.org/manhole.jsonld"
DOC = {"@context": {"tilt": "https://example.org/manhole#tiltAngle", "Manhole": "https://example.org/Manhole"}}


def _link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


@pytest.fixture
def fetching(city: City) -> Iterator[tuple[Any, list[str]]]:
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app

    fetched: list[str] = []

    def fetcher(url: str) -> Any:
        fetched.append(url)
        if url == REMOTE:
            return DOC
        raise OSError("unreachable")

    app = create_app(city.settings, clock=city.clock, db=city.db)
    app.state.ctx.services["ngsild_fetcher"] = fetcher
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        yield client, fetched


def test_user_context_is_fetched_once_and_used_both_ways(fetching: tuple[Any, list[str]]) -> None:
    ngsi, fetched = fetching
    body = {"id": "urn:ngsi-ld:Manhole:1", "type": "Manhole", "tilt": prop(12)}
    assert ngsi.post(f"{BASE}/entities", json=body, headers=_link(REMOTE)).status_code == 201
    got = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1", headers=_link(REMOTE))
    assert got.json()["tilt"] == prop(12) and got.json()["type"] == "Manhole"
    assert REMOTE in got.headers["link"]
    core_view = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").json()
    assert core_view["type"] == "https://example.org/Manhole"
    assert "https://example.org/manhole#tiltAngle" in core_view
    q = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": "tilt>10"}, headers=_link(REMOTE))
    assert [e["id"] for e in q.json()] == ["urn:ngsi-ld:Manhole:1"]
    assert fetched == [REMOTE]
    listed = ngsi.get(f"{BASE}/jsonldContexts").json()
    assert REMOTE in listed


def test_unreachable_context_is_ld_context_not_available(fetching: tuple[Any, list[str]]) -> None:
    ngsi, _ = fetching
    r = ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1)), headers=_link("https://nowhere.example/c.jsonld"))
    assert r.status_code == 504
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"


def test_hosted_context_round_trip(fetching: tuple[Any, list[str]]) -> None:
    ngsi, fetched = fetching
    r = ngsi.post(f"{BASE}/jsonldContexts", json=DOC)
    assert r.status_code == 201
    url = r.headers["location"]
    assert ngsi.get(url).json() == DOC
    body = {"id": "urn:ngsi-ld:Manhole:2", "type": "Manhole", "tilt": prop(3), "@context": [url, CORE]}
    assert ngsi.post(f"{BASE}/entities", json=body, headers={"content-type": LD}).status_code == 201
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:2", headers=_link(url)).json()["tilt"] == prop(3)
    assert fetched == []  # served from the broker's own store, never over the network
    details = ngsi.get(f"{BASE}/jsonldContexts", params={"details": "true"}).json()
    assert details[0]["kind"] == "Hosted"
    assert ngsi.delete(url).status_code == 204
    assert ngsi.get(url).status_code == 404


def test_core_context_is_served_offline(fetching: tuple[Any, list[str]]) -> None:
    ngsi, fetched = fetching
    r = ngsi.get(f"{BASE}/jsonldContexts/{CORE}")
    assert r.status_code == 200 and r.json()["@context"]["ngsi-ld"] == "https://uri.etsi.org/ngsi-ld/"
    body = entity(tiltAngle=prop(1)) | {"@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"}
    assert ngsi.post(f"{BASE}/entities", json=body, headers={"content-type": LD}).status_code == 201
    assert fetched == []


@pytest.mark.parametrize("reference", ["", "manhole.jsonld", "~i eu!", ":x", "1:x", "a:b c", "a:\x00"])
def test_context_reference_that_is_no_absolute_iri_is_bad_request(fetching: tuple[Any, list[str]],
                                                                   reference: str) -> None:
    ngsi, fetched = fetching
    body = entity(tiltAngle=prop(1)) | {"@context": reference}
    r = ngsi.post(f"{BASE}/entities", json=body, headers={"content-type": LD})
    assert r.status_code == 400
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    if reference.isprintable():
        r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=_link(reference))
        assert r.status_code == 400
    # In a batch (the upsert is served by the fast path) the item fails, the others go ahead.
    items = [entity("urn:ngsi-ld:Manhole:7") | {"@context": CORE}, entity("urn:ngsi-ld:Manhole:8") | {"@context": reference}]
    r = ngsi.post(f"{BASE}/entityOperations/upsert", json=items, headers={"content-type": LD})
    assert r.status_code == 207
    assert [(e["entityId"], e["error"]["status"]) for e in r.json()["errors"]] == [("urn:ngsi-ld:Manhole:8", 400)]
    assert fetched == []


def test_the_term_maps_kept_are_bounded(monkeypatch: Any) -> None:
    from wecity.context import ldcontext

    monkeypatch.setattr(ldcontext, "MAX_TERM_MAPS", 3)
    store = ldcontext.ContextStore()
    maps = [store.term_map({"x": f"https://example.org/{n}#x"}) for n in range(5)]
    assert len(store._maps) == 3
    assert store.term_map({"x": "https://example.org/4#x"}) is maps[4]  # the newest kept
    assert store.term_map({"x": "https://example.org/0#x"}).expand("x") == "https://example.org/0#x"  # built again
