"""The portal shows times on the city's clocks: in its jurisdiction's time zone, not a fixed one."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Connection

from tests.conftest import City, make_client
from tests.web.conftest import log_in
from wecity.geo.service import get_jurisdiction, set_jurisdiction


def _move_city_to(city: City, zone: str) -> None:
    def move(conn: Connection) -> None:
        row = get_jurisdiction(conn)
        set_jurisdiction(conn, id=row.id, name_zh=row.name_zh, name_en=row.name_en, adcode=row.adcode, timezone=zone)

    city.db.write_sync(move)


@pytest.mark.parametrize(("zone", "shown"), [("Asia/Urumqi", "2026-11-02 15:00"),
                                             ("Europe/Amsterdam", "2026-11-02 10:00")])
def test_portal_times_are_in_the_city_s_own_zone(sqlite_city: City, zone: str, shown: str) -> None:
    _move_city_to(sqlite_city, zone)  # the seed clock stands at 09:00 UTC, 17:00 in Changsha
    with make_client(sqlite_city) as web:
        log_in(web, "supervisor")
        operations = web.get("/ops").text
        sensors = web.get("/ops/sensors").text
    assert shown in operations and "2026-11-02 17:00" not in operations
    assert shown in sensors and f'data-time-zone="{zone}"' in sensors  # the map's tooltips too
