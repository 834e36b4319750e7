"""Uploads are read after the caller's rights: a caller who may not upload gets the rights answer, not an
answer about a body the server should never have read. A declared `UploadFile` parameter makes FastAPI take
in the whole multipart body before any dependency runs; these routes read it themselves, afterwards. The
body here is not valid multipart, so a route that read it first would answer 400 instead."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import City, make_client
from wecity.identity.models import users
from wecity.identity.service import start_session

BROKEN = {"Content-Type": "multipart/form-data; boundary=nothing-follows"}


def _staff(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def test_an_upload_by_a_caller_without_the_right_is_refused_before_its_body_is_read(city: City) -> None:
    from wecity.demo.datasets import seed_datasets

    city.db.write_sync(lambda c: seed_datasets(c, city.clock.now()))
    with make_client(city) as client:
        assert client.post("/api/v1/media", content=b"not multipart", headers=BROKEN).status_code == 401
        refused = client.post("/api/v1/datasets/service-standards/rows", content=b"not multipart",
                              headers={**BROKEN, **_staff(city, "chengguan")})
        assert refused.status_code == 403 and refused.json()["code"] == "datashare.not_publisher"
        refused = client.post("/api/v1/enterprises/import", content=b"not multipart",
                              headers={**BROKEN, **_staff(city, "chengguan")})
        assert refused.status_code == 403
        assert client.post("/api/v1/applications/1/materials/design", content=b"not multipart",
                           headers=BROKEN).status_code == 401


def test_staff_upload_an_evidence_photo(city: City) -> None:
    from tests.web.test_citizen import _jpeg

    with make_client(city) as client:
        done = client.post("/api/v1/media", files={"file": ("p.jpg", _jpeg(), "image/jpeg")},
                           headers=_staff(city, "chengguan"))
        assert done.status_code == 200, done.text
        assert client.get(done.json()["url"]).status_code == 200
        missing = client.post("/api/v1/media", files={"other": ("p.jpg", _jpeg(), "image/jpeg")},
                              headers=_staff(city, "chengguan"))
        assert missing.status_code == 400 and missing.json()["code"] == "media.missing"
