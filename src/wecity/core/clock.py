"""The platform's clock: one place to ask for 'now', so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# The city's own zone: times shown to people and in protocol output carry its offset (+08:00).
CITY_TZ = ZoneInfo("Asia/Shanghai")


class Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.at += timedelta(**delta)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 in the city's zone with its offset, seconds precision (as Open311 examples show)."""
    if value is None:
        return None
    return value.astimezone(CITY_TZ).isoformat(timespec="seconds")
