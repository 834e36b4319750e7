"""The application clock in working days (工作日), as China's administrative licensing law counts it.

A limit of N working days runs from acceptance (受理): the day of acceptance is not counted, and the due
date is the N-th working day after it, by the city's calendar (holidays and 调休 make-up days,
wecity.core.worktime). Time with the applicant (补正) and the special procedures the law does not count
(听证, 检验检测, 专家评审, 公示) move the due date on by the working days they took: a spell from one
day to a later one takes the working days after its first day, up to and including its last. An
extension adds the working days granted. So the due date is always
`add_working_days(accepted, limit + paused + extended)`: pausing never brings it nearer, and it always
falls on a working day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from wecity.core.errors import ValidationFailed

# Share of the allowed working days after which the department is warned (预警).
WARN_SHARE = 0.8
_MAX_DAYS = 3660


class WorkingDays(Protocol):
    """What the clock needs of a calendar (wecity.core.worktime.WorkCalendar has it)."""

    def is_working_day(self, day: date) -> bool: ...


def local_day(moment: datetime, calendar: object) -> date:
    """The calendar day of `moment` in the calendar's zone (the city's), not in UTC."""
    tz = getattr(calendar, "tz", None)
    return (moment.astimezone(tz) if tz is not None else moment).date()


def next_working_day(calendar: WorkingDays, day: date) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    for _ in range(_MAX_DAYS):
        if calendar.is_working_day(day):
            return day
        day += timedelta(days=1)
    raise ValidationFailed("the calendar has no working day ahead", message_zh="日历中没有后续工作日",
                           code="govservice.no_working_day")


def add_working_days(calendar: WorkingDays, start: date, days: int) -> date:
    """The `days`-th working day after `start` (which is not counted); 0 days: `start`, or the next
    working day when `start` is not one (当场办结 on a Sunday is done on Monday)."""
    if days < 0:
        raise ValueError("a number of working days is never negative")
    day = start
    if days == 0:
        return next_working_day(calendar, day)
    counted = 0
    for _ in range(days + _MAX_DAYS):
        day += timedelta(days=1)
        if calendar.is_working_day(day):
            counted += 1
            if counted == days:
                return day
    raise ValidationFailed("the calendar has no working day ahead", message_zh="日历中没有后续工作日",
                           code="govservice.no_working_day")


def working_days_between(calendar: WorkingDays, first: date, last: date) -> int:
    """Working days after `first` up to and including `last` (0 when `last` is not after `first`)."""
    count = 0
    day = first + timedelta(days=1)
    while day <= last:
        count += calendar.is_working_day(day)
        day += timedelta(days=1)
    return count


def due_on(calendar: WorkingDays, accepted: date, *, limit: int, paused: int = 0, extended: int = 0) -> date:
    if paused < 0 or extended < 0:
        raise ValueError("paused and extended days are never negative")
    return add_working_days(calendar, accepted, limit + paused + extended)


@dataclass(frozen=True)
class ClockReading:
    """Where an application's clock stands on a day: working days used of those allowed, and its state."""

    used: int
    allowed: int
    due: date
    paused: bool

    @property
    def remaining(self) -> int:
        return self.allowed - self.used

    @property
    def overdue(self) -> bool:
        return not self.paused and self.used > self.allowed

    @property
    def warning(self) -> bool:
        """Past 80% of the allowed days (and not yet overdue): the department is warned."""
        return not self.paused and not self.overdue and self.allowed > 0 and self.used >= WARN_SHARE * self.allowed


def read_clock(calendar: WorkingDays, *, accepted: date, today: date, limit: int, paused_days: int,
               extended_days: int, paused_since: date | None = None) -> ClockReading:
    """The clock on `today`: working days since acceptance less the days paused (including a spell still
    running), against the limit plus extensions."""
    running_pause = working_days_between(calendar, paused_since, today) if paused_since else 0
    used = working_days_between(calendar, accepted, today) - paused_days - running_pause
    return ClockReading(used=max(used, 0), allowed=limit + extended_days,
                        due=due_on(calendar, accepted, limit=limit, paused=paused_days + running_pause,
                                   extended=extended_days),
                        paused=paused_since is not None)
