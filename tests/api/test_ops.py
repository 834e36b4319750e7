"""Operations surface: health, readiness, metrics, OpenAPI and request ids."""

from ..conftest import City, make_client


def test_health_ready_metrics_openapi(city: City) -> None:
    with make_client(city) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["migrations"] == "current"
        client.get("/api/v1/areas/locate", params={"lat": 28.19, "long": 112.97})
        metrics = client.get("/metrics").text
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
