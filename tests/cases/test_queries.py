"""The one read model of cases: queues ordered and cut by the database, one rule for the running SLA clock,
the same answers for the staff API and the portal."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import City, make_client
from tests.web.conftest import log_in
from wecity.cases import queries
from wecity.cases.choices import CaseStatus
from wecity.cases.figures import overview
from wecity.cases.models import cases
from wecity.identity.models import users
from wecity.identity.service import get_user

from .conftest import case_row, open_case

MANY = 600  # more than a queue page (500), so a cut made before sorting would show


def _user(city: City, name: str) -> Any:
    return city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == name)).scalar_one()))


def _copies(city: City, template_id: int, rows: list[dict[str, Any]]) -> list[int]:
    """Insert copies of a case with some fields changed, in the order given; their ids."""
    base = {k: v for k, v in case_row(city, template_id)._mapping.items() if k != "id"}

    def insert(conn: sa.Connection) -> list[int]:
        return [conn.execute(cases.insert().values({**base, **row})).inserted_primary_key[0] for row in rows]

    return city.db.write_sync(insert)


def _many_dispatched(city: City) -> tuple[int, list[int]]:
    """MANY dispatched cases, acknowledge deadlines later the later they were made; the last one made is
    the most urgent of all (its deadline has passed). Returns (most urgent id, every id)."""
    now = city.clock.now()
    template = open_case(city)
    rows = [{"status": "dispatched", "ack_due_at": now + timedelta(minutes=10 + i)} for i in range(MANY)]
    rows.append({"status": "dispatched", "ack_due_at": now - timedelta(minutes=5)})
    ids = _copies(city, template, rows)
    return ids[-1], [template, *ids]


def test_the_queue_is_sorted_by_the_database_before_it_is_cut(city: City) -> None:
    urgent, _ids = _many_dispatched(city)
    handler = _user(city, "chengguan")
    now = city.clock.now()
    page = city.db.read_sync(lambda c: queries.queue(c, handler, now, name="department", limit=500))
    assert len(page) == 500
    assert page[0]["id"] == urgent and page[0]["overdue"] and page[0]["clock"] == "acknowledge"
    whole = city.db.read_sync(lambda c: queries.queue(c, handler, now, name="department", limit=10_000))
    dues = [c["next_due_at"] for c in whole if c["next_due_at"] is not None]
    assert dues == sorted(dues) and len(whole) > 500
    assert [c["id"] for c in page] == [c["id"] for c in whole[:500]]


def test_the_portal_queue_shows_the_most_urgent_case_first(sqlite_city: City) -> None:
    urgent, _ids = _many_dispatched(sqlite_city)
    with make_client(sqlite_city) as web:
        log_in(web, "chengguan")
        html = web.get("/staff/queue").text
    listed = [int(n) for n in re.findall(r'href="/staff/cases/(\d+)"', html)]
    assert listed[0] == urgent
    assert len(listed) == 500


def test_no_clock_runs_while_the_dispatch_centre_holds_a_case(city: City) -> None:
    now = city.clock.now()
    template = open_case(city)
    past = now - timedelta(hours=1)
    returned, submitted = _copies(city, template, [
        {"status": "returned", "ack_due_at": past, "resolve_due_at": past},
        {"status": "submitted", "ack_due_at": past, "resolve_due_at": past}])
    dispatcher = _user(city, "dispatcher")

    def read(name: str) -> dict[int, dict[str, Any]]:
        return {c["id"]: c for c in city.db.read_sync(
            lambda conn: queries.queue(conn, dispatcher, now, name=name, limit=10_000))}

    dispatch = read("dispatch")
    for case_id in (returned, submitted):
        assert dispatch[case_id]["clock"] == "none" and not dispatch[case_id]["overdue"]
        assert case_id not in read("overdue")
    assert list(dispatch)[:2] == [returned, submitted], "returned first, then not yet dispatched"
    figures = city.db.read_sync(lambda c: overview(c, now))
    counted = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(cases).where(
        sa.or_(sa.and_(cases.c.status == "dispatched", cases.c.ack_due_at < now),
               sa.and_(cases.c.status.in_(["acknowledged", "in_progress"]), cases.c.resolve_due_at < now))))
        .scalar_one())
    assert figures["overdue"] == counted


def test_the_api_and_the_portal_read_the_same_queue(sqlite_city: City) -> None:
    urgent, _ids = _many_dispatched(sqlite_city)
    with make_client(sqlite_city) as web:
        log_in(web, "chengguan")
        api = web.get("/api/v1/cases", params={"queue": "department", "limit": 50})
        assert api.status_code == 200, api.text
        html = web.get("/staff/queue").text
    portal = [int(n) for n in re.findall(r'href="/staff/cases/(\d+)"', html)]
    assert [c["id"] for c in api.json()] == portal[:50]
    assert api.json()[0]["id"] == urgent and api.json()[0]["status"] == CaseStatus.DISPATCHED


def test_an_enterprises_case_is_not_shown_to_the_public_but_followed_by_its_tracking_code(city: City) -> None:
    """An enterprise's 诉求 names the enterprise and what it complains of: not on the public case page, the
    map or the open cases nearby; its reporter follows it by tracking code."""
    from wecity.cases.categories import add_category
    from wecity.cases.choices import Channel
    from wecity.cases.models import reports
    from wecity.core.errors import NotFound

    def seed(conn: sa.Connection) -> None:
        add_category(conn, code="ent-policy", name_zh="惠企政策兑现问题", name_en="Support policy not delivered",
                     group_zh="营商环境", group_en="Business environment", department_code="shichang",
                     ack_minutes=240, resolve_hours=40, calendar="working", channels=[str(Channel.ENTERPRISE)])

    city.db.write_sync(seed)
    lat, lon = 28.1960, 112.9770
    hidden = open_case(city, code="ent-policy", lat=lat, long=lon, channel=Channel.ENTERPRISE,
                       address="湖南某某科技有限公司（芙蓉区）")
    shown = open_case(city, lat=lat + 0.01, long=lon)  # a citizen's report, 1 km north
    now = city.clock.now()
    with pytest.raises(NotFound):
        city.db.read_sync(queries.public_view, hidden)
    assert city.db.read_sync(queries.public_view, shown)["id"] == shown
    mapped = {r["case_id"] for r in city.db.read_sync(lambda c: queries.public_map(c, now))}
    assert shown in mapped and hidden not in mapped
    near = city.db.read_sync(lambda c: queries.nearby_open_cases(c, lat=lat, lon=lon, category_code=None, now=now,
                                                                 radius_m=2000))
    assert [n["case_id"] for n in near] == [shown]
    token = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.token).where(reports.c.case_id == hidden))
                              .scalar_one())
    assert city.db.read_sync(queries.tracking_view, token, now)["case_id"] == hidden
    with make_client(city) as client:
        assert client.get(f"/api/v1/public/cases/{hidden}").status_code == 404
        assert client.get(f"/cases/{hidden}").status_code == 404
        assert client.get(f"/api/v1/public/cases?lat={lat}&long={lon}&radius_m=2000").json()[0]["case_id"] == shown
    # Staff merging duplicates see it among the open cases nearby.
    for_staff = city.db.read_sync(lambda c: queries.nearby_open_cases(
        c, lat=lat, lon=lon, category_code=None, now=now, radius_m=2000, published_only=False))
    assert {n["case_id"] for n in for_staff} == {hidden, shown}
