"""SLA clocks: when a case must be acknowledged and resolved, from its category's targets.

The acknowledge clock always runs (minutes, around the clock: a missing manhole cover at 3 a.m. must
still be made safe); the resolve clock counts working time for categories on the "working" calendar.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from wecity.cases.categories import Category


def deadlines(conn: Connection, category: Category, start: datetime) -> tuple[datetime, datetime]:
    """(acknowledge by, resolve by) for a case dispatched at `start`."""
    ack_due = start + timedelta(minutes=category.ack_minutes)
    return ack_due, resolve_deadline(conn, category, start)


def resolve_deadline(conn: Connection, category: Category, start: datetime) -> datetime:
    if category.calendar == "working":
        from wecity.core.worktime import add_working_minutes, load_calendar

        return add_working_minutes(start, category.resolve_hours * 60, load_calendar(conn))
    return start + timedelta(hours=category.resolve_hours)
