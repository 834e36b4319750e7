"""The catalogue as CKAN and DCAT-AP clients see it: the `ckanapi` client against a running server, and
the Turtle and JSON-LD exports parsed by rdflib."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import ckanapi
import pytest
from rdflib import Graph
from rdflib.namespace import DCAT, DCTERMS, RDF

from wecity.api.app import create_app
from wecity.core import cache
from wecity.datashare import catalogue, dcat, queries

from ..conftest import City, make_client
from ..open311.conftest import LiveServer


def test_ckanapi_searches_shows_and_lists_organisations(catalogued: City) -> None:
    app = create_app(catalogued.settings, clock=catalogued.clock, db=catalogued.db)
    with LiveServer(app) as server:
        ckan = ckanapi.RemoteCKAN(server.url, user_agent="wecity-tests")
        found = ckan.action.package_search(q="空气质量")
        assert found["count"] == 2 and {r["name"] for r in found["results"]} == {"air-quality", "air-quality-history"}
        everything = ckan.action.package_search(rows=100)
        assert everything["count"] == 19
        page = ckan.action.package_search(rows=5, start=5)
        assert [p["name"] for p in page["results"]] == [p["name"] for p in everything["results"][5:10]]
        shown = ckan.action.package_show(id="air-quality")
        assert shown["organization"]["name"] == "shengtai"
        assert {r["format"] for r in shown["resources"]} == {"JSON", "CSV"}
        assert all(r["url"].startswith(server.url + "/api/v1/data/air-quality") for r in shown["resources"])
        assert {"PM2.5", "空气质量"} <= {t["name"] for t in shown["tags"]}
        assert "shengtai" in ckan.action.organization_list()
        orgs = {o["name"]: o for o in ckan.action.organization_list(all_fields=True)}
        assert orgs["chengguan"]["package_count"] >= 4
        by_org = ckan.action.package_search(fq="organization:shichang")
        assert {p["name"] for p in by_org["results"]} == {"business-licences", "enterprise-register",
                                                          "food-business-licences"}
        with pytest.raises(ckanapi.NotFound):
            ckan.action.package_show(id="no-such-dataset")
        with pytest.raises(ckanapi.ValidationError):
            ckan.action.package_search(fq="license_id:cc-by")
        get_only = ckanapi.RemoteCKAN(server.url, get_only=True)
        assert get_only.action.package_show(id="city-cases")["extras"]


def test_the_dcat_ap_exports_parse_and_name_every_published_dataset(catalogued: City) -> None:
    _, items = catalogued.db.read_sync(lambda c: queries.search_datasets(c, limit=1000))
    names = {d["name"] for d in items}
    with make_client(catalogued) as client:
        turtle = client.get("/dcat/catalog.ttl")
        assert turtle.status_code == 200 and turtle.headers["content-type"].startswith("text/turtle")
        jsonld = client.get("/dcat/catalog.jsonld")
        assert client.get("/dcat/catalog.exe").status_code == 404
    for text, fmt in ((turtle.text, "turtle"), (jsonld.text, "json-ld")):
        graph = Graph().parse(data=text, format=fmt)
        datasets = set(graph.subjects(RDF.type, DCAT.Dataset))
        assert {str(graph.value(d, DCTERMS.identifier)) for d in datasets} == names
        air = next(d for d in datasets if str(graph.value(d, DCTERMS.identifier)) == "air-quality")
        titles = {(t.language, str(t)) for t in graph.objects(air, DCTERMS.title)}
        assert ("zh", "空气质量监测") in titles and ("en", "Air quality observations") in titles
        assert str(graph.value(air, DCTERMS.accessRights)).endswith("/PUBLIC")
        assert len(list(graph.objects(air, DCAT.distribution))) == 2
        marriage = next(d for d in datasets if str(graph.value(d, DCTERMS.identifier)) == "marriage-registrations")
        assert str(graph.value(marriage, DCTERMS.accessRights)).endswith("/NON_PUBLIC")


def test_a_ckan_body_nested_too_deep_is_a_validation_error(catalogued: City) -> None:
    """CKAN's envelope with a 400, not a 500 from the parser's recursion."""
    with make_client(catalogued) as client:
        deep = client.post("/api/3/action/package_show", content=b"[" * 100_000 + b"]" * 100_000,
                           headers={"Content-Type": "application/json"})
        assert deep.status_code == 400, deep.text
        assert deep.json()["success"] is False and "64" in deep.json()["error"]["message"]
        nested = client.post("/api/3/action/package_show", content=b'{"id": ' + b"[" * 70 + b"]" * 70 + b"}",
                             headers={"Content-Type": "application/json"})
        assert nested.status_code == 400 and nested.json()["error"]["__type"] == "Validation Error"
        assert client.post("/api/3/action/package_show", json={"id": "air-quality"}).json()["success"] is True


def test_a_catalogue_of_more_than_a_thousand_datasets_is_listed_counted_and_exported_whole(catalogued: City) -> None:
    import copy

    from wecity.datashare import catalogue

    template = next(d for d in catalogue.packaged_demo_datasets()["datasets"] if d["name"] == "air-quality")

    def many(conn: object) -> None:
        for i in range(1005):
            doc = copy.deepcopy(template)
            doc.update(name=f"bulk-{i:04d}", keywords=["bulk"] + (["tenth"] if i % 10 == 0 else []))
            catalogue.publish(conn, doc, now=catalogued.clock.now())  # type: ignore[arg-type]

    catalogued.db.write_sync(many)
    everything = len(catalogued.db.read_sync(queries.published))
    assert everything == 1005 + 19
    with make_client(catalogued) as client:
        names = client.get("/api/3/action/package_list").json()["result"]
        assert len(names) == everything and len(set(names)) == everything
        assert client.get("/api/3/action/package_list", params={"limit": 10, "offset": 1020}).json()["result"] == \
            names[1020:]
        found = client.get("/api/3/action/package_search", params={"rows": 1000, "start": 1000}).json()["result"]
        assert found["count"] == everything and len(found["results"]) == everything - 1000
        tenth = client.get("/api/3/action/package_search", params={"fq": "tags:tenth", "rows": 5, "start": 100}).json()
        assert tenth["result"]["count"] == 101 and [p["name"] for p in tenth["result"]["results"]] == ["bulk-0000"]
        turtle = client.get("/dcat/catalog.ttl").text
    graph = Graph().parse(data=turtle, format="turtle")
    assert len(set(graph.subjects(RDF.type, DCAT.Dataset))) == everything


def test_the_dcat_ap_export_is_built_off_the_event_loop_and_kept_until_the_catalogue_changes(
        catalogued: City, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dcat, "_exports", {})
    builds: list[tuple[int, bool]] = []
    real = dcat.catalogue_graph

    def spy(items: list[dict[str, Any]], **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        builds.append((len(items), on_loop))
        return real(items, **kwargs)

    monkeypatch.setattr(dcat, "catalogue_graph", spy)
    with make_client(catalogued) as client:
        first = client.get("/dcat/catalog.ttl").text
        assert client.get("/dcat/catalog.ttl").text == first
        client.get("/dcat/catalog.jsonld")
        assert builds == [(19, False), (19, False)]  # once per format, never on the event loop
        # The catalogue dropped with nothing changed: the export stands.
        catalogued.db.read_sync(lambda c: cache.invalidate(c, catalogue.CATALOGUE_CACHE))
        assert client.get("/dcat/catalog.ttl").text == first and len(builds) == 2
        # A dataset published: the export is built again and names it.
        doc = copy.deepcopy(next(d for d in catalogue.packaged_demo_datasets()["datasets"] if d["name"] == "air-quality"))
        doc["name"] = "air-quality-copy"
        catalogued.db.write_sync(lambda c: catalogue.publish(c, doc, now=catalogued.clock.now()))
        again = client.get("/dcat/catalog.ttl").text
    assert builds[2:] == [(20, False)] and "air-quality-copy" in again and "air-quality-copy" not in first
