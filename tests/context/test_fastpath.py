"""The hot write endpoints served past the framework's router behave as routed requests do: same answers,
same errors, request id and metrics; and rows read through the SQLite driver match rows read with Core."""

from __future__ import annotations

from typing import Any

from tests.conftest import LOOPBACK, City, make_client
from tests.context.conftest import BASE, entity, point, prop

ERR = "https://uri.etsi.org/ngsi-ld/errors/"
E1 = "urn:ngsi-ld:Manhole:1"


def test_fast_routes_update_and_answer_like_routed_ones(ngsi: Any, city: City) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1), status=prop("closed"))).status_code == 201
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 7}, headers={"X-Request-ID": "fast-1"})
    assert r.status_code == 204
    assert r.headers["x-request-id"] == "fast-1"
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs",
                   json={"status": prop("open"), "nope": {"type": "Property", "value": "urn:ngsi-ld:null"}})
    assert r.status_code == 207
    assert r.json() == {"updated": ["https://uri.etsi.org/ngsi-ld/status"],
                        "notUpdated": [{"attributeName": "https://uri.etsi.org/ngsi-ld/default-context/nope",
                                        "reason": "attribute does not exist"}]}
    body = ngsi.get(f"{BASE}/entities/{E1}").json()
    assert body["tiltAngle"]["value"] == 7 and body["status"]["value"] == "open"
    with make_client(city, peer=LOOPBACK) as local:  # /metrics answers this machine only
        metrics = local.get("/metrics").text
    assert 'route="/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}"' in metrics


def test_fast_routes_render_errors_as_problem_details(ngsi: Any) -> None:
    r = ngsi.patch(f"{BASE}/entities/urn:ngsi-ld:Manhole:none/attrs/tiltAngle", json={"value": 7})
    assert r.status_code == 404 and r.json()["type"] == ERR + "ResourceNotFound"
    r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["type"] == ERR + "InvalidRequest"
    r = ngsi.post(f"{BASE}/entityOperations/upsert", content=b"[1", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    r = ngsi.post(f"{BASE}/entityOperations/upsert", content=b"[]", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = ngsi.patch(f"{BASE}/entities/not-a-uri/attrs/tiltAngle", json={"value": 1})
    assert r.status_code == 400 and r.json()["type"] == ERR + "BadRequestData"


def test_json_beyond_orjson_is_still_read(ngsi: Any) -> None:
    big = 2 ** 70  # orjson refuses integers beyond 64 bits; the standard parser takes them
    r = ngsi.post(f"{BASE}/entityOperations/upsert", content=f'[{{"id": "{E1}", "type": "Manhole", "n": {big}}}]',
                  headers={"Content-Type": "application/json"})
    assert r.status_code == 201
    assert ngsi.get(f"{BASE}/entities/{E1}").json()["n"]["value"] == big


def test_driver_rows_match_core_rows(sqlite_city: City) -> None:
    from wecity.context import rows, service
    from wecity.context.entity import normalize_entity
    from wecity.context.ldcontext import ContextStore
    from wecity.core.registry import Events

    store = ContextStore()
    env = service.Env("t1", sqlite_city.clock.now(), store, Events())
    body = entity(tiltAngle=prop(1.5, unitCode="DD"), location=point(112.98, 28.2), name=prop("井盖"))
    body["type"] = ["Manhole", "Asset"]
    body["scope"] = "/Changsha/Yuelu"
    sqlite_city.db.write_sync(service.create, env, normalize_entity(body, store.core, env.now))

    def both(conn: Any) -> tuple[Any, Any]:
        raw = service.get(conn, "t1", E1)
        core = rows.stored(conn.execute(rows.GET, {"b_tenant": "t1", "b_id": E1}).first())
        return raw, core

    raw, core = sqlite_city.db.read_sync(both)
    assert raw == core
    assert raw.types == [store.core.expand("Manhole"), store.core.expand("Asset")]
    assert raw.created_at.tzinfo is not None and raw.scope == "/Changsha/Yuelu"


def test_fast_routes_ask_for_credentials_as_the_others_do(city: City) -> None:
    from tests.conftest import make_client

    with make_client(city, ngsild_auth="required") as client:
        for method, path in [("PATCH", f"/entities/{E1}/attrs/tiltAngle"), ("PATCH", f"/entities/{E1}/attrs"),
                             ("POST", f"/entities/{E1}/attrs"), ("POST", "/entityOperations/upsert"),
                             ("POST", "/entityOperations/update")]:
            r = client.request(method, BASE + path, json={"value": 1})
            assert r.status_code == 401, (method, path)
            assert r.json()["type"].startswith(ERR)
        key = {"Authorization": f"Bearer {city.api_key}"}
        assert client.post(f"{BASE}/entityOperations/upsert", json=[entity(tiltAngle=prop(1))], headers=key).status_code == 201
        assert client.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 2}, headers=key).status_code == 204
