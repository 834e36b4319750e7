"""SLA clocks: working-time deadlines across a weekend, a holiday and a make-up day; warnings; escalation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from wecity.cases.categories import add_category
from wecity.cases.clocks import check_clocks
from wecity.cases.timeline import case_events
from wecity.core.models import outbox_messages

from ..conftest import City
from .conftest import Staff, case_row, open_case

CST = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST).astimezone(UTC)


@pytest.fixture
def one_working_day(city: City) -> str:
    """A category resolved within 7 working hours (one working day: 09:00-12:00, 13:30-17:30)."""
    city.db.write_sync(lambda c: add_category(
        c, code="test-working-day", name_zh="测试", name_en="Test", group_zh="其他", group_en="Other",
        department_code="chengguan", ack_minutes=30, resolve_hours=7, calendar="working"))
    return "test-working-day"


@pytest.mark.parametrize(("dispatched", "due", "why"), [
    (local(2026, 11, 4, 10, 0), local(2026, 11, 5, 10, 0), "a plain weekday"),
    (local(2026, 11, 6, 16, 0), local(2026, 11, 9, 16, 0), "Friday -> Monday over the weekend"),
    (local(2026, 9, 30, 16, 0), local(2026, 10, 8, 16, 0), "over the National Day holiday"),
    (local(2026, 10, 9, 16, 0), local(2026, 10, 10, 16, 0), "Saturday 10 October 2026 is a make-up working day"),
    (local(2026, 11, 7, 11, 0), local(2026, 11, 9, 17, 30), "reported on a Saturday: the clock starts Monday"),
])
def test_resolve_deadline_counts_working_time(city: City, one_working_day: str, dispatched: datetime,
                                              due: datetime, why: str) -> None:
    city.clock.at = dispatched
    case_id = open_case(city, code=one_working_day)
    row = case_row(city, case_id)
    assert row.resolve_due_at == due, why
    assert row.ack_due_at == dispatched + timedelta(minutes=30), "the acknowledge clock runs around the clock"


def test_twenty_four_seven_category_ignores_the_calendar(city: City) -> None:
    city.clock.at = local(2026, 10, 1, 3, 0)  # 3 a.m. on National Day
    row = case_row(city, open_case(city))     # 井盖: acknowledge 15 min, resolve 4 h, 24x7
    assert row.ack_due_at == local(2026, 10, 1, 3, 15)
    assert row.resolve_due_at == local(2026, 10, 1, 7, 0)


def test_warning_at_80_percent_then_escalation(city: City) -> None:
    start = city.clock.now()
    case_id = open_case(city)  # ack in 15 min
    assert city.db.write_sync(check_clocks, start + timedelta(minutes=11)) == []
    assert city.db.write_sync(check_clocks, start + timedelta(minutes=12)) == [(case_id, "ack_warning")]
    assert city.db.write_sync(check_clocks, start + timedelta(minutes=13)) == []  # fires once
    assert city.db.write_sync(check_clocks, start + timedelta(minutes=15)) == [(case_id, "ack_escalated")]
    # The resolve clock (4 h): warning at 3h12m, escalation at 4h.
    fired = city.db.write_sync(check_clocks, start + timedelta(hours=4))
    assert fired == [(case_id, "resolve_warning"), (case_id, "resolve_escalated")]
    events = [e for e in city.db.read_sync(case_events, case_id) if e["actor"] == "system" and e["actor_name"] == "SLA"]
    assert [e["event"] for e in events] == ["ack_warning", "ack_escalated", "resolve_warning", "resolve_escalated"]
    assert all(e["public"] is False for e in events)
    outbox = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages)).all())
    targets = {(m.target, m.payload.get("event")) for m in outbox if m.channel == "in_app"}
    assert ("department:2", "ack_warning") in targets
    assert ("department:2:supervisor", "ack_escalated") in targets   # the department's supervisor
    assert ("department:1:supervisor", "ack_escalated") in targets   # and the dispatch centre
    assert ("department:1:supervisor", "resolve_escalated") in targets


def test_acknowledging_stops_the_acknowledge_clock(city: City, staff: Staff) -> None:
    from wecity.cases import engine

    start = city.clock.now()
    case_id = open_case(city)
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, start + timedelta(minutes=5)))
    assert city.db.write_sync(check_clocks, start + timedelta(minutes=20)) == []


def test_redispatch_resets_the_clocks(city: City, staff: Staff) -> None:
    from wecity.cases import engine

    start = city.clock.now()
    case_id = open_case(city)
    city.db.write_sync(check_clocks, start + timedelta(minutes=16))
    assert case_row(city, case_id).ack_escalated
    later = start + timedelta(minutes=20)
    city.db.write_sync(lambda c: engine.transfer(c, case_id, 3, staff.dispatcher, later, note="属住建"))
    row = case_row(city, case_id)
    assert not row.ack_escalated and row.ack_due_at == later + timedelta(minutes=15)


def test_each_escalation_reaches_the_supervisors_of_the_department_holding_the_case(city: City, staff: Staff) -> None:
    from wecity.cases import engine

    def told(department: int) -> int:
        return len(city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.id).where(
            outbox_messages.c.target == f"department:{department}:supervisor",
            outbox_messages.c.payload["event"].as_string() == "ack_escalated")).all()))

    start = city.clock.now()
    case_id = open_case(city)  # 城管 (department 2), acknowledge within 15 min
    assert (case_id, "ack_escalated") in city.db.write_sync(check_clocks, start + timedelta(minutes=16))
    assert told(2) == 1
    # Transferred to 住建 (3) and overdue there too: its supervisors hear of it.
    moved = start + timedelta(minutes=20)
    city.db.write_sync(lambda c: engine.transfer(c, case_id, 3, staff.dispatcher, moved, note="属住建"))
    assert (case_id, "ack_escalated") in city.db.write_sync(check_clocks, moved + timedelta(minutes=16))
    assert told(3) == 1
    # Back to 城管 for a new round, overdue again: its supervisors hear of this round as well.
    back = moved + timedelta(minutes=40)
    city.db.write_sync(lambda c: engine.transfer(c, case_id, 2, staff.dispatcher, back, note="仍属城管"))
    assert (case_id, "ack_escalated") in city.db.write_sync(check_clocks, back + timedelta(minutes=16))
    assert told(2) == 2
