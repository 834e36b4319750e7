"""Strict-Transport-Security over HTTPS only, HTTPS as the server saw it (a trusted proxy's word, not a client's)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from wecity.api.app import create_app

from ..conftest import ELSEWHERE, LOOPBACK, City

PATHS = ["/healthz", "/", "/open311/v2/services.json", "/api/v1/cases", "/no-such-page"]


def _client(city: City, base_url: str, peer: tuple[str, int]) -> TestClient:
    # As `wecity serve` runs it: uvicorn's proxy-header handling, trusting 127.0.0.1 (its default).
    app = ProxyHeadersMiddleware(create_app(city.settings, clock=city.clock, db=city.db), trusted_hosts="127.0.0.1")
    return TestClient(app, base_url=base_url, client=peer)


@pytest.mark.parametrize("path", PATHS)
def test_every_answer_over_https_carries_hsts(sqlite_city: City, path: str) -> None:
    with _client(sqlite_city, "https://city.example", ELSEWHERE) as client:
        assert client.get(path, follow_redirects=False).headers["strict-transport-security"] == "max-age=31536000"


@pytest.mark.parametrize("path", PATHS)
def test_plain_http_gets_none(sqlite_city: City, path: str) -> None:
    with _client(sqlite_city, "http://city.example", ELSEWHERE) as client:
        assert "strict-transport-security" not in client.get(path, follow_redirects=False).headers


def test_a_trusted_proxy_that_terminated_tls_turns_it_on(sqlite_city: City) -> None:
    with _client(sqlite_city, "http://city.example", LOOPBACK) as client:
        response = client.get("/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_a_client_claiming_https_does_not(sqlite_city: City) -> None:
    with _client(sqlite_city, "http://city.example", ("203.0.113.9", 40000)) as client:
        response = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in response.headers


def test_the_api_sign_in_cookie_is_secure_over_https_only(sqlite_city: City) -> None:
    from wecity.demo.changsha import DEMO_PASSWORD

    credentials = {"username": "supervisor", "password": DEMO_PASSWORD}
    with _client(sqlite_city, "https://city.example", ELSEWHERE) as client:
        cookie = client.post("/api/v1/auth/token", json=credentials).headers["set-cookie"]
    assert "; secure" in cookie.lower() and "path=/" in cookie.lower() and "httponly" in cookie.lower()
    with _client(sqlite_city, "http://city.example", LOOPBACK) as client:
        cookie = client.post("/api/v1/auth/token", json=credentials,
                             headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}).headers["set-cookie"]
    assert "; secure" in cookie.lower()  # TLS ended at a trusted proxy
    with _client(sqlite_city, "http://city.example", ELSEWHERE) as client:
        cookie = client.post("/api/v1/auth/token", json=credentials).headers["set-cookie"]
    assert "secure" not in cookie.lower()
