"""GET discovery, services and service definitions, in JSON (schema-valid) and XML."""

import xml.etree.ElementTree as ET

import pytest

from ..conftest import City, make_client
from .conftest import validate


def test_services_json_validates_and_lists_the_demo_categories(city: City) -> None:
    with make_client(city) as client:
        response = client.get("/open311/v2/services.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    services = response.json()
    validate("services.json", services)
    codes = [s["service_code"] for s in services]
    assert len(codes) == 15 and "manhole" in codes
    manhole = next(s for s in services if s["service_code"] == "manhole")
    assert manhole["service_name"] == "井盖缺失/破损" and manhole["metadata"] is True
    assert manhole["group"] == "市政设施"


def test_services_in_english_by_accept_language(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        services = client.get("/open311/v2/services.json", headers={"Accept-Language": "en-GB,en;q=0.9"}).json()
    assert next(s for s in services if s["service_code"] == "manhole")["service_name"] == "Missing or broken manhole cover"


def test_services_xml_is_shaped_as_the_spec_example(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = client.get("/open311/v2/services.xml")
    assert response.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "services"
    first = root.find("service")
    assert first is not None
    assert [c.tag for c in first] == ["service_code", "service_name", "description", "metadata", "type", "keywords",
                                      "group"]
    assert first.findtext("metadata") in ("true", "false")


def test_service_definition_json_and_xml(city: City) -> None:
    with make_client(city) as client:
        definition = client.get("/open311/v2/services/manhole.json").json()
        xml = ET.fromstring(client.get("/open311/v2/services/manhole.xml").content)
    validate("service-definition.json", definition)
    attribute = definition["attributes"][0]
    assert attribute["code"] == "cover_state" and attribute["required"] is True
    assert [v["key"] for v in attribute["values"]] == ["missing", "broken", "sunken"]
    assert xml.tag == "service_definition"
    assert xml.find("attributes/attribute/values/value/key").text == "missing"


def test_discovery(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        doc = client.get("/open311/v2/discovery.json").json()
        xml = ET.fromstring(client.get("/open311/v2/discovery.xml").content)
    assert doc["endpoints"][0]["url"].endswith("/open311/v2")
    assert "application/json" in doc["endpoints"][0]["formats"]
    assert xml.find("endpoints/endpoint/formats/format") is not None


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(("path", "status"), [
    ("/open311/v2/services/nonexistent.{fmt}", 404),
    ("/open311/v2/requests/999999.{fmt}", 404),
    ("/open311/v2/requests/not-a-number.{fmt}", 404),
    ("/open311/v2/tokens/nope.{fmt}", 404),
    ("/open311/v2/services.{fmt}?jurisdiction_id=beijing.gov.cn", 404),
    ("/open311/v2/requests.{fmt}?start_date=yesterday", 400),
    ("/open311/v2/requests.{fmt}?start_date=2026-11-01T00:00:00", 400),
    ("/open311/v2/requests.{fmt}?status=pending", 400),
    ("/open311/v2/requests.{fmt}?page_size=0", 400),
    ("/open311/v2/requests.{fmt}?start_date=2026-01-01T00:00:00%2B08:00&end_date=2026-11-01T00:00:00%2B08:00", 400),
])
def test_read_errors_use_the_spec_error_format(sqlite_city: City, fmt: str, path: str, status: int) -> None:
    with make_client(sqlite_city) as client:
        response = client.get(path.format(fmt=fmt))
    assert response.status_code == status
    if fmt == "json":
        body = response.json()
        assert body[0]["code"] == status and body[0]["description"]
    else:
        root = ET.fromstring(response.content)
        assert root.tag == "errors"
        assert root.findtext("error/code") == str(status) and root.findtext("error/description")


def test_jurisdiction_id_of_the_city_is_accepted(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        assert client.get("/open311/v2/services.json?jurisdiction_id=changsha.gov.cn").status_code == 200
