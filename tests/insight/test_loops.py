"""The other loops beside the cases' on the KPI page: service applications, data sharing, enterprise
policies and sensors, counted on the demo city's month and checked against the rows themselves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.core.db import Database
from wecity.core.migrate import upgrade
from wecity.geo.service import city_timezone
from wecity.govservice.models import application_ratings, applications
from wecity.insight.loops import loop_figures
from wecity.insight.queries import Filters

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Database:
    from wecity.demo.seed import seed_demo

    path: Path = tmp_path_factory.mktemp("loops") / "demo.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.write_sync(lambda c: seed_demo(c, NOW, None))
    return db


def _figures(db: Database, f: Filters) -> dict[str, dict[str, float | None]]:
    loops = db.read_sync(lambda c: loop_figures(c, f, NOW))
    return {loop["code"]: {k["code"]: k["value"] for k in loop["figures"]} for loop in loops}


def test_each_loop_is_counted_from_its_own_rows(demo: Database) -> None:
    zone = demo.read_sync(city_timezone)
    today = NOW.astimezone(zone).date()
    month = Filters(today - timedelta(days=29), today)
    found = _figures(demo, month)
    start = datetime.combine(month.start, datetime.min.time(), zone)
    end = datetime.combine(month.end + timedelta(days=1), datetime.min.time(), zone)
    rows = demo.read_sync(lambda c: c.execute(sa.select(applications)).all())
    submitted = [r for r in rows if r.submitted_at and start <= r.submitted_at < end]
    finished = [r for r in rows if r.finished_at and start <= r.finished_at < end]
    timed = [r for r in finished if r.due_on]
    on_time = [r for r in timed if r.finished_at.astimezone(zone).date() <= r.due_on]
    services = found["services"]
    assert services["applications_submitted"] == len(submitted) > 0
    assert services["applications_finished"] == len(finished) > 0
    assert services["applications_on_time"] == round(100 * len(on_time) / len(timed), 1)
    ratings = demo.read_sync(lambda c: c.execute(sa.select(application_ratings.c.level, application_ratings.c.rated_at))
                             .all())
    in_month = [r for r in ratings if start <= r.rated_at < end]
    good = [r for r in in_month if r.level >= 4]
    assert services["ratings_good"] == (round(100 * len(good) / len(in_month), 1) if in_month else None)
    assert found["sharing"]["requests_submitted"] is not None and found["sharing"]["requests_submitted"] >= 1
    assert found["enterprise"]["policy_eligible"] and found["enterprise"]["policy_eligible"] > 0
    sensors = found["sensors"]
    assert sensors["devices"] and sensors["devices"] > 0
    assert sensors["devices_online"] is not None and sensors["devices_silent"] is not None
    assert sensors["devices_online"] + sensors["devices_silent"] == sensors["devices"]
    # A department's view counts its own applications only.
    one = _figures(demo, Filters(month.start, month.end, department=submitted[0].department_code))
    assert one["services"]["applications_submitted"] == sum(
        r.department_code == submitted[0].department_code for r in submitted)
