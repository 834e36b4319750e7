"""Case engine fixtures: a case opened through the real intake, and the demo city's staff as actors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from wecity.cases.engine import Actor
from wecity.cases.intake import NewReport, submit_report
from wecity.geo.service import load_area_index
from wecity.identity.models import users
from wecity.identity.service import get_user

from ..conftest import City

WUYI_SQUARE = (28.1960, 112.9770)


@dataclass
class Staff:
    handler: Actor          # 城管 handler: manhole cases are theirs
    other_handler: Actor    # 住建 handler
    dispatcher: Actor
    supervisor: Actor
    admin: Actor


@pytest.fixture
def staff(city: City) -> Staff:
    def actor(name: str) -> Actor:
        # Looked up directly: password checks (argon2) are tested in tests/identity, and are slow on purpose.
        user = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
            users.c.username == name)).scalar_one()))
        assert user is not None
        return Actor.staff(user, source_address="10.0.0.7")

    return Staff(actor("chengguan"), actor("zhujian"), actor("dispatcher"), actor("supervisor"), actor("admin"))


def open_case(city: City, *, code: str = "manhole", lat: float = WUYI_SQUARE[0], long: float = WUYI_SQUARE[1],
              **fields: object) -> int:
    index = city.db.read_sync(load_area_index)
    attributes = {"cover_state": "missing"} if code == "manhole" else {}
    report = NewReport(service_code=code, lat=lat, long=long, description="井盖没了，很危险", attributes=attributes,
                       **fields)  # type: ignore[arg-type]
    return city.db.write_sync(lambda c: submit_report(c, report, area_index=index, now=city.clock.now())).case_id


def case_row(city: City, case_id: int) -> sa.Row:
    from wecity.cases.models import cases

    return city.db.read_sync(lambda c: c.execute(sa.select(cases).where(cases.c.id == case_id)).one())
