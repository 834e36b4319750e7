"""An id no row can have (past the database's integer) is an answer like any unknown id, never a 500 from
PostgreSQL: acting_for through the API and the page, and applications and rectifications in the pages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.core.http import MAX_ID
from wecity.govservice.models import applications

from ..conftest import make_client
from ..web.conftest import csrf_token, log_in
from .conftest import Services
from .test_api import citizen_headers
from .test_pages import EN, _as_citizen

HUGE = [MAX_ID + 1, 10**20]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as c:
        yield c


def _drafts(s: Services) -> int:
    return int(s.city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(applications)).scalar()))


def test_acting_for_an_id_past_the_database_s_integers_is_refused(client: TestClient, services: Services) -> None:
    s = services
    me = citizen_headers(s, "13912345678")
    for huge in HUGE:
        r = client.post("/api/v1/applications", json={"matter_code": "T-SIGN", "acting_for": huge}, headers=me)
        assert r.status_code in (400, 422) and r.headers["content-type"].startswith("application/problem+json")
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get("/services/matters/T-SIGN", headers=EN).text)
    for acting in [*map(str, HUGE), "9" * 5000, "²", "firm"]:
        r = client.post("/services/matters/T-SIGN/apply", headers=EN, follow_redirects=False,
                        data={"csrf_token": token, "acting_for": acting})
        assert r.status_code == 403, acting  # no enterprise of this citizen's, not a draft for themselves
    assert _drafts(s) == 0
    r = client.post("/services/matters/T-SIGN/apply", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "acting_for": str(s.firm.id)})
    assert r.status_code == 303 and _drafts(s) == 1


def test_pages_answer_404_for_an_id_past_the_database_s_integers(client: TestClient, services: Services) -> None:
    s = services
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get("/services/matters/T-SIGN", headers=EN).text)
    for huge in HUGE:
        assert client.get(f"/services/applications/{huge}", headers=EN).status_code == 404
        assert client.post(f"/services/applications/{huge}/withdraw", headers=EN,
                           data={"csrf_token": token}).status_code == 404
    assert log_in(client, "chengguan").status_code == 303
    token = csrf_token(client.get("/staff/applications", headers=EN).text)
    for huge in HUGE:
        assert client.get(f"/staff/applications/{huge}", headers=EN).status_code == 404
        assert client.post(f"/staff/applications/{huge}/accept", headers=EN,
                           data={"csrf_token": token}).status_code == 404
        assert client.post(f"/staff/rectifications/{huge}/close", headers=EN,
                           data={"csrf_token": token, "callback_note": "x", "measures": "y"}).status_code == 404
