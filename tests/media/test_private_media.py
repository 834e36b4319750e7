"""Media that are not a report's or a case's (an application's materials: scans of licences and identity
cards) are served only to whom may see the application, never cached, every look audited; anyone else gets
the 404 of an unknown id, before the file is read."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from fastapi.testclient import TestClient

from wecity.core.migrate import alembic_config
from wecity.identity.applicants import sign_citizen
from wecity.identity.models import audit_log
from wecity.identity.service import StaffUser, start_session
from wecity.media import api as media_api
from wecity.media.models import media

from ..conftest import City, make_client
from ..govservice.conftest import Services
from ..open311.conftest import jpeg


def _citizen(s: Services, phone: str) -> dict[str, str]:
    expires = int(s.city.clock.now().timestamp()) + 600
    return {"Authorization": f"Bearer {sign_citizen(s.city.settings.secret_key, phone, expires)}"}


def _staff(s: Services, user: StaffUser) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.city.db.write_sync(lambda c: start_session(c, user.id, s.city.clock.now()))}"}


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as client:
        yield client


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The media whose file was read to be served."""
    done: list[str] = []
    read = media_api.read_content

    def counting(store: Any, record: Any, *, thumbnail: bool = False) -> bytes:
        done.append(record.id)
        return read(store, record, thumbnail=thumbnail)

    monkeypatch.setattr(media_api, "read_content", counting)
    return done


def _material(api: TestClient, s: Services) -> tuple[int, str]:
    """李明's application for a shop sign, with a design drawing uploaded: (its id, the drawing's media id)."""
    me = _citizen(s, "13912345678")
    app_id = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=me).json()["id"]
    r = api.post(f"/api/v1/applications/{app_id}/materials/design",
                 files={"files": ("d.jpg", jpeg(), "image/jpeg")}, headers=me)
    assert r.status_code == 200, r.text
    return app_id, r.json()["materials"]["design"]["media"][0]


def _looks(city: City, app_id: int) -> list[tuple[str, str]]:
    return [(r.actor, r.outcome) for r in city.db.read_sync(lambda c: c.execute(
        sa.select(audit_log.c.actor, audit_log.c.outcome).where(
            audit_log.c.action == "personal_data.view", audit_log.c.target == f"application:{app_id}")
        .order_by(audit_log.c.id)).all())]


def test_an_applications_material_is_seen_only_by_the_applicant_and_its_department(
        api: TestClient, services: Services, reads: list[str]) -> None:
    s = services
    app_id, material = _material(api, s)
    report = api.post("/open311/v2/requests.json", files={"media": ("p.jpg", jpeg(), "image/jpeg")}, data={
        "api_key": s.city.api_key, "service_code": "garbage", "lat": "28.196", "long": "112.977"})
    photo = api.get(f"/open311/v2/requests/{report.json()[0]['service_request_id']}.json").json()[0]["media_url"]
    # A report's photo: anyone, cached for a year, no audit.
    public = api.get(photo.replace("http://testserver", ""))
    assert public.status_code == 200 and public.headers["cache-control"].startswith("public")
    paths = (f"/media/{material}", f"/media/{material}/thumbnail")
    # Nobody signed in, another citizen, another department's staff: as an unknown id, the file unread.
    for path in paths:
        for who in ({}, _citizen(s, "13987654321"), _staff(s, s.market)):
            refused = api.get(path, headers=who)
            assert refused.status_code == 404 and refused.json()["code"] == "media.not_found"
            assert "public" not in refused.headers.get("cache-control", "")
        assert api.head(path).status_code == 404
    assert material not in reads
    # The applicant, and the department the matter belongs to (城管 for a shop sign).
    for path in paths:
        for who in (_citizen(s, "13912345678"), _staff(s, s.accepting)):
            shown = api.get(path, headers=who)
            assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
            assert shown.headers["cache-control"] == "private, no-store"
    assert reads.count(material) == 4
    looks = _looks(s.city, app_id)
    assert looks.count((f"applicant:{s.stranger.id}", "denied")) == 2
    assert looks.count(("user:shichang", "denied")) == 2
    assert looks.count((f"applicant:{s.citizen.id}", "ok")) == 2
    assert looks.count(("user:chengguan", "ok")) == 2
    assert len(looks) == 8  # nobody signed in is refused without asking: nobody to put on the record


def test_a_file_listed_by_two_applications_is_seen_by_the_applicants_of_both(api: TestClient,
                                                                           services: Services) -> None:
    """The first application keeps the file (its ref); another that lists it too (the demo city's share a
    few scans) lets its own applicant see it as well."""
    from wecity.govservice import applications as apply

    s = services
    first, material = _material(api, s)
    other = _citizen(s, "13987654321")
    second = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=other).json()["id"]
    assert api.get(f"/media/{material}", headers=other).status_code == 404
    s.city.db.write_sync(lambda c: apply.attach_material(c, second, citizen=s.stranger, material="design",
                                                         media=[material], now=s.city.clock.now()))
    assert api.get(f"/media/{material}", headers=other).status_code == 200
    assert s.city.db.read_sync(lambda c: c.execute(sa.select(media.c.ref).where(media.c.id == material)).scalar()) \
        == f"application:{first}"
    assert _looks(s.city, second) == [(f"applicant:{s.stranger.id}", "ok")]


def test_materials_uploaded_before_are_claimed_by_their_application(api: TestClient, services: Services) -> None:
    s = services
    app_id, material = _material(api, s)
    city = s.city
    assert city.db.read_sync(lambda c: c.execute(sa.select(media.c.ref).where(media.c.id == material)).scalar()) \
        == f"application:{app_id}"
    # As it was stored before materials were marked, then the migration that marks them.
    cfg = alembic_config(city.settings.database_url)
    with city.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "govservice@8c67b749cd37")
    assert city.db.read_sync(lambda c: c.execute(sa.select(media.c.ref).where(media.c.id == material)).scalar()) \
        is None
    with city.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
    assert city.db.read_sync(lambda c: c.execute(sa.select(media.c.ref).where(media.c.id == material)).scalar()) \
        == f"application:{app_id}"
    with make_client(city) as fresh:
        assert fresh.get(f"/media/{material}").status_code == 404
