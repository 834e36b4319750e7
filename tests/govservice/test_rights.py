"""Rights not covered by the verb matrices of test_api: importing the catalogue, another citizen's upload and
certificate PDF, the citizen's page actions tried by another citizen, and the staff page actions tried by
another department. Each is refused and nothing changes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.govservice.catalogue import export_catalogue
from wecity.govservice.models import applications

from ..conftest import make_client
from ..web.conftest import csrf_token, log_in
from .conftest import LICENCE_MATTER, Services
from .test_api import _licence, _png, _submitted_sign, citizen_headers, staff_headers
from .test_pages import EN, _as_citizen


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as client:
        yield client


def _row(s: Services, app_id: int) -> Any:
    return s.city.db.read_sync(lambda c: tuple(c.execute(sa.select(
        applications.c.status, applications.c.materials, applications.c.form_data, applications.c.workflow,
        applications.c.extended_days).where(applications.c.id == app_id)).one()))


def test_only_an_administrator_imports_the_catalogue(api: TestClient, services: Services) -> None:
    s = services
    before = s.city.db.read_sync(export_catalogue)
    changed = {"format": "wecity-matters/1", "matters": [{**LICENCE_MATTER, "name_zh": "改名"}]}
    assert api.post("/api/v1/catalogue", json=changed).status_code == 401
    assert api.post("/api/v1/catalogue", json=changed, headers=citizen_headers(s, "13912345678")).status_code == 401
    for who in (s.accepting, s.lead, s.market_lead):  # a handler, supervisors: staff, not administrators
        assert api.post("/api/v1/catalogue", json=changed, headers=staff_headers(s, who)).status_code == 403
    assert s.city.db.read_sync(export_catalogue) == before


def test_another_citizen_neither_uploads_nor_gets_the_pdf(api: TestClient, services: Services) -> None:
    s = services
    number = _licence(api, s)
    me, other = citizen_headers(s, "13912345678"), citizen_headers(s, "13987654321")
    draft = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=me).json()["id"]
    before = _row(s, draft)
    r = api.post(f"/api/v1/applications/{draft}/materials/design", files={"files": ("d.png", _png(), "image/png")},
                 headers=other)
    assert r.status_code == 404 and _row(s, draft) == before
    assert api.get(f"/api/v1/certificates/{number}/pdf", headers=other).status_code == 404


@pytest.mark.parametrize("action", ["withdraw", "upload", "supply", "rate", "save", "submit"])
def test_the_citizen_s_page_actions_by_another_citizen(api: TestClient, services: Services, action: str) -> None:
    s = services
    _licence(api, s)
    app_id = _submitted_sign(api, s)["id"]
    before = _row(s, app_id)
    _as_citizen(api, s, "13987654321")
    token = csrf_token(api.get("/services/matters/T-SIGN", headers=EN).text)
    data = {"csrf_token": token, "material": "design", "level": "1", "f.address": "别处"}
    files = {"files": ("d.png", _png(), "image/png")} if action == "upload" else None
    r = api.post(f"/services/applications/{app_id}/{action}", data=data, files=files, headers=EN,
                 follow_redirects=False)
    assert r.status_code == 404 and _row(s, app_id) == before


STAFF_ACTIONS = {
    "accept": {}, "not-accept": {"reason": "x", "legal_basis": "y"}, "supplement": {"note": "x"},
    "review": {"outcome": "approve"}, "decide": {"outcome": "approve"}, "special": {"kind": "inspection", "reason": "x"},
    "special-end": {}, "extend": {"days": "2", "reason": "x"},
}


def test_the_staff_page_actions_by_another_department(api: TestClient, services: Services) -> None:
    s = services
    _licence(api, s)
    app_id = _submitted_sign(api, s)["id"]
    before = _row(s, app_id)
    assert log_in(api, "shichang").status_code == 303  # the market department: neither owner nor reviewer
    token = csrf_token(api.get("/staff/applications", headers=EN).text)
    for action, data in STAFF_ACTIONS.items():
        r = api.post(f"/staff/applications/{app_id}/{action}", data={"csrf_token": token, **data}, headers=EN,
                     follow_redirects=False)
        assert r.status_code == 403, action
    assert _row(s, app_id) == before
    # A reviewing department, once the application is in review, takes none of the owner's steps.
    api.post(f"/api/v1/department/applications/{app_id}/accept", headers=staff_headers(s, s.accepting))
    before = _row(s, app_id)
    api.post("/logout", data={"csrf_token": token})
    assert log_in(api, "jiaotong").status_code == 303
    token = csrf_token(api.get("/staff/applications", headers=EN).text)
    for action in ("not-accept", "decide", "special", "extend"):
        r = api.post(f"/staff/applications/{app_id}/{action}", data={"csrf_token": token, **STAFF_ACTIONS[action]},
                     headers=EN, follow_redirects=False)
        assert r.status_code in (403, 409), action
    assert _row(s, app_id) == before
