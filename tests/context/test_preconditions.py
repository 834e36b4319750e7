"""What every NGSI-LD request is checked for before its operation runs (wecity.context.preconditions):
Content-Length (411), Accept (406, and which representation is chosen), query parameters the operation
does not define (InvalidRequest), the tenant echoed and NonexistentTenant (5.5.10)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import City, make_client
from tests.context.conftest import BASE, entity, point, prop
from wecity.context.protocol import GEOJSON, JSON_LD, negotiate

E1 = "urn:ngsi-ld:Manhole:1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
JSON, LD, GEO = "application/json", "application/ld+json", "application/geo+json"


@pytest.mark.parametrize(("accept", "offered", "chosen"), [
    ("", JSON_LD, JSON),  # no preference: the first of the 6.3.4 list
    ("*/*", GEOJSON, JSON),
    ("application/ld+json, application/json", JSON_LD, JSON),  # equal weights: list order, not header order
    ("application/geo+json, application/json", GEOJSON, JSON),
    ("application/json;q=0.1, application/ld+json;q=0.9", JSON_LD, LD),  # weights first
    ("application/json;q=0, */*", JSON_LD, LD),  # the exact range outranks the wildcard, and 0 refuses
    ("*/*;q=0.9, application/ld+json;q=0.8", JSON_LD, JSON),  # json weighs what the wildcard says
    ("application/ld+json;q=notanumber", JSON_LD, LD),  # a weight that is none is the default
    ("application/geo+json;q=0.9, application/ld+json;q=0.1", JSON_LD, LD),  # geo+json not on offer here
    ("application/*", JSON_LD, JSON),
    ("application/geo+json", GEOJSON, GEO),
    ("application/geo+json", JSON_LD, None),
    ("application/xml", GEOJSON, None),
    ("application/json;q=0", JSON_LD, None),
])
def test_accept_selects_by_weight_then_by_the_list_of_6_3_4(accept: str, offered: tuple[str, ...],
                                                             chosen: str | None) -> None:
    assert negotiate(accept, offered) == chosen


def test_not_acceptable_comes_before_the_target_is_looked_up(ngsi: Any) -> None:
    for path in ("entities/urn:ngsi-ld:Manhole:none", "subscriptions/urn:ngsi-ld:Subscription:none"):
        r = ngsi.get(f"{BASE}/{path}", headers={"Accept": "application/xml"})
        assert r.status_code == 406 and r.json()["type"] == ERRORS + "InvalidRequest"
    r = ngsi.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:none", headers={"Accept": GEO})
    assert r.status_code == 406  # GeoJSON is for entities only (6.3.15)
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:none", headers={"Accept": GEO}).status_code == 404


def test_the_chosen_representation_is_answered(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(location=point(112.9, 28.2))).status_code == 201
    r = ngsi.get(f"{BASE}/entities/{E1}", headers={"Accept": "application/ld+json, application/json"})
    assert r.headers["content-type"].startswith(JSON) and "@context" not in r.json()
    r = ngsi.get(f"{BASE}/entities/{E1}", headers={"Accept": "application/json;q=0, */*"})
    assert r.headers["content-type"].startswith(LD) and "@context" in r.json()


def test_geojson_body_leaves_the_context_to_the_link_header_when_preferred(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(location=point(112.9, 28.2))).status_code == 201
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"Accept": GEO})
    assert r.json()["type"] == "FeatureCollection" and "@context" in r.json()
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"Accept": GEO, "Prefer": "body=json"})
    assert r.json()["type"] == "FeatureCollection" and "@context" not in r.json()
    assert "json-ld#context" in r.headers["link"]


def _chunked(ngsi: Any, method: str, path: str, **headers: str) -> Any:
    """A request whose body goes in chunks: it has no Content-Length."""
    body = iter([b'{"id": "urn:ngsi-ld:Manhole:1", "type": "Manhole"}'])
    return ngsi.request(method, f"{BASE}/{path}", content=body, headers={"Content-Type": JSON, **headers})


def test_a_body_without_content_length_is_a_bare_411(ngsi: Any) -> None:
    for method, path in (("POST", "entities"), ("PUT", f"entities/{E1}"), ("PATCH", f"entities/{E1}/attrs"),
                         ("PATCH", f"entities/{E1}/attrs/tiltAngle")):  # the last two on the fast path
        r = _chunked(ngsi, method, path)
        assert (r.status_code, r.content) == (411, b""), (method, path)
    r = _chunked(ngsi, "POST", "entities", **{"NGSILD-Tenant": "nosuchtenant"})
    assert (r.status_code, r.content) == (411, b"")  # decided before the tenant is
    assert ngsi.get(f"{BASE}/entities/{E1}").status_code == 404  # nothing was written
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}).status_code == 200  # GET needs none


def test_merge_patch_json_is_taken_for_patch_only(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1))).status_code == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    assert ngsi.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 5}, headers=merge).status_code == 204
    assert ngsi.get(f"{BASE}/entities/{E1}").json()["tiltAngle"]["value"] == 5
    assert ngsi.post(f"{BASE}/entities/{E1}/attrs", json={"depth": prop(2)}, headers=merge).status_code == 415


def test_a_parameter_the_operation_does_not_define_is_an_invalid_request(ngsi: Any) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1))).status_code == 201
    for method, path, params in (("GET", "entities", {"type": "Manhole", "invalidParams": "x"}),
                                 ("GET", "subscriptions", {"invalidParams": "x"}),
                                 ("GET", f"entities/{E1}", {"limit": "3"}),  # paging is for queries
                                 ("PATCH", f"entities/{E1}/attrs/tiltAngle", {"bogus": "1"})):  # fast path
        r = ngsi.request(method, f"{BASE}/{path}", params=params, json={"value": 2} if method == "PATCH" else None)
        assert r.status_code == 400 and r.json()["type"] == ERRORS + "InvalidRequest", (method, path)
    assert ngsi.get(f"{BASE}/entities/{E1}").json()["tiltAngle"]["value"] == 1
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "limit": "5", "count": "true"}).status_code == 200
    assert ngsi.get(f"{BASE}/entities/", params={"type": "Manhole"}).status_code == 200  # the "/" twin too


def test_tenants_exist_from_their_first_creation_and_are_echoed(ngsi: Any, city: City) -> None:
    tenant = {"NGSILD-Tenant": "district7"}
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=tenant)
    assert (r.status_code, r.json()["type"]) == (404, ERRORS + "NonexistentTenant")
    assert r.headers["ngsild-tenant"] == "district7"
    assert ngsi.get(f"{BASE}/subscriptions", headers=tenant).status_code == 404
    r = ngsi.post(f"{BASE}/entities", json=entity(), headers=tenant)
    assert r.status_code == 201 and r.headers["ngsild-tenant"] == "district7"
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=tenant)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [E1]
    assert ngsi.get(f"{BASE}/entities/{E1}").status_code == 404  # not the default tenant's
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}).status_code == 200  # which always exists
    with make_client(city) as other:  # kept in the database, not only in this process
        other.headers["Authorization"] = f"Bearer {city.api_key}"
        assert other.get(f"{BASE}/entities/{E1}", headers=tenant).status_code == 200


def test_a_failed_creation_creates_no_tenant(ngsi: Any) -> None:
    tenant = {"NGSILD-Tenant": "district8"}
    assert ngsi.post(f"{BASE}/entities", json={"type": "Manhole"}, headers=tenant).status_code == 400
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=tenant).status_code == 404


def test_an_anonymous_caller_learns_nothing_about_tenants(city: City) -> None:
    with make_client(city) as anonymous:
        r = anonymous.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"NGSILD-Tenant": "nosuchtenant"})
        assert r.status_code == 401
