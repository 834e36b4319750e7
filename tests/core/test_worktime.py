"""Working time: SLA arithmetic across weekends, public holidays and make-up working days (调休)."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from wecity.core import worktime
from wecity.core.errors import ValidationFailed
from wecity.core.models import calendar_days
from wecity.core.worktime import (
    ALWAYS_OPEN,
    WorkCalendar,
    add_minutes_24x7,
    add_working_minutes,
    calendar_for,
    calendar_rows,
    minutes_between_24x7,
    packaged_calendar,
    working_minutes_between,
)
from wecity.geo.service import city_calendar

from ..conftest import City

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    rows = calendar_rows(packaged_calendar())
    return WorkCalendar(holidays=frozenset(r["day"] for r in rows if r["kind"] == "holiday"),
                        workdays=frozenset(r["day"] for r in rows if r["kind"] == "workday"))


def test_within_a_day_the_lunch_break_does_not_count(cal: WorkCalendar) -> None:
    assert add_working_minutes(local(2026, 11, 25, 11, 30), 60, cal) == local(2026, 11, 25, 14, 0)
    assert working_minutes_between(local(2026, 11, 25, 11, 30), local(2026, 11, 25, 14, 0), cal) == 60
    # A working day holds 3 h + 4 h = 420 minutes.
    assert working_minutes_between(local(2026, 11, 25), local(2026, 11, 26), cal) == 420


def test_across_a_weekend(cal: WorkCalendar) -> None:
    # Friday 16:30 + 2 working hours: 1 h on Friday, then Monday 09:00-10:00.
    friday = local(2026, 11, 27, 16, 30)
    assert add_working_minutes(friday, 120, cal) == local(2026, 11, 30, 10, 0)
    assert working_minutes_between(friday, local(2026, 11, 30, 10, 0), cal) == 120
    # Time reported on Saturday starts counting on Monday morning.
    assert add_working_minutes(local(2026, 11, 28, 10, 0), 30, cal) == local(2026, 11, 30, 9, 30)


def test_across_a_public_holiday(cal: WorkCalendar) -> None:
    # National Day 2026: 1-7 October off. Wednesday 30 Sep 17:00 + 60 min: 30 that day, 30 on Thursday 8 Oct.
    assert add_working_minutes(local(2026, 9, 30, 17, 0), 60, cal) == local(2026, 10, 8, 9, 30)
    assert working_minutes_between(local(2026, 9, 30, 17, 0), local(2026, 10, 8, 9, 30), cal) == 60
    # Spring Festival 2026: 15-23 Feb off, so Friday 13 Feb 17:30 + 1 min lands on Saturday 14 Feb (a make-up day).
    assert add_working_minutes(local(2026, 2, 13, 17, 30), 1, cal) == local(2026, 2, 14, 9, 1)
    # Qingming 2026 is Saturday 4 to Monday 6 April: Monday is off.
    assert add_working_minutes(local(2026, 4, 3, 17, 30), 60, cal) == local(2026, 4, 7, 10, 0)


def test_on_make_up_working_days(cal: WorkCalendar) -> None:
    # Saturday 10 Oct 2026 and Sunday 20 Sep 2026 are working days (调休上班).
    assert cal.is_working_day(date(2026, 10, 10)) and cal.is_working_day(date(2026, 9, 20))
    assert add_working_minutes(local(2026, 10, 9, 17, 0), 60, cal) == local(2026, 10, 10, 9, 30)
    assert add_working_minutes(local(2026, 9, 19, 12, 0), 60, cal) == local(2026, 9, 20, 10, 0)
    assert working_minutes_between(local(2026, 10, 10), local(2026, 10, 11), cal) == 420
    # An ordinary Saturday is not.
    assert working_minutes_between(local(2026, 10, 17), local(2026, 10, 18), cal) == 0


def test_24x7_counts_every_minute() -> None:
    start = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    assert add_minutes_24x7(start, 90) == add_working_minutes(start, 90, ALWAYS_OPEN) == start + timedelta(minutes=90)
    assert minutes_between_24x7(start, start + timedelta(hours=2)) == 120
    assert calendar_for("24x7", WorkCalendar()) is ALWAYS_OPEN
    with pytest.raises(ValidationFailed):
        calendar_for("weekdays", WorkCalendar())


def test_results_keep_the_callers_zone_and_end_of_period_is_not_pushed_to_the_next_day(cal: WorkCalendar) -> None:
    start = local(2026, 11, 25, 16, 30).astimezone(UTC)
    end = add_working_minutes(start, 60, cal)
    assert end.tzinfo is UTC and end == local(2026, 11, 25, 17, 30)
    assert add_working_minutes(start, 0, cal) == start
    with pytest.raises(ValueError):
        add_working_minutes(datetime(2026, 11, 25, 9), 1, cal)


def test_add_and_between_agree_on_random_cases(cal: WorkCalendar) -> None:
    rng = random.Random(7)
    base = local(2025, 1, 1)
    for _ in range(300):
        start = base + timedelta(minutes=rng.randrange(0, 3 * 365 * 24 * 60 - 60 * 24 * 30))
        minutes = rng.choice([1, 30, 59, 60, 61, 180, 420, 421, 1000, 4200, 12345])
        end = add_working_minutes(start, minutes, cal)
        assert end >= start
        assert working_minutes_between(start, end, cal) == pytest.approx(minutes)
        assert working_minutes_between(end, start, cal) == pytest.approx(-minutes)
        t = end.astimezone(SHANGHAI)
        assert cal.is_working_day(t.date()) and any(a < t.time() <= b for a, b in cal.hours)


def test_configurable_working_hours() -> None:
    cal = WorkCalendar(hours=worktime.parse_hours("08:30-12:00, 14:00-18:00"))
    assert add_working_minutes(local(2026, 11, 25, 11, 0), 120, cal) == local(2026, 11, 25, 15, 0)
    assert cal.hours == ((time(8, 30), time(12)), (time(14), time(18)))
    for bad in ("9-5", "12:00-09:00", "09:00-12:00,11:00-13:00", ""):
        with pytest.raises(ValidationFailed):
            worktime.parse_hours(bad)


def test_packaged_data_matches_the_state_council_notices() -> None:
    rows = calendar_rows(packaged_calendar())
    by_year: dict[tuple[int, str], list[date]] = {}
    for r in rows:
        by_year.setdefault((r["day"].year, r["kind"]), []).append(r["day"])
    # 2025: 28 days off and 5 make-up days; 2026: 33 and 6 (counted from the two notices).
    assert (len(by_year[2025, "holiday"]), len(by_year[2025, "workday"])) == (28, 5)
    assert (len(by_year[2026, "holiday"]), len(by_year[2026, "workday"])) == (33, 6)
    assert by_year[2026, "workday"] == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                                        date(2026, 9, 20), date(2026, 10, 10)]
    assert [d for d in by_year[2026, "holiday"] if d.month == 10] == [date(2026, 10, d) for d in range(1, 8)]
    # Make-up days fall on weekends; 2027 so far holds only the statutory days (its notice is not yet in).
    assert all(d.weekday() >= 5 for (_, kind), days in by_year.items() if kind == "workday" for d in days)
    assert len(by_year[2027, "holiday"]) == 13 and (2027, "workday") not in by_year


def test_calendar_is_data_the_city_can_update(city: City, tmp_path: Path) -> None:
    cal = city.db.read_sync(city_calendar)
    assert date(2026, 10, 1) in cal.holidays and date(2026, 10, 10) in cal.workdays

    # The city declares an extra day off, and turns a make-up day back into an ordinary Saturday.
    city.db.write_sync(worktime.set_days, [dict(day=date(2026, 12, 1), kind="holiday", name_zh="防汛", name_en="Flood",
                                                source="city")])
    assert city.db.write_sync(worktime.remove_day, date(2026, 10, 10))
    cal = city.db.read_sync(city_calendar)
    assert date(2026, 12, 1) in cal.holidays and not cal.is_working_day(date(2026, 10, 10))

    # Loading the next year's notice replaces what was there for those days.
    notice = {"years": [{"year": 2027, "source": "test notice", "periods": [
        {"name_zh": "国庆节", "name_en": "National Day", "from": "2027-10-01", "to": "2027-10-07",
         "workdays": ["2027-09-26", "2027-10-09"]}]}]}
    path = tmp_path / "2027.json"
    path.write_text(json.dumps(notice, ensure_ascii=False), encoding="utf-8")
    assert city.db.write_sync(worktime.load_calendar_file, path) == 9
    cal = city.db.read_sync(city_calendar)
    assert date(2027, 10, 7) in cal.holidays and date(2027, 10, 9) in cal.workdays

    # A malformed file is refused and changes nothing.
    before = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(calendar_days)).scalar_one())
    path.write_text(json.dumps({"years": [{"periods": [{"from": "2028-01-02", "to": "2028-01-01",
                                                        "name_zh": "x", "name_en": "x"}]}]}))
    with pytest.raises(ValidationFailed):
        city.db.write_sync(worktime.load_calendar_file, path)
    after = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(calendar_days)).scalar_one())
    assert before == after


def test_configured_hours_apply_to_loaded_calendars(city: City) -> None:
    try:
        worktime.configure(city.db.engine, hours="08:00-16:00")
        assert city.db.read_sync(city_calendar).hours == ((time(8), time(16)),)
    finally:
        worktime.configure(city.db.engine, hours=worktime.DEFAULT_HOURS)


def test_working_hours_setting_is_checked_at_start() -> None:
    from wecity.core.errors import ConfigurationError
    from wecity.core.settings import load_settings

    assert load_settings({"WECITY_SECRET_KEY": "k" * 40}).work_hours == worktime.DEFAULT_HOURS
    assert load_settings({"WECITY_SECRET_KEY": "k" * 40, "WECITY_WORK_HOURS": "08:00-17:00"}).work_hours == "08:00-17:00"
    with pytest.raises(ConfigurationError, match="WECITY_WORK_HOURS"):
        load_settings({"WECITY_SECRET_KEY": "k" * 40, "WECITY_WORK_HOURS": "17:00-08:00"})
