"""Closing a rectification: the call back and the measures are kept whole or refused (one limit, the page's
and the API's alike), and every refusal is on the audit record."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.core.errors import ValidationFailed
from wecity.govservice import ratings
from wecity.govservice.models import applications, rectifications
from wecity.identity.models import audit_log

from ..conftest import make_client
from ..web.conftest import csrf_token, log_in
from .conftest import Services
from .test_flow import licensed, write
from .test_pages import EN


@pytest.fixture
def portal(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as client:
        yield client


def _rectification(s: Services) -> int:
    """A bad rating of the licence the market department issued: its rectification's id."""
    licensed(s)
    app_id = s.city.db.read_sync(lambda c: c.execute(sa.select(applications.c.id).where(
        applications.c.matter_code == "T-BIZ")).scalar_one())
    rect = write(s, lambda c: ratings.rate(c, app_id, citizen=s.citizen, level=1, tags=["slow"], now=s.city.clock.now()))
    assert rect is not None
    return int(rect)


def _closed(s: Services, rect: int) -> tuple[object, object, object]:
    row = s.city.db.read_sync(lambda c: c.execute(sa.select(
        rectifications.c.closed_at, rectifications.c.callback_note, rectifications.c.measures).where(
        rectifications.c.id == rect)).one())
    return row.closed_at, row.callback_note, row.measures


def _refusals(s: Services, rect: int) -> list[tuple[str, str]]:
    return s.city.db.read_sync(lambda c: [tuple(r) for r in c.execute(sa.select(audit_log.c.actor, audit_log.c.outcome)
                                          .where(audit_log.c.action == "rectification.close",
                                                 audit_log.c.target == f"rectification:{rect}",
                                                 audit_log.c.outcome != "ok").order_by(audit_log.c.id))])


def test_an_over_long_call_back_is_refused_not_cut_short(services: Services) -> None:
    s = services
    rect = _rectification(s)
    limit = ratings.MAX_RECTIFICATION_TEXT
    with pytest.raises(ValidationFailed) as refused:
        write(s, lambda c: ratings.close_rectification(c, rect, staff=s.market, department_code="shichang",
                                                       callback_note="已回访", measures="改" * (limit + 1),
                                                       now=s.city.clock.now()))
    assert refused.value.code == "govservice.note_too_long"
    assert _closed(s, rect) == (None, None, None)
    write(s, lambda c: ratings.close_rectification(c, rect, staff=s.market, department_code="shichang",
                                                   callback_note="已回访", measures="改" * limit, now=s.city.clock.now()))
    assert _closed(s, rect)[2] == "改" * limit


def test_the_page_refuses_what_the_api_refuses_and_records_each_refusal(portal: TestClient, services: Services) -> None:
    s = services
    rect = _rectification(s)
    limit = ratings.MAX_RECTIFICATION_TEXT
    assert log_in(portal, "chengguan").status_code == 303  # another department
    token = csrf_token(portal.get("/staff/applications", headers=EN).text)
    r = portal.post(f"/staff/rectifications/{rect}/close", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "callback_note": "x", "measures": "y"})
    assert r.status_code == 403
    portal.post("/logout", data={"csrf_token": token})
    assert log_in(portal, "shichang").status_code == 303
    token = csrf_token(portal.get("/staff/applications", headers=EN).text)
    r = portal.post(f"/staff/rectifications/{rect}/close", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "callback_note": "已回访", "measures": "改" * (limit + 1)})
    assert r.status_code == 400 and f"at most {limit:,} characters" in r.text
    assert _closed(s, rect) == (None, None, None)
    assert _refusals(s, rect) == [("user:chengguan", "denied"), ("user:shichang", "refused")]
    r = portal.post(f"/staff/rectifications/{rect}/close", headers=EN, follow_redirects=False,
                    data={"csrf_token": token, "callback_note": "已回访", "measures": "改" * limit})
    assert r.status_code == 303 and _closed(s, rect)[2] == "改" * limit


def test_the_api_records_a_refused_close(portal: TestClient, services: Services) -> None:
    from .test_api import staff_headers

    s = services
    rect = _rectification(s)
    r = portal.post(f"/api/v1/department/rectifications/{rect}/close", headers=staff_headers(s, s.transport),
                    json={"callback_note": "x", "measures": "y"})
    assert r.status_code == 403
    assert _refusals(s, rect) == [("user:jiaotong", "denied")]


def _refusal_codes(s: Services, rect: int) -> list[str]:
    return s.city.db.read_sync(lambda c: [r.detail["code"] for r in c.execute(
        sa.select(audit_log.c.detail).where(audit_log.c.action == "rectification.close",
                                            audit_log.c.target == f"rectification:{rect}",
                                            audit_log.c.outcome != "ok").order_by(audit_log.c.id))])


def test_an_over_long_or_empty_close_through_the_api_is_refused_by_the_verb_and_recorded(
        portal: TestClient, services: Services) -> None:
    from .test_api import staff_headers

    s = services
    rect = _rectification(s)
    limit = ratings.MAX_RECTIFICATION_TEXT
    path, market = f"/api/v1/department/rectifications/{rect}/close", staff_headers(s, s.market)
    long = portal.post(path, headers=market, json={"callback_note": "已回访", "measures": "改" * (limit + 1)})
    assert long.status_code == 400 and long.json()["code"] == "govservice.note_too_long"
    empty = portal.post(path, headers=market, json={"callback_note": " ", "measures": "改"})
    assert empty.status_code == 400 and empty.json()["code"] == "govservice.reason_required"
    assert _closed(s, rect) == (None, None, None)
    assert _refusal_codes(s, rect) == ["govservice.note_too_long", "govservice.reason_required"]
    # The page refuses with the same code.
    assert log_in(portal, "shichang").status_code == 303
    token = csrf_token(portal.get("/staff/applications", headers=EN).text)
    page = portal.post(f"/staff/rectifications/{rect}/close", headers=EN, follow_redirects=False,
                       data={"csrf_token": token, "callback_note": "回" * (limit + 1), "measures": "改"})
    assert page.status_code == 400 and f"at most {limit:,} characters" in page.text
    assert _refusal_codes(s, rect)[-1] == "govservice.note_too_long"
    done = portal.post(path, headers=market, json={"callback_note": "已回访", "measures": "改" * limit})
    assert done.status_code == 200 and _closed(s, rect)[2] == "改" * limit
