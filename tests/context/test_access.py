"""Who may use the NGSI-LD API: credentials by default, open reads with `writes`, everything with `off`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import City, make_client
from wecity.core.errors import ConfigurationError
from wecity.core.settings import load_settings
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.service import add_api_key, revoke_api_key

from .conftest import BASE, entity, prop

MANHOLE = entity(tiltAngle=prop(3))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_without_credentials_every_ngsild_route_answers_401_problem_details(city: City) -> None:
    with make_client(city) as client:
        for method, path in [("GET", "/entities?type=Manhole"), ("POST", "/entities"),
                             ("GET", "/entities/urn:ngsi-ld:Manhole:1"), ("POST", "/entityOperations/upsert"),
                             ("GET", "/subscriptions"), ("GET", "/temporal/entities?type=Manhole"),
                             ("GET", "/jsonldContexts"), ("PATCH", "/entities/urn:ngsi-ld:Manhole:1/attrs"),
                             ("GET", "/csourceRegistrations?type=Manhole"), ("POST", "/csourceRegistrations"),
                             ("GET", "/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:1"),
                             ("GET", "/csourceSubscriptions"), ("POST", "/csourceSubscriptions")]:
            r = client.request(method, BASE + path, json=MANHOLE if method != "GET" else None)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["WWW-Authenticate"].startswith("Bearer")
            assert r.json()["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")
        zh = client.get(f"{BASE}/entities?type=Manhole", headers={"Accept-Language": "zh-CN"}).json()
        assert "API 密钥" in zh["title"]


def test_an_api_key_opens_the_api_as_bearer_or_x_api_key(city: City) -> None:
    with make_client(city) as client:
        assert client.post(f"{BASE}/entities", json=MANHOLE, headers=_bearer(city.api_key)).status_code == 201
        r = client.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1", headers={"X-API-Key": city.api_key})
        assert r.status_code == 200 and r.json()["tiltAngle"]["value"] == 3
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer("wk_not-a-key")).status_code == 401
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer("not-a-session")).status_code == 401


def test_a_revoked_key_is_refused(city: City) -> None:
    key = city.db.write_sync(lambda conn: add_api_key(conn, name="gateway", scopes=["ngsild:read", "ngsild:write"],
                                                      now=city.clock.now()))
    with make_client(city) as client:
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(key)).status_code == 200
        assert city.db.write_sync(lambda conn: revoke_api_key(conn, key[:10], city.clock.now())) == 1
        # This process forgets what it knew of the key at once; others within the cache's lifetime.
        from wecity.context import access

        access._grants.clear()
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(key)).status_code == 401
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(city.api_key)).status_code == 200


def test_a_staff_sign_in_opens_the_api(city: City) -> None:
    with make_client(city) as client:
        r = client.post("/api/v1/auth/token", json={"username": "admin", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(r.json()["token"])).status_code == 200


@pytest.mark.parametrize("mode, read, write", [("writes", 200, 401), ("off", 200, 201)])
def test_modes_open_reads_or_everything(city: City, mode: str, read: int, write: int) -> None:
    with make_client(city, ngsild_auth=mode) as client:
        assert client.get(f"{BASE}/entities?type=Manhole").status_code == read
        assert client.post(f"{BASE}/entities", json=MANHOLE).status_code == write


def test_a_read_only_key_may_query_with_a_body_but_not_write(city: City) -> None:
    key = city.db.write_sync(lambda conn: add_api_key(conn, name="dashboard", scopes=["ngsild:read"],
                                                      now=city.clock.now()))
    query = {"type": "Query", "entities": [{"type": "Manhole"}]}
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        assert client.post(f"{BASE}/entityOperations/query", json=query).status_code == 200
        assert client.post(f"{BASE}/temporal/entityOperations/query",
                           json={**query, "temporalQ": {"timerel": "after", "timeAt": "2020-01-01T00:00:00Z"}}
                           ).status_code == 200
        assert client.post(f"{BASE}/entities", json=MANHOLE).status_code == 403
        assert client.post(f"{BASE}/entityOperations/upsert", json=[MANHOLE]).status_code == 403


def test_open_reads_are_counted_per_address(city: City) -> None:
    from wecity.core.limits import parse_rule

    with make_client(city, ngsild_auth="writes", rate_limits={"ngsild_public": parse_rule("2/minute")}) as client:
        assert client.get(f"{BASE}/entities?type=Manhole").status_code == 200
        assert client.post(f"{BASE}/entityOperations/query", json={"type": "Query", "entities": [
            {"type": "Manhole"}]}).status_code == 200
        refused = client.get(f"{BASE}/entities?type=Manhole")
        assert refused.status_code == 429 and refused.json()["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/")
        # A dashboard with its key is not an anonymous reader.
        for _ in range(3):
            assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(city.api_key)).status_code == 200
        assert client.get(f"{BASE}/entities?type=Manhole", headers={"X-API-Key": "wk_made-up"}).status_code == 401


def test_the_setting_is_checked_at_start(tmp_path: Any) -> None:
    env = {"WECITY_SECRET_KEY": "k" * 40, "WECITY_VAR_DIR": str(tmp_path)}
    assert load_settings(env, cwd=tmp_path).ngsild_auth == "required"
    assert load_settings({**env, "WECITY_NGSILD_AUTH": "writes"}, cwd=tmp_path).ngsild_auth == "writes"
    with pytest.raises(ConfigurationError, match="WECITY_NGSILD_AUTH"):
        load_settings({**env, "WECITY_NGSILD_AUTH": "maybe"}, cwd=tmp_path)


def _key(city: City, *scopes: str, tenant: str = "") -> str:
    return str(city.db.write_sync(lambda conn: add_api_key(conn, name="scoped", scopes=list(scopes), tenant=tenant,
                                                           now=city.clock.now())))


def test_keys_do_what_their_scopes_say_in_their_tenant(city: City) -> None:
    reader, writer = _key(city, "ngsild:read"), _key(city, "ngsild:read", "ngsild:write")
    open311_only, elsewhere = _key(city, "open311:write"), _key(city, "ngsild:read", "ngsild:write", tenant="t2")
    with make_client(city) as client:
        def create(key: str, tenant: str | None = None) -> int:
            headers = {**_bearer(key), **({"NGSILD-Tenant": tenant} if tenant else {})}
            body = {**MANHOLE, "id": f"urn:ngsi-ld:Manhole:{key[-6:]}"}
            return int(client.post(f"{BASE}/entities", json=body, headers=headers).status_code)

        refused = client.post(f"{BASE}/entities", json=MANHOLE, headers=_bearer(reader))
        assert refused.status_code == 403 and "ngsild:write" in refused.json()["title"] + refused.json()["detail"]
        assert refused.headers["content-type"].startswith("application/json")  # ProblemDetails
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(reader)).status_code == 200
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(open311_only)).status_code == 403
        assert create(writer) == 201
        assert create(elsewhere) == 403 and create(writer, "t2") == 403 and create(elsewhere, "t2") == 201


def test_staff_roles_read_and_only_administrators_write(city: City) -> None:
    with make_client(city) as client:
        def token(username: str) -> str:
            signed = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            client.cookies.clear()
            return str(signed.json()["token"])

        handler, admin = token("chengguan"), token("admin")
        assert client.get(f"{BASE}/entities?type=Manhole", headers=_bearer(handler)).status_code == 200
        # A handler cannot make fake sensor readings that open real cases.
        fake = {**MANHOLE, "tiltAngle": {"type": "Property", "value": 80}}
        assert client.post(f"{BASE}/entities", json=fake, headers=_bearer(handler)).status_code == 403
        assert client.post(f"{BASE}/entities", json=MANHOLE, headers=_bearer(admin)).status_code == 201


def test_open311_needs_a_key_with_open311_write(city: City) -> None:
    sensors = _key(city, "ngsild:read", "ngsild:write")
    form = {"service_code": "pothole", "lat": "28.19567", "long": "112.9717", "description": "坑"}
    with make_client(city) as client:
        refused = client.post("/open311/v2/requests.json", data={**form, "api_key": sensors})
        assert refused.status_code == 403 and "open311:write" in refused.json()[0]["description"]
        taken = client.post("/open311/v2/requests.json", data={**form, "api_key": _key(city, "open311:write")})
    assert taken.status_code == 200, taken.text


def test_writes_past_the_key_limit_are_429_problem_details_until_the_window_ends(city: City) -> None:
    from datetime import timedelta

    from wecity.core.limits import parse_rule

    city.clock.at += timedelta(seconds=50)  # 10 s left of the minute
    with make_client(city, rate_limits={"ngsild": parse_rule("3/minute")}) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        assert client.post(f"{BASE}/entities", json=MANHOLE).status_code == 201
        # The sensing loop's fast path (a partial update) counts like any other write.
        path = f"{BASE}/entities/urn:ngsi-ld:Manhole:1/attrs/tiltAngle"
        assert client.patch(path, json={"value": 4}).status_code == 204
        assert client.post(f"{BASE}/entityOperations/upsert", json=[entity("urn:ngsi-ld:Manhole:2")]).status_code in (
            201, 204)
        for refused in (client.patch(path, json={"value": 5}),
                        client.delete(f"{BASE}/entities/urn:ngsi-ld:Manhole:2")):
            assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
            problem = refused.json()
            assert problem["type"] == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"
            assert problem["status"] == 429 and "at most 3 per minute" in problem["detail"]
        # Reads, the query endpoint included, are not writes.
        assert client.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").json()["tiltAngle"]["value"] == 4
        assert client.post(f"{BASE}/entityOperations/query", json={"type": "Query", "entities": [
            {"type": "Manhole"}]}).status_code == 200
        city.clock.advance(seconds=10)
        assert client.patch(path, json={"value": 5}).status_code == 204


def test_every_route_of_the_api_asks_for_credentials_before_anything_else(city: City) -> None:
    """Every NGSI-LD operation the app documents (the fast path in front of some of them included), with a
    body or not: 401 ProblemDetails without credentials, so no handler's work is done for a stranger."""
    import re

    with make_client(city) as client:
        operations = [(method.upper(), path) for path, item in client.app.openapi()["paths"].items()
                      if path.startswith("/ngsi-ld/") for method in item if method in ("get", "post", "patch", "put", "delete")]
        assert len(operations) > 60
        for method, template in operations:
            path = re.sub(r"\{[^}]+\}", "urn:ngsi-ld:X:1", template)
            r = client.request(method, path, json={} if method in ("POST", "PATCH", "PUT") else None)
            assert r.status_code == 401, (method, template, r.status_code, r.text[:200])
            assert r.json()["type"].startswith("https://uri.etsi.org/ngsi-ld/errors/"), (method, template)
