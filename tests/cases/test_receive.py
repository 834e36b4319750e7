"""The one intake verb, as every channel meets it: credentials first, one report per key, honest errors."""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from PIL import Image

from tests.conftest import City, make_client
from tests.web.conftest import csrf_token
from wecity.cases.models import idempotency_keys, reports
from wecity.core.errors import DependencyUnavailable
from wecity.core.limits import parse_rule
from wecity.media.models import media

# 五一广场, 芙蓉区 (WGS-84)
LAT, LONG = 28.19567, 112.97170


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _count(city: City, table: sa.Table) -> int:
    return int(city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()))


def _files(city: City) -> list[str]:
    root = city.settings.media_dir
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp") if root.exists() else []


def test_a_wrong_api_key_is_refused_before_any_photo_is_decoded(sqlite_city: City,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from wecity.media import uploads

    decoded: list[int] = []
    real = uploads.inspect_image
    monkeypatch.setattr(uploads, "inspect_image", lambda data, **kw: decoded.append(len(data)) or real(data, **kw))
    data = {"api_key": "not-a-key", "service_code": "pothole", "lat": LAT, "long": LONG}
    with make_client(sqlite_city) as client:
        refused = client.post("/open311/v2/requests.json", data=data, files={"media": ("a.jpg", _jpeg(), "image/jpeg")})
        assert refused.status_code == 403 and decoded == []
        taken = client.post("/open311/v2/requests.json", data={**data, "api_key": sqlite_city.api_key},
                            files={"media": ("a.jpg", _jpeg(), "image/jpeg")})
    assert taken.status_code == 200 and len(decoded) == 1


def test_a_replayed_report_keeps_the_first_photos_and_removes_its_own(sqlite_city: City) -> None:
    data = {"api_key": sqlite_city.api_key, "service_code": "pothole", "lat": LAT, "long": LONG}
    with make_client(sqlite_city) as client:
        responses = [client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "k-1"},
                                 files={"media": ("a.jpg", _jpeg(), "image/jpeg")}) for _ in range(3)]
    assert {r.text for r in responses} == {responses[0].text} and responses[0].status_code == 200
    assert _count(sqlite_city, reports) == 1 and _count(sqlite_city, media) == 1
    assert len(_files(sqlite_city)) == 2  # the photo and its thumbnail, once


def test_the_portal_shows_a_failure_of_the_city_as_one_not_as_a_form_error(sqlite_city: City,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from wecity.web import citizen

    async def unavailable(*args: Any, **kwargs: Any) -> None:
        raise DependencyUnavailable("the database is not answering", message_zh="数据库暂时无法访问")

    monkeypatch.setattr(citizen, "receive_report", unavailable)
    with make_client(sqlite_city) as web:
        form = web.get("/report").text
        response = web.post("/report", data={"csrf_token": csrf_token(form), "service_code": "garbage",
                                             "lat": str(LAT), "long": str(LONG)}, follow_redirects=False)
    assert response.status_code == 503
    assert "数据库暂时无法访问" in response.text


def test_concurrent_posts_of_one_portal_form_make_one_report(city: City) -> None:
    from wecity.api.app import create_app

    # Twelve posts a moment from one address: more than the portal's rate limit lets through, by design.
    unlimited = {**city.settings.rate_limits, "portal_report": parse_rule("off")}
    app = create_app(replace(city.settings, rate_limits=unlimited), clock=city.clock, db=city.db)

    async def run() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as web:
                form = (await web.get("/report")).text
                key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', form)
                assert key
                data = {"csrf_token": csrf_token(form), "idempotency_key": key.group(1), "service_code": "garbage",
                        "lat": str(LAT), "long": str(LONG), "description": "连点了很多次"}
                return list(await asyncio.gather(*(web.post("/report", data=data) for _ in range(12))))

    responses = asyncio.run(run())
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    assert _count(city, reports) == 1


@pytest.mark.parametrize("legacy_body", ["open311", "portal"])
def test_keys_stored_by_the_earlier_channel_code_still_replay(sqlite_city: City, legacy_body: str) -> None:
    """Keys written before receipts held each channel's own response; a retry across the upgrade replays them."""
    data = {"api_key": sqlite_city.api_key, "service_code": "pothole", "lat": LAT, "long": LONG}
    with make_client(sqlite_city) as client:
        first = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "old"})
        entry = first.json()[0]
        body = first.text if legacy_body == "open311" else f"{entry['token']} case"
        sqlite_city.db.write_sync(lambda c: c.execute(idempotency_keys.update().values(
            content_type="application/json", status_code=200, body=body)))
        again = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "old"})
    assert again.status_code == 200
    replayed = again.json()[0]
    assert (replayed["service_request_id"], replayed["token"]) == (entry["service_request_id"], entry["token"])
    assert replayed["service_notice"] == entry["service_notice"]
    assert _count(sqlite_city, reports) == 1


def test_photos_are_decoded_in_a_pool_of_their_own(sqlite_city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding never takes the threads that serve database reads (asyncio's default pool)."""
    import threading

    from wecity.media import uploads

    threads: list[str] = []
    real = uploads.inspect_image
    monkeypatch.setattr(uploads, "inspect_image",
                        lambda data, **kw: threads.append(threading.current_thread().name) or real(data, **kw))
    data = {"api_key": sqlite_city.api_key, "service_code": "pothole", "lat": LAT, "long": LONG}
    with make_client(sqlite_city) as client:
        taken = client.post("/open311/v2/requests.json", data=data, files={"media": ("a.jpg", _jpeg(), "image/jpeg")})
    assert taken.status_code == 200
    assert len(threads) == 1 and threads[0].startswith("wecity-image")


def test_idempotency_keys_are_kept_a_day_then_purged(sqlite_city: City) -> None:
    from wecity.cases import wiring
    from wecity.core.context import AppContext

    data = {"api_key": sqlite_city.api_key, "service_code": "pothole", "lat": LAT, "long": LONG}
    ctx = AppContext(settings=sqlite_city.settings, db=sqlite_city.db, clock=sqlite_city.clock)
    with make_client(sqlite_city) as client:
        first = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "day"})
        sqlite_city.clock.advance(hours=23)
        asyncio.run(wiring.purge_idempotency_keys(ctx))
        within_a_day = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "day"})
        assert within_a_day.json()[0]["token"] == first.json()[0]["token"] and _count(sqlite_city, reports) == 1
        sqlite_city.clock.advance(hours=2)
        asyncio.run(wiring.purge_idempotency_keys(ctx))
        assert _count(sqlite_city, idempotency_keys) == 0
        after = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "day"})
    assert after.status_code == 200 and after.json()[0]["token"] != first.json()[0]["token"]
