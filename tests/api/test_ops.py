"""Operations surface: health, readiness, metrics, OpenAPI and request ids."""

import pytest

from ..conftest import LOOPBACK, City, make_client


def test_health_ready_metrics_openapi(city: City) -> None:
    with make_client(city, peer=LOOPBACK) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["migrations"] == "current"
        client.get("/api/v1/areas/locate", params={"lat": 28.19, "long": 112.97})
        metrics = client.get("/metrics").text  # from this machine: no token needed
        assert 'wecity_http_requests_total{method="GET",route="/api/v1/areas/locate",status="200"}' in metrics
        assert 'wecity_outbox_messages{status="dead"} 0.0' in metrics
        assert 'wecity_open_cases{kind="open"}' in metrics
        spec = client.get("/openapi.json").json()
        assert "/api/v1/areas/locate" in spec["paths"]
        assert "swagger-ui" in client.get("/docs").text


def test_readyz_reports_missing_migrations(city: City) -> None:
    with city.db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM alembic_version")
    with make_client(city) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["migrations"]["current"] == []


def test_request_id_is_echoed_or_made(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        assert client.get("/healthz", headers={"x-request-id": "abc123"}).headers["x-request-id"] == "abc123"
        assert len(client.get("/healthz").headers["x-request-id"]) == 16


def test_unknown_addresses_answer_in_each_protocols_format(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        page = client.get("/no-such-page", headers={"Accept-Language": "en"})
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "Not found" in page.text and "<h1>" in page.text
        assert "页面" in client.get("/no-such-page").text  # Chinese by default
        api = client.get("/api/v1/no-such-thing")
        assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"
        open311 = client.get("/open311/v2/no-such-thing.json")
        assert open311.status_code == 404 and open311.json()[0]["code"] == 404
        assert client.delete("/healthz").status_code == 405


TOKEN = "prometheus-" + "t" * 20


@pytest.mark.parametrize(("peer", "headers", "token", "status"), [
    (("203.0.113.9", 40000), {}, None, 403),                                     # the internet, no token set
    (LOOPBACK, {"X-Forwarded-For": "203.0.113.9"}, None, 403),                   # through a proxy on this machine
    (LOOPBACK, {"Forwarded": "for=203.0.113.9"}, None, 403),
    (("::1", 40000), {}, None, 200),
    (("::ffff:127.0.0.1", 40000), {}, None, 200),
    (("203.0.113.9", 40000), {}, TOKEN, 401),                                    # token set, none sent
    (("203.0.113.9", 40000), {"Authorization": "Bearer wrong"}, TOKEN, 401),
    (LOOPBACK, {}, TOKEN, 401),                                                  # with a token, it is the rule
    (("203.0.113.9", 40000), {"Authorization": f"Bearer {TOKEN}"}, TOKEN, 200),
])
def test_metrics_answer_this_machine_or_the_token_bearer(sqlite_city: City, peer: tuple[str, int],
                                                         headers: dict[str, str], token: str | None,
                                                         status: int) -> None:
    with make_client(sqlite_city, peer=peer, metrics_token=token) as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == status, response.text
    if status == 200:
        assert "wecity_http_requests_total" in response.text
    else:
        assert "WECITY_METRICS_TOKEN" in response.json()["title"]
