"""A method a path does not take: 405 with the Allow header, in the format of the protocol under that path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..conftest import City, make_client


@pytest.fixture
def client(sqlite_city: City) -> Iterator[Any]:
    with make_client(sqlite_city) as c:
        yield c


def test_open311_answers_a_wrong_method_with_405_in_its_error_array(client: Any) -> None:
    r = client.delete("/open311/v2/services.json", headers={"Accept-Language": "en"})
    assert (r.status_code, r.headers["allow"]) == (405, "GET")
    assert r.json() == [{"code": 405, "description": "DELETE is not allowed here"}]


def test_ngsild_answers_a_wrong_method_with_405_problem_details(client: Any) -> None:
    r = client.delete("/ngsi-ld/v1/entityOperations/upsert", headers={"Accept-Language": "en"})
    assert (r.status_code, r.headers["allow"], r.headers["content-type"]) == (405, "POST", "application/json")
    body = r.json()
    assert body["type"] == "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest" and body["status"] == 405
    assert body["detail"] == "DELETE is not allowed here"


def test_the_platform_api_answers_a_wrong_method_with_405_problem_json(client: Any) -> None:
    r = client.delete("/api/v1/areas/locate")
    assert (r.status_code, r.headers["allow"], r.headers["content-type"]) == (405, "GET", "application/problem+json")
    assert r.json() == {"type": "urn:wecity:error:method_not_allowed", "title": "此处不支持 DELETE", "status": 405,
                        "code": "method_not_allowed"}


def test_a_portal_page_answers_a_wrong_method_with_a_405_page(client: Any) -> None:
    r = client.delete("/map", headers={"Accept-Language": "en"})
    assert (r.status_code, r.headers["allow"]) == (405, "GET")
    assert r.headers["content-type"].startswith("text/html") and "<h1>DELETE is not allowed here</h1>" in r.text
