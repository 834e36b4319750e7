"""The platform's clock: one place to ask for 'now', so tests can move time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

# The zone of a city whose jurisdiction names none (wecity.geo.service.city_timezone reads the city's own,
# and the portal shows times in that). Protocol output (`isoformat`) still carries this zone's offset:
# the core cannot read the jurisdiction, and a time with its offset is the same instant in any zone.
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
