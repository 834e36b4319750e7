"""The NGSI-LD operations in /openapi.json: their query parameters, headers and bodies, all resolvable."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import City, make_client


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from wecity.api.app import create_app
    from wecity.core.settings import Settings

    tmp = tmp_path_factory.mktemp("openapi")
    settings = Settings(database_url=f"sqlite:///{tmp / 'city.db'}", media_dir=tmp / "media", secret_key="x" * 40,
                        var_dir=tmp, run_background=False)
    return create_app(settings).openapi()


def _resolve(doc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in item:
        section, name = item["$ref"].split("/")[-2:]
        item = doc["components"][section][name]
    return item


def _parameters(doc: dict[str, Any], method: str, path: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = [_resolve(doc, p) for p in doc["paths"][path][method].get("parameters", [])]
    return {(p["in"], p["name"]): p for p in found}


def _ngsild_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, item in doc["paths"].items() if path.startswith("/ngsi-ld/")
            for method, op in item.items()]


def test_the_document_is_served_with_every_reference_resolvable(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        served = client.get("/openapi.json").json()

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            return [value["$ref"]] if "$ref" in value else [r for v in value.values() for r in refs(v)]
        return [r for v in value for r in refs(v)] if isinstance(value, list) else []

    found = refs(served)
    assert any("/parameters/" in r for r in found) and any("NgsiLdEntity" in r for r in found)
    for ref in found:
        section, name = ref.split("/")[-2:]
        assert name in served["components"][section], ref
    assert "Open311NewRequest" in served["components"]["schemas"]  # the other amendment kept


def test_query_entities_declares_the_clause_6_4_3_2_parameters(doc: dict[str, Any]) -> None:
    params = _parameters(doc, "get", "/ngsi-ld/v1/entities")
    query = {name for where, name in params if where == "query"}
    assert {"id", "type", "idPattern", "attrs", "pick", "omit", "q", "csf", "georel", "geometry", "coordinates",
            "geoproperty", "geometryProperty", "lang", "scopeQ", "datasetId", "limit", "offset", "count", "options",
            "format", "local", "join", "joinLevel", "entityMap"} <= query
    assert params["query", "limit"]["schema"] == {"type": "integer", "minimum": 0, "maximum": 1000, "default": 20}
    assert params["query", "options"]["style"] == "form" and params["query", "options"]["explode"] is False
    assert {("header", "NGSILD-Tenant"), ("header", "Link")} <= set(params)
    assert not any(p["required"] for p in params.values())


def test_every_operation_on_tenant_data_declares_the_tenant_header(doc: dict[str, Any]) -> None:
    for method, path, _ in _ngsild_operations(doc):
        if "/jsonldContexts" not in path:  # @contexts are the broker's, not a tenant's
            assert ("header", "NGSILD-Tenant") in _parameters(doc, method, path), (method, path)


def test_writes_declare_their_json_and_json_ld_bodies(doc: dict[str, Any]) -> None:
    bodies = {(method, path): op.get("requestBody") for method, path, op in _ngsild_operations(doc)
              if method in ("post", "put", "patch")}
    assert len(bodies) == 28 and all(bodies.values())
    create = bodies["post", "/ngsi-ld/v1/entities"]["content"]
    assert _resolve(doc, create["application/json"]["schema"])["required"] == ["id", "type"]
    assert _resolve(doc, create["application/ld+json"]["schema"])["required"] == ["id", "type", "@context"]
    batch = _resolve(doc, bodies["post", "/ngsi-ld/v1/entityOperations/upsert"]["content"]["application/ld+json"]["schema"])
    assert batch["type"] == "array" and "@context" in _resolve(doc, batch["items"])["required"]
    assert list(bodies["post", "/ngsi-ld/v1/entityOperations/delete"]["content"]) == ["application/json"]
    query = _resolve(doc, bodies["post", "/ngsi-ld/v1/entityOperations/query"]["content"]["application/json"]["schema"])
    assert query["properties"]["type"] == {"type": "string", "enum": ["Query"]}


def test_ids_in_paths_are_declared_as_uris(doc: dict[str, Any]) -> None:
    import re

    params = _parameters(doc, "patch", "/ngsi-ld/v1/entities/{entity_id}/attrs/{attr}")
    id_pattern = re.compile(params["path", "entity_id"]["schema"]["pattern"])
    assert id_pattern.match("urn:ngsi-ld:Manhole:1") and not id_pattern.match("urn:a/b")
    assert re.match(params["path", "attr"]["schema"]["pattern"], "tiltAngle")
    assert _parameters(doc, "get", "/ngsi-ld/v1/subscriptions/{sub_id}")["path", "sub_id"]["schema"]["pattern"]
