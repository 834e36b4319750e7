"""Request bodies over their limit get a 413 in each protocol's own format, whether the size is declared
(Content-Length, refused before a byte is read) or only found while the body streams in (chunked); what
was sent is not stored, and a streamed body is not read past the limit. NGSI-LD asks for the length to be
declared: there a chunked body is a bare 411, before a byte of it is read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import City, make_client
from wecity.cases.models import reports
from wecity.context.models import entities

JSON_LIMIT, FORM_LIMIT, BATCH_LIMIT, UPLOAD_LIMIT = 4096, 4096, 65536, 8192
MULTIPART_LIMIT = UPLOAD_LIMIT * 10 + FORM_LIMIT
HUGE = 200 * 1024 * 1024
NGSI_PROBLEM = "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest"


@pytest.fixture
def small(city: City) -> Iterator[Any]:
    """A client of an app with small body limits (the city's API key at hand as `small.api_key`)."""
    with make_client(city, max_json_bytes=JSON_LIMIT, max_form_bytes=FORM_LIMIT, max_batch_bytes=BATCH_LIMIT,
                     max_upload_bytes=UPLOAD_LIMIT) as client:
        client.api_key = city.api_key  # type: ignore[attr-defined]
        client.city = city  # type: ignore[attr-defined]
        yield client


def _count(city: City, table: sa.Table) -> int:
    return int(city.db.read_sync(lambda conn: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()))


def _both_ways(client: Any, method: str, url: str, body: bytes, headers: dict[str, str]) -> Iterator[Any]:
    """The same oversized body sent with its Content-Length, then chunked (no length declared)."""
    yield client.request(method, url, content=body, headers=headers)
    chunked = client.request(method, url, content=iter([body[:1000], body[1000:]]), headers=headers)
    assert "content-length" not in {k.lower() for k in chunked.request.headers}
    yield chunked


def test_staff_api_json_over_the_limit_is_problem_json(small: Any) -> None:
    body = json.dumps({"username": "x" * JSON_LIMIT, "password": "secret"}).encode()
    for r in _both_ways(small, "POST", "/api/v1/auth/token", body, {"Content-Type": "application/json"}):
        assert r.status_code == 413, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "payload_too_large" and r.json()["details"] == {"limit": JSON_LIMIT}
        assert r.headers["connection"] == "close"
    r = small.post("/api/v1/auth/token", json={"username": "nobody", "password": "wrong"})
    assert r.status_code == 401  # a body within the limit is read as before


def test_a_declared_size_over_the_limit_is_refused_at_once(small: Any) -> None:
    r = small.post("/api/v1/auth/token", content=b"{}",
                   headers={"Content-Type": "application/json", "Content-Length": str(HUGE)})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


def test_ngsild_entity_over_the_limit_is_problem_details_and_not_stored(small: Any) -> None:
    auth = {"Authorization": f"Bearer {small.api_key}", "Content-Type": "application/json"}
    entity = {"id": "urn:ngsi-ld:Manhole:big", "type": "Manhole",
              "note": {"type": "Property", "value": "x" * JSON_LIMIT}}
    body = json.dumps(entity).encode()
    declared, chunked = _both_ways(small, "POST", "/ngsi-ld/v1/entities", body, auth)
    assert declared.status_code == 413, declared.text
    assert declared.json()["type"] == NGSI_PROBLEM and declared.json()["status"] == 413
    # NGSI-LD wants the length declared (6.3.4): a chunked body is a bare 411, not read at all
    assert chunked.status_code == 411 and chunked.content == b""
    # the fast path (no routing) is bounded too
    declared, chunked = _both_ways(small, "PATCH", "/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:big/attrs", body, auth)
    assert declared.status_code == 413 and declared.json()["type"] == NGSI_PROBLEM
    assert chunked.status_code == 411
    assert small.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:big", headers=auth).status_code == 404


def test_ngsild_batches_have_the_larger_limit(small: Any) -> None:
    auth = {"Authorization": f"Bearer {small.api_key}", "Content-Type": "application/json"}
    batch = [{"id": f"urn:ngsi-ld:Manhole:b{i}", "type": "Manhole", "depth": {"type": "Property", "value": i}}
             for i in range(100)]
    body = json.dumps(batch).encode()
    assert JSON_LIMIT < len(body) < BATCH_LIMIT
    assert small.post("/ngsi-ld/v1/entityOperations/upsert", content=body, headers=auth).status_code in (201, 204)
    before = _count(small.city, entities)
    too_big = json.dumps(batch * 20).encode()
    declared, chunked = _both_ways(small, "POST", "/ngsi-ld/v1/entityOperations/upsert", too_big, auth)
    assert declared.status_code == 413 and declared.json()["type"] == NGSI_PROBLEM
    assert str(BATCH_LIMIT) in declared.json()["detail"]
    assert chunked.status_code == 411
    assert _count(small.city, entities) == before


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_open311_request_over_the_limit_stays_413_in_its_format(small: Any, fmt: str) -> None:
    before = _count(small.city, reports)
    form = {"api_key": small.api_key, "service_code": "001", "lat": "28.19", "long": "112.97",
            "description": "x" * FORM_LIMIT}
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for r in _both_ways(small, "POST", f"/open311/v2/requests.{fmt}", body, headers):
        assert r.status_code == 413, r.text
        if fmt == "json":
            (error,) = r.json()
            assert error["code"] == 413 and "4096" in error["description"]
        else:
            assert r.text.startswith("<?xml") and "<code>413</code>" in r.text
    assert _count(small.city, reports) == before


def test_portal_forms_over_the_limit_are_an_error_page(small: Any) -> None:
    before = _count(small.city, reports)
    photo = b"\xff\xd8" + b"x" * MULTIPART_LIMIT
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\npothole\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Accept-Language": "en"}
    for r in _both_ways(small, "POST", "/report", body, headers):
        assert r.status_code == 413, r.text[:200]
        assert r.headers["content-type"].startswith("text/html") and str(MULTIPART_LIMIT) in r.text
    assert _count(small.city, reports) == before
    body = b"rating=5&comment=" + b"x" * FORM_LIMIT
    for r in _both_ways(small, "POST", "/track/nothing/rate", body,
                        {"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "zh-CN"}):
        assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
        assert "请求体过大：表单最多 4096 字节" in r.text


async def _stream(app: Any, method: str, path: str, headers: dict[str, str], chunk: bytes,
                  total: int) -> tuple[int, int, bytes]:
    """Send `total` bytes in `chunk`s straight to the ASGI app, as a server would hand them over; returns
    how many chunks the app took, the status and the body it answered."""
    chunks = total // len(chunk)
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if taken < chunks:
            taken += 1
            return {"type": "http.request", "body": chunk, "more_body": taken < chunks}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    await app(scope, receive, send)
    return taken, sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_streamed_body_is_not_read_past_the_limit(small: Any) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {small.api_key}"}
    chunk = b" " * 1024
    taken, status, body = small.portal.call(_stream, small.app, "POST", "/api/v1/auth/token", headers, chunk, HUGE)
    assert status == 413, body
    assert taken <= JSON_LIMIT // len(chunk) + 1  # of 204,800 chunks


@pytest.mark.parametrize("path", ["/ngsi-ld/v1/entities", "/ngsi-ld/v1/entityOperations/upsert"])  # the latter: fast path
def test_an_ngsild_body_without_a_declared_length_is_not_read_at_all(small: Any, path: str) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {small.api_key}"}
    taken, status, body = small.portal.call(_stream, small.app, "POST", path, headers, b" " * 1024, HUGE)
    assert (status, body, taken) == (411, b"", 0)


def test_a_multipart_body_has_the_upload_limit_only_where_files_are_taken(small: Any) -> None:
    """The declared Content-Type does not buy a route the upload allowance: a sign-in sent as multipart is
    cut at the form limit, as any route that takes no files."""
    body = b"--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\n" + b"u" * (3 * FORM_LIMIT) + b"\r\n--x--\r\n"
    assert len(body) < MULTIPART_LIMIT
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    for r in _both_ways(small, "POST", "/api/v1/auth/token", body, headers):
        assert r.status_code == 413, r.text
        assert r.json()["code"] == "payload_too_large" and r.json()["details"] == {"limit": FORM_LIMIT}
    auth = {"Authorization": f"Bearer {small.api_key}", "Content-Type": "multipart/form-data; boundary=x"}
    r = small.post("/ngsi-ld/v1/entities", content=body, headers=auth)
    assert r.status_code == 413 and r.json()["type"] == NGSI_PROBLEM
    # an upload route keeps it: the same body is read (and refused for what it holds, not for its size)
    r = small.post("/api/v1/media", content=body, headers=auth)
    assert r.status_code != 413


def test_two_content_types_are_refused_before_the_body_is_read(small: Any) -> None:
    """The app reads the first Content-Type; a limit chosen from another would not be the body's."""
    entity = {"id": "urn:ngsi-ld:Manhole:twice", "type": "Manhole", "note": {"type": "Property", "value": "x" * JSON_LIMIT}}
    body = json.dumps(entity).encode()
    headers = [("Authorization", f"Bearer {small.api_key}"), ("Content-Type", "application/json"),
               ("Content-Type", "multipart/form-data; boundary=x")]
    r = small.post("/ngsi-ld/v1/entities", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    assert small.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:twice",
                     headers={"Authorization": f"Bearer {small.api_key}"}).status_code == 404
    r = small.post("/api/v1/auth/token", content=b"{}", headers=[("Content-Type", "application/json"),
                                                                 ("Content-Type", "application/json")])
    assert r.status_code == 400 and r.json()["code"] == "request.content_type_repeated"
    taken, status, _ = small.portal.call(_stream_headers, small.app, "/api/v1/auth/token",
                                         [(b"content-type", b"application/json"), (b"content-type", b"text/plain")])
    assert (status, taken) == (400, 0)


async def _stream_headers(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, int, bytes]:
    """A small POST with exactly these headers (repeated ones included) straight to the ASGI app."""
    taken = 0

    async def receive() -> dict[str, Any]:
        nonlocal taken
        taken += 1
        return {"type": "http.request", "body": b"{}", "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    await app(scope, receive, send)
    return taken, sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])
