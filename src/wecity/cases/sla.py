"""SLA clocks: when a case must be acknowledged and resolved, from its category's targets.

The acknowledge clock always runs (minutes, around the clock: a missing manhole cover at 3 a.m. must
still be made safe); the resolve clock counts working time for categories on the "working" calendar,
which honours public holidays and make-up working days (调休). A warning falls due at 80% of a clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from wecity.cases.categories import Category
from wecity.core.worktime import add_working_minutes
from wecity.geo.service import city_calendar

WARN_AT = 0.8


@dataclass(frozen=True, slots=True)
class Clocks:
    ack_warn_at: datetime
    ack_due_at: datetime
    resolve_warn_at: datetime
    resolve_due_at: datetime

    def values(self) -> dict[str, datetime]:
        return {"ack_warn_at": self.ack_warn_at, "ack_due_at": self.ack_due_at,
                "resolve_warn_at": self.resolve_warn_at, "resolve_due_at": self.resolve_due_at}


def clocks(conn: Connection, category: Category, start: datetime) -> Clocks:
    """The clocks of a case dispatched at `start`."""
    ack = timedelta(minutes=category.ack_minutes)
    minutes = category.resolve_hours * 60
    if category.calendar == "working":
        calendar = city_calendar(conn)  # working hours are the city's local hours
        resolve_warn = add_working_minutes(start, minutes * WARN_AT, calendar)
        resolve_due = add_working_minutes(start, minutes, calendar)
    else:
        resolve_warn = start + timedelta(minutes=minutes * WARN_AT)
        resolve_due = start + timedelta(minutes=minutes)
    return Clocks(ack_warn_at=start + ack * WARN_AT, ack_due_at=start + ack, resolve_warn_at=resolve_warn,
                  resolve_due_at=resolve_due)
