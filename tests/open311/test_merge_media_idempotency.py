"""Duplicate merge (并单), photos with EXIF, safe retries, and back-office updates over Open311."""

import asyncio
import io

import pytest
import sqlalchemy as sa
from PIL import Image

from wecity.cases import engine
from wecity.cases.models import cases, reports
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.service import add_api_key, authenticate

from ..conftest import SEED_TIME, City, make_client
from .conftest import jpeg
from .test_requests import WUYI_SQUARE, post


def _case_count(city: City) -> int:
    return len(city.db.read_sync(lambda c: c.execute(cases.select()).all()))


def test_reports_nearby_join_the_open_case_and_keep_their_own_ids(city: City) -> None:
    with make_client(city) as client:
        first = post(client, city).json()[0]
        city.clock.advance(hours=5)
        # ~30 m north: same problem
        second = post(client, city, lat=WUYI_SQUARE[0] + 0.00027).json()[0]
        assert "并单" in second["service_notice"]
        assert first["service_request_id"] != second["service_request_id"]
        assert _case_count(city) == 1
        # ~70 m away, a different category, or after the window: separate cases
        post(client, city, lat=WUYI_SQUARE[0] + 0.00063)
        post(client, city, service_code="garbage")
        city.clock.advance(hours=73)
        post(client, city)
        assert _case_count(city) == 4
        statuses = {r["service_request_id"]: r["status_notes"] for r in client.get("/open311/v2/requests.json").json()}
    assert statuses[first["service_request_id"]] == statuses[second["service_request_id"]]


def test_merged_reports_show_the_case_status_when_it_closes(city: City) -> None:
    with make_client(city) as client:
        a = post(client, city).json()[0]["service_request_id"]
        b = post(client, city, lat=WUYI_SQUARE[0] + 0.0001).json()[0]["service_request_id"]
    case_id = city.db.read_sync(lambda c: c.execute(cases.select()).one().id)
    handler = city.db.write_sync(authenticate, "zhujian", DEMO_PASSWORD)
    dispatcher = city.db.write_sync(authenticate, "dispatcher", DEMO_PASSWORD)
    now = SEED_TIME

    def work(conn) -> None:  # noqa: ANN001
        engine.acknowledge(conn, case_id, engine.Actor.staff(handler), now)
        engine.resolve(conn, case_id, engine.Actor.staff(handler), now, note="已填补", evidence_media_id="photo")
        engine.verify(conn, case_id, engine.Actor.staff(dispatcher), now)
        engine.close(conn, case_id, engine.Actor.staff(dispatcher), now)

    city.db.write_sync(work)
    with make_client(city) as client:
        for rid in (a, b):
            assert client.get(f"/open311/v2/requests/{rid}.json").json()[0]["status"] == "closed"
        # A closed case no longer takes new reports: the next one opens a new case.
        post(client, city)
    assert _case_count(city) == 2


def test_photo_with_exif_gps_gives_the_location_and_is_stripped(city: City) -> None:
    photo = jpeg(gps=WUYI_SQUARE)
    with make_client(city) as client:
        response = client.post("/open311/v2/requests.json",
                               data={"api_key": city.api_key, "service_code": "garbage", "description": "垃圾"},
                               files={"media": ("IMG_0001.jpg", photo, "image/jpeg")})
        assert response.status_code == 200, response.text
        rid = response.json()[0]["service_request_id"]
        entry = client.get(f"/open311/v2/requests/{rid}.json?extensions=true").json()[0]
        assert abs(entry["lat"] - WUYI_SQUARE[0]) < 1e-4 and abs(entry["long"] - WUYI_SQUARE[1]) < 1e-4
        # Without coordinates or an address, the photo's position is the case's, published as any location.
        assert city.db.read_sync(lambda c: c.execute(sa.select(cases.c.lat, cases.c.long).join(
            reports, reports.c.case_id == cases.c.id).where(reports.c.id == int(rid))).one()) == (
            entry["lat"], entry["long"])
        assert entry["agency_responsible"] == "市城市管理和综合执法局"
        served = client.get(entry["media_url"].replace("http://testserver", ""))
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/")
        image = Image.open(io.BytesIO(served.content))
        assert not image.getexif(), "metadata must be stripped"
        thumb = entry["extended_attributes"]["photos"][0]["thumbnail_url"].replace("http://testserver", "")
        assert client.get(thumb).status_code == 200


def test_an_address_given_wins_over_the_photos_gps_which_is_never_published(city: City) -> None:
    # Taken 1 km from the place the reporter names: the place they wrote is the report's.
    photo = jpeg(gps=(28.2050, 112.9880))
    with make_client(city) as client:
        response = client.post("/open311/v2/requests.json",
                               data={"api_key": city.api_key, "service_code": "garbage", "description": "垃圾",
                                     "address_string": "五一广场东侧"},
                               files={"media": ("IMG_0002.jpg", photo, "image/jpeg")})
        assert response.status_code == 200, response.text
        rid = response.json()[0]["service_request_id"]
        entry = client.get(f"/open311/v2/requests/{rid}.json").json()[0]
        listed = client.get("/open311/v2/requests.json").text
        case_id = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.case_id).where(
            reports.c.id == int(rid))).scalar_one())
        public = client.get(f"/api/v1/public/cases/{case_id}").json()
    assert (entry["address"], entry["lat"], entry["long"]) == ("五一广场东侧", None, None)
    assert (public["address"], public["lat"], public["long"]) == ("五一广场东侧", None, None)
    assert "28.205" not in listed and "112.988" not in listed
    assert city.db.read_sync(lambda c: c.execute(sa.select(cases.c.lat, cases.c.long).where(
        cases.c.id == case_id)).one()) == (None, None)


def test_v21_media_array_keeps_every_photo(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = client.post("/open311/v2/requests.json",
                               data={"api_key": sqlite_city.api_key, "service_code": "garbage",
                                     "lat": WUYI_SQUARE[0], "long": WUYI_SQUARE[1]},
                               files=[("media[]", ("a.jpg", jpeg(), "image/jpeg")),
                                      ("media[]", ("b.jpg", jpeg(colour=(0, 0, 255)), "image/jpeg"))])
        rid = response.json()[0]["service_request_id"]
        entry = client.get(f"/open311/v2/requests/{rid}.json?extensions=true").json()[0]
    assert len(entry["extended_attributes"]["photos"]) == 2


@pytest.mark.parametrize(("name", "data", "code"), [
    ("fake.jpg", b"<html><script>alert(1)</script></html>", "media"),
    ("truncated.jpg", jpeg()[:200], "media"),
    ("anim.gif", b"GIF89a" + b"\x00" * 100, "media"),
])
def test_bad_upload_is_a_400_and_leaves_nothing_behind(city: City, name: str, data: bytes, code: str) -> None:
    with make_client(city) as client:
        response = client.post("/open311/v2/requests.json",
                               data={"api_key": city.api_key, "service_code": "garbage",
                                     "lat": WUYI_SQUARE[0], "long": WUYI_SQUARE[1]},
                               files={"media": (name, data, "image/jpeg")})
    assert response.status_code == 400
    assert response.json()[0]["code"] == 400
    assert city.db.read_sync(lambda c: c.execute(reports.select()).all()) == []
    media_dir = city.settings.media_dir
    assert not media_dir.exists() or not [p for p in media_dir.rglob("*") if p.is_file()]


def test_a_failed_report_discards_its_already_written_photo(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        response = client.post("/open311/v2/requests.json",
                               data={"api_key": sqlite_city.api_key, "service_code": "garbage",
                                     "lat": 39.9, "long": 116.4},  # Beijing: outside the city
                               files={"media": ("a.jpg", jpeg(), "image/jpeg")})
    assert response.status_code == 400
    media_dir = sqlite_city.settings.media_dir
    assert not media_dir.exists() or not [p for p in media_dir.rglob("*") if p.is_file() and p.relative_to(media_dir).parts[0] != "tmp"]


def test_idempotency_key_returns_the_first_result(city: City) -> None:
    with make_client(city) as client:
        headers = {"Idempotency-Key": "retry-7f3a"}
        data = {"api_key": city.api_key, "service_code": "noise", "lat": WUYI_SQUARE[0], "long": WUYI_SQUARE[1]}
        first = client.post("/open311/v2/requests.json", data=data, headers=headers)
        again = client.post("/open311/v2/requests.json", data=data, headers=headers)
        assert first.status_code == again.status_code == 200
        assert first.text == again.text
        assert len(city.db.read_sync(lambda c: c.execute(reports.select()).all())) == 1
        different = client.post("/open311/v2/requests.json", data={**data, "description": "other"}, headers=headers)
        # Open311 allows only 400/403/404: a reused key with another body is a 400 that says so.
        assert different.status_code == 400 and "Idempotency-Key" in different.json()[0]["description"]
        other_key = client.post("/open311/v2/requests.json", data=data, headers={"Idempotency-Key": "retry-2"})
        assert other_key.json()[0]["service_request_id"] != first.json()[0]["service_request_id"]


def test_concurrent_retries_with_one_key_store_one_report(city: City) -> None:
    sqlite_city = city
    import httpx

    from wecity.api.app import create_app

    app = create_app(sqlite_city.settings, clock=sqlite_city.clock, db=sqlite_city.db)
    data = {"api_key": sqlite_city.api_key, "service_code": "noise", "lat": WUYI_SQUARE[0], "long": WUYI_SQUARE[1]}

    async def run() -> list[str]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                responses = await asyncio.gather(*(client.post("/open311/v2/requests.json", data=data,
                                                               headers={"Idempotency-Key": "same"})
                                                   for _ in range(20)))
        return [r.text for r in responses]

    bodies = asyncio.run(run())
    assert len(set(bodies)) == 1
    assert len(sqlite_city.db.read_sync(lambda c: c.execute(reports.select()).all())) == 1


def test_back_office_pushes_status_through_servicerequestupdates(city: City) -> None:
    key = city.db.write_sync(lambda c: add_api_key(c, name="住建 back office", username="zhujian",
                                                                   scopes=["open311:write"], now=SEED_TIME))
    with make_client(city) as client:
        rid = post(client, city).json()[0]["service_request_id"]
        for status in ("INVESTIGATING", "IN_PROGRESS"):
            r = client.post("/open311/v2/servicerequestupdates.json",
                            data={"api_key": key, "service_request_id": rid, "status": status,
                                  "description": "已安排施工队"})
            assert r.status_code == 200, r.text
            assert r.json()[0]["update_id"]
        # FIXED without evidence is refused by the case engine, in Open311's error format.
        refused = client.post("/open311/v2/servicerequestupdates.xml",
                              data={"api_key": key, "service_request_id": rid, "status": "FIXED",
                                    "description": "修好了"})
        assert refused.status_code == 400 and b"<errors>" in refused.content
        # A client key that belongs to no staff user cannot push updates.
        assert client.post("/open311/v2/servicerequestupdates.json",
                           data={"api_key": city.api_key, "service_request_id": rid,
                                 "status": "IN_PROGRESS"}).status_code == 403
        updates = client.get("/open311/v2/servicerequestupdates.json").json()
    assert [u["status"] for u in updates if u["service_request_id"] == rid][-2:] == ["INVESTIGATING", "IN_PROGRESS"]


def _push_fixed(client, key: str, rid: str, media_url: str):  # noqa: ANN001, ANN202
    for status in ("INVESTIGATING", "IN_PROGRESS"):
        assert client.post("/open311/v2/servicerequestupdates.json", data={
            "api_key": key, "service_request_id": rid, "status": status}).status_code == 200
    return client.post("/open311/v2/servicerequestupdates.json", data={
        "api_key": key, "service_request_id": rid, "status": "FIXED", "description": "已修复", "media_url": media_url})


def _evidence_of(city: City, rid: str) -> tuple[str, str | None]:
    row = city.db.read_sync(lambda c: c.execute(
        cases.select().where(cases.c.id == reports.select().with_only_columns(reports.c.case_id)
                             .where(reports.c.id == int(rid)).scalar_subquery())).one())
    return row.status, row.evidence_media_id


@pytest.mark.parametrize("media_url", [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)//https://photos.example.cn/1.jpg",
    "data:image/svg+xml;base64,PHN2Zy8+",
    "/api/v1/admin/outbox",                 # a path of this site
    "//photos.example.cn/1.jpg",            # no scheme
    "http://testserver/logout",             # this site, not a photo of it
    "https://user:secret@photos.example.cn/1.jpg",
    "https://photos.example.cn/a\u0000b.jpg",
    "ftp://photos.example.cn/1.jpg",
    "https://photos.example.cn/" + "p" * 64 + ".jpg",  # longer than the evidence column holds
    "a" * 32,                               # shaped like a media id, but nothing was uploaded
])
def test_pushed_evidence_is_only_an_uploaded_photo_or_an_outside_http_url(sqlite_city: City, media_url: str) -> None:
    key = sqlite_city.db.write_sync(lambda c: add_api_key(c, name="back office", username="zhujian", scopes=["open311:write"],
                                                          now=SEED_TIME))
    with make_client(sqlite_city) as client:
        rid = post(client, sqlite_city).json()[0]["service_request_id"]
        refused = _push_fixed(client, key, rid, media_url)
    assert refused.status_code == 400, refused.text
    assert "media_url" in refused.json()[0]["description"]
    assert _evidence_of(sqlite_city, rid) == ("in_progress", None)


def test_pushed_evidence_takes_an_outside_url_or_this_sites_photo(city: City) -> None:
    from wecity.media.images import inspect_image
    from wecity.media.service import media_store, store_image

    key = city.db.write_sync(lambda c: add_api_key(c, name="back office", username="zhujian", scopes=["open311:write"],
                                                          now=SEED_TIME))
    checked = inspect_image(jpeg(), max_bytes=city.settings.max_upload_bytes, max_pixels=city.settings.max_image_pixels)
    photo = city.db.write_sync(lambda c: store_image(c, media_store(city.settings), checked, now=SEED_TIME))
    with make_client(city) as client:
        outside = post(client, city).json()[0]["service_request_id"]
        ours = post(client, city, lat=WUYI_SQUARE[0] + 0.00063).json()[0]["service_request_id"]  # ~70 m: its own case
        assert _push_fixed(client, key, outside, "https://photos.example.cn/e/1.jpg").status_code == 200
        assert _push_fixed(client, key, ours, f"http://testserver/media/{photo.id}").status_code == 200
    assert _evidence_of(city, outside) == ("resolved", "https://photos.example.cn/e/1.jpg")
    assert _evidence_of(city, ours) == ("resolved", photo.id)
