"""The application clock in working days: due dates across holidays and 调休, pauses and extensions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wecity.core.worktime import WorkCalendar, calendar_rows, packaged_calendar
from wecity.govservice.clock import (
    add_working_days,
    due_on,
    read_clock,
    working_days_between,
)

ROWS = calendar_rows(packaged_calendar())
CAL = WorkCalendar(holidays=frozenset(r["day"] for r in ROWS if r["kind"] == "holiday"),
                   workdays=frozenset(r["day"] for r in ROWS if r["kind"] == "workday"))
# The packaged calendar's span: 2025 and 2026 (the State Council's notices).
DAYS = st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 11, 30))


def test_the_day_of_acceptance_is_not_counted_and_weekends_are_skipped() -> None:
    friday = date(2026, 3, 13)
    assert add_working_days(CAL, friday, 1) == date(2026, 3, 16)  # Monday
    assert add_working_days(CAL, friday, 5) == date(2026, 3, 20)


def test_national_day_and_its_make_up_working_days() -> None:
    # 2025: 1-8 October off; Sunday 28 September and Saturday 11 October are working days (调休).
    assert add_working_days(CAL, date(2025, 9, 26), 1) == date(2025, 9, 28)
    assert add_working_days(CAL, date(2025, 9, 30), 1) == date(2025, 10, 9)
    assert add_working_days(CAL, date(2025, 10, 9), 2) == date(2025, 10, 11)


def test_zero_days_on_a_holiday_means_the_next_working_day() -> None:
    assert add_working_days(CAL, date(2025, 10, 1), 0) == date(2025, 10, 9)
    assert add_working_days(CAL, date(2025, 10, 9), 0) == date(2025, 10, 9)


def test_negative_days_are_refused() -> None:
    with pytest.raises(ValueError):
        add_working_days(CAL, date(2025, 1, 2), -1)
    with pytest.raises(ValueError):
        due_on(CAL, date(2025, 1, 2), limit=5, paused=-1)


def test_a_pause_moves_the_due_date_by_the_working_days_it_took() -> None:
    accepted = date(2026, 3, 2)  # Monday
    before = due_on(CAL, accepted, limit=10)
    # Paused on Wednesday 4 March, resumed Tuesday 10 March: Thu, Fri, Mon, Tue = 4 working days.
    paused = working_days_between(CAL, date(2026, 3, 4), date(2026, 3, 10))
    assert paused == 4
    assert due_on(CAL, accepted, limit=10, paused=paused) == add_working_days(CAL, before, 4)


def test_reading_the_clock_counts_a_running_pause_and_warns_at_80_percent() -> None:
    accepted = date(2026, 3, 2)
    reading = read_clock(CAL, accepted=accepted, today=date(2026, 3, 12), limit=10, paused_days=0,
                         extended_days=0)
    assert (reading.used, reading.allowed, reading.warning, reading.overdue) == (8, 10, True, False)
    paused = read_clock(CAL, accepted=accepted, today=date(2026, 3, 12), limit=10, paused_days=0,
                        extended_days=0, paused_since=date(2026, 3, 10))
    assert paused.used == 6 and paused.paused and not paused.warning
    assert paused.due == add_working_days(CAL, reading.due, 2)
    late = read_clock(CAL, accepted=accepted, today=date(2026, 3, 17), limit=10, paused_days=0, extended_days=0)
    assert late.overdue and late.remaining == -1
    extended = read_clock(CAL, accepted=accepted, today=date(2026, 3, 17), limit=10, paused_days=0,
                          extended_days=10)
    assert not extended.overdue and extended.due == add_working_days(CAL, accepted, 20)


@settings(max_examples=300, deadline=None)
@given(accepted=DAYS, limit=st.integers(0, 60), pauses=st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 30)), max_size=4), extended=st.integers(0, 30))
def test_pausing_never_shortens_a_deadline_and_it_never_lands_on_a_non_working_day(
        accepted: date, limit: int, pauses: list[tuple[int, int]], extended: int) -> None:
    base = due_on(CAL, accepted, limit=limit)
    paused = 0
    for offset, length in pauses:
        first = accepted + timedelta(days=offset)
        paused += working_days_between(CAL, first, first + timedelta(days=length))
    due = due_on(CAL, accepted, limit=limit, paused=paused, extended=extended)
    assert due >= base
    assert CAL.is_working_day(due)
    assert working_days_between(CAL, accepted, due) == limit + paused + extended or limit + paused + extended == 0


@settings(max_examples=200, deadline=None)
@given(first=DAYS, length=st.integers(0, 40), split=st.integers(0, 40))
def test_working_days_add_up_across_a_split(first: date, length: int, split: int) -> None:
    middle = first + timedelta(days=min(split, length))
    last = first + timedelta(days=length)
    assert (working_days_between(CAL, first, middle) + working_days_between(CAL, middle, last)
            == working_days_between(CAL, first, last))
