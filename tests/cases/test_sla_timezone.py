"""The resolve clock counts the city's working hours in the city's own time zone (its jurisdiction's)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from wecity.cases import sla
from wecity.cases.categories import get_category
from wecity.geo.service import get_jurisdiction, set_jurisdiction

from ..conftest import City

# Monday 7 December 2026, 07:30 UTC: 08:30 in Amsterdam (before its working day), 15:30 in Changsha.
START = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)


def _due_in(city: City, zone: str) -> datetime:
    def run(conn):  # noqa: ANN001, ANN202
        row = get_jurisdiction(conn)
        set_jurisdiction(conn, id=row.id, name_zh=row.name_zh, name_en=row.name_en, adcode=row.adcode, timezone=zone)
        one_hour = replace(get_category(conn, "pothole"), resolve_hours=1, calendar="working")
        return sla.clocks(conn, one_hour, START).resolve_due_at

    return city.db.write_sync(run)


def test_working_hours_are_read_in_the_city_time_zone(city: City) -> None:
    # Changsha: 15:30 + one working hour = 16:30 local (08:30 UTC).
    assert _due_in(city, "Asia/Shanghai") == datetime(2026, 12, 7, 8, 30, tzinfo=UTC)
    # Amsterdam: the day starts at 09:00 local, one working hour later is 10:00 local (09:00 UTC).
    assert _due_in(city, "Europe/Amsterdam") == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
