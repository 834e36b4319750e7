"""Working time: China's holiday calendar (with 调休 make-up days) and SLA arithmetic in working minutes."""

from __future__ import annotations

import json
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wecity.core.clock import CITY_TZ
from wecity.core.errors import ValidationFailed
from wecity.core.models import calendar_days

DEFAULT_HOURS = "09:00-12:00,13:30-17:30"
HOLIDAY, WORKDAY = "holiday", "workday"
# A search for working time gives up after this many days without any: a calendar that is all
# holidays is a data error, not a reason to loop forever.
_MAX_DAYS = 3660


class Calendar(Protocol):
    """What SLA clocks need from a calendar."""

    def add_minutes(self, start: datetime, minutes: float) -> datetime: ...

    def minutes_between(self, a: datetime, b: datetime) -> float: ...


class AlwaysOpen:
    """The 24x7 calendar: every minute counts."""

    name = "24x7"

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        return start + timedelta(minutes=minutes)

    def minutes_between(self, a: datetime, b: datetime) -> float:
        return (b - a).total_seconds() / 60


ALWAYS_OPEN = AlwaysOpen()


def parse_hours(text: str) -> tuple[tuple[time, time], ...]:
    """'09:00-12:00,13:30-17:30' -> ((09:00, 12:00), (13:30, 17:30)); periods in order, not overlapping."""
    periods: list[tuple[time, time]] = []
    try:
        for part in text.split(","):
            first, last = part.strip().split("-")
            periods.append((time.fromisoformat(first.strip()), time.fromisoformat(last.strip())))
    except ValueError:
        raise ValidationFailed(f"working hours {text!r}: expected HH:MM-HH:MM[,HH:MM-HH:MM...]",
                               message_zh=f"工作时间 {text!r} 格式应为 HH:MM-HH:MM[,HH:MM-HH:MM...]",
                               code="worktime.invalid_hours") from None
    for (a, b), nxt in zip(periods, [*periods[1:], None], strict=True):
        if not a < b or (nxt is not None and not b <= nxt[0]):
            raise ValidationFailed(f"working hours {text!r}: periods must be increasing and not overlap",
                                   message_zh=f"工作时间 {text!r}：时段须递增且不重叠",
                                   code="worktime.invalid_hours")
    return tuple(periods)


@dataclass(frozen=True)
class WorkCalendar:
    """Monday to Friday, less holidays, plus make-up working days, during the working hours, in `tz`."""

    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    hours: tuple[tuple[time, time], ...] = field(default_factory=lambda: parse_hours(DEFAULT_HOURS))
    tz: ZoneInfo = CITY_TZ
    name: str = "working"

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def _periods(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        if self.is_working_day(day):
            for a, b in self.hours:
                yield datetime.combine(day, a, self.tz), datetime.combine(day, b, self.tz)

    def add_minutes(self, start: datetime, minutes: float) -> datetime:
        if start.tzinfo is None:
            raise ValueError("naive datetime given to the work calendar")
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        remaining = timedelta(minutes=minutes)
        cursor = start.astimezone(self.tz)
        day = cursor.date()
        for _ in range(_MAX_DAYS):
            for a, b in self._periods(day):
                if b <= cursor:
                    continue
                begin = max(a, cursor)
                if remaining <= b - begin:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= b - begin
            day += timedelta(days=1)
        raise ValidationFailed("the work calendar has no working time ahead", message_zh="工作日历中没有后续工作时间",
                               code="worktime.no_working_time")

    def minutes_between(self, a: datetime, b: datetime) -> float:
        if b < a:
            return -self.minutes_between(b, a)
        a, b = a.astimezone(self.tz), b.astimezone(self.tz)
        total = timedelta()
        day = a.date()
        while day <= b.date():
            for start, end in self._periods(day):
                lo, hi = max(start, a), min(end, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total.total_seconds() / 60


def add_working_minutes(start: datetime, minutes: float, calendar: Calendar) -> datetime:
    """The moment `minutes` of the calendar's time after `start` (a 24x7 calendar counts every minute)."""
    return calendar.add_minutes(start, minutes)


def working_minutes_between(a: datetime, b: datetime, calendar: Calendar) -> float:
    """Minutes of the calendar's time from `a` to `b` (negative when b is before a)."""
    return calendar.minutes_between(a, b)


def add_minutes_24x7(start: datetime, minutes: float) -> datetime:
    return ALWAYS_OPEN.add_minutes(start, minutes)


def minutes_between_24x7(a: datetime, b: datetime) -> float:
    return ALWAYS_OPEN.minutes_between(a, b)


def calendar_for(kind: str, working: WorkCalendar) -> Calendar:
    """The clock calendar a category names: "24x7" or "working"."""
    if kind == "24x7":
        return ALWAYS_OPEN
    if kind == "working":
        return working
    raise ValidationFailed(f"unknown calendar {kind!r}; use 24x7 or working",
                           message_zh=f"未知日历 {kind!r}，应为 24x7 或 working", code="worktime.unknown_calendar")


# -- the calendar as data --------------------------------------------------------------------------

def calendar_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of `calendar_days` from a file in the format of wecity/core/data/cn-holidays.json."""
    rows: dict[date, dict[str, Any]] = {}
    try:
        for year in data["years"]:
            source = year.get("source", "") + (" (provisional)" if year.get("provisional") else "")
            for p in year["periods"]:
                first, last = date.fromisoformat(p["from"]), date.fromisoformat(p["to"])
                if last < first:
                    raise ValueError(f"{p['from']}..{p['to']} ends before it starts")
                day = first
                while day <= last:
                    rows[day] = dict(day=day, kind=HOLIDAY, name_zh=p["name_zh"], name_en=p["name_en"],
                                     source=source[:300])
                    day += timedelta(days=1)
                for w in p.get("workdays", []):
                    d = date.fromisoformat(w)
                    rows[d] = dict(day=d, kind=WORKDAY, name_zh=f"{p['name_zh']}调休上班",
                                   name_en=f"{p['name_en']} make-up working day", source=source[:300])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"calendar data is malformed: {exc!r}", message_zh=f"日历数据格式错误：{exc!r}",
                               code="worktime.invalid_data") from None
    return [rows[d] for d in sorted(rows)]


def packaged_calendar() -> dict[str, Any]:
    text = resources.files("wecity.core").joinpath("data/cn-holidays.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def load_calendar_file(conn: sa.Connection, path: Path | None = None) -> int:
    """Insert or replace the days of a calendar file (default: the packaged one); returns how many."""
    data = packaged_calendar() if path is None else json.loads(path.read_text(encoding="utf-8"))
    return set_days(conn, calendar_rows(data))


def set_days(conn: sa.Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or replace calendar days (the city's corrections win over what was there)."""
    if not rows:
        return 0
    for r in rows:
        if r["kind"] not in (HOLIDAY, WORKDAY):
            raise ValidationFailed(f"calendar day kind {r['kind']!r}: use holiday or workday",
                                   message_zh=f"日历日类型 {r['kind']!r} 无效，应为 holiday 或 workday",
                                   code="worktime.invalid_data")
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    stmt = dialect_insert(calendar_days)
    stmt = stmt.on_conflict_do_update(index_elements=["day"], set_={
        c: stmt.excluded[c] for c in ("kind", "name_zh", "name_en", "source")})
    conn.execute(stmt, [dict(r) for r in rows])
    from wecity.core import cache

    cache.invalidate(conn, "calendar days")
    return len(rows)


def remove_day(conn: sa.Connection, day: date) -> bool:
    """Make `day` an ordinary day again (its weekday decides)."""
    from wecity.core import cache

    cache.invalidate(conn, "calendar days")
    return bool(conn.execute(calendar_days.delete().where(calendar_days.c.day == day)).rowcount)


# The working hours an app set for its database (settings.work_hours), keyed by the database's engine so
# that two apps in one process, on two databases, keep their own.
_configured_hours: weakref.WeakKeyDictionary[sa.Engine, str] = weakref.WeakKeyDictionary()


def configure(engine: sa.Engine, *, hours: str) -> None:
    """Set the working hours `load_calendar` uses for this database (at start, from settings.work_hours)."""
    parse_hours(hours)
    _configured_hours[engine] = hours


def load_calendar(conn: sa.Connection, *, tz: ZoneInfo, hours: str | None = None) -> WorkCalendar:
    """The city's working calendar as kept in the database, with the configured working hours, read in `tz`
    (the city's zone: `wecity.geo.service.city_calendar` passes it; the core cannot read the jurisdiction).

    Kept per process for a few seconds (every working-time report reads it); changes made here through
    `set_days` / `remove_day` drop it at once."""
    from wecity.core import cache

    hours = hours or _configured_hours.get(conn.engine, DEFAULT_HOURS)

    def build() -> WorkCalendar:
        rows = conn.execute(sa.select(calendar_days.c.day, calendar_days.c.kind)).all()
        return WorkCalendar(holidays=frozenset(r.day for r in rows if r.kind == HOLIDAY),
                            workdays=frozenset(r.day for r in rows if r.kind == WORKDAY),
                            hours=parse_hours(hours), tz=tz)

    return cache.cached(conn, ("calendar days", hours, tz.key), build)


def list_days(conn: sa.Connection, year: int) -> list[dict[str, Any]]:
    q = sa.select(calendar_days).where(calendar_days.c.day >= date(year, 1, 1),
                                       calendar_days.c.day <= date(year, 12, 31)).order_by(calendar_days.c.day)
    return [dict(r._mapping) for r in conn.execute(q)]
