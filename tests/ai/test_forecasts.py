"""Forecasts: the model with the lower backtest error serves, its intervals hold its forecast, and a weekly
pattern in the cases shows in the next two weeks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from wecity.ai.forecasts import forecast
from wecity.cases.models import cases, categories
from wecity.core.clock import CITY_TZ
from wecity.geo.models import areas

from ..conftest import City


def _weekly_cases(city: City, weeks: int = 8, district: str | None = None) -> None:
    now = city.clock.now()
    today = now.astimezone(CITY_TZ).date()
    rng = random.Random(3)

    def add(conn: sa.Connection) -> None:
        dept = conn.execute(sa.select(categories.c.department_id).where(categories.c.code == "garbage")).scalar_one()
        area = conn.execute(sa.select(areas.c.id).where(areas.c.name_zh == district)).scalar_one() if district else None
        rows = []
        for back in range(1, weeks * 7 + 1):
            day = today - timedelta(days=back)
            n = (12 if day.weekday() < 5 else 3) + rng.randint(-2, 2)
            at = datetime.combine(day, datetime.min.time(), tzinfo=CITY_TZ) + timedelta(hours=10)
            rows += [{"category_code": "garbage", "status": "closed", "department_id": dept, "description": "垃圾",
                      "source": "citizen", "created_at": at, "updated_at": at, "area_id": area} for _ in range(n)]
        conn.execute(cases.insert(), rows)

    city.db.write_sync(add)


def test_the_better_model_serves_with_its_intervals(city: City) -> None:
    _weekly_cases(city)
    found = city.db.read_sync(lambda c: forecast(c, now=city.clock.now(), category="garbage"))
    errors = found["backtest_mae"]
    assert set(errors) == {"seasonal_naive", "ets"} and found["backtest_days"] == 14
    assert found["method"] == min((k for k in errors if errors[k] is not None), key=lambda k: errors[k])
    assert len(found["forecast"]) == len(found["days"]) == 14 and found["history_days"] == 56
    assert all(lo <= f <= hi for lo, f, hi in zip(found["lower"], found["forecast"], found["upper"], strict=True))
    by_day = {datetime.fromisoformat(d).weekday(): f for d, f in zip(found["days"], found["forecast"], strict=True)}
    assert min(by_day[d] for d in range(5)) > max(by_day[5], by_day[6])  # the weekly pattern carries on


def test_a_quiet_category_s_history_starts_with_the_city_s_not_its_own_first_case(city: City) -> None:
    """A category with one case yesterday in a city of eight weeks' cases: its days before are zeros, not
    unknown, so the forecast is near zero, not one a day for 14 days with an interval of [1, 1]."""
    _weekly_cases(city)
    yesterday = city.clock.now() - timedelta(days=1)

    def one(conn: sa.Connection) -> None:
        dept = conn.execute(sa.select(categories.c.department_id).where(categories.c.code == "noise")).scalar_one()
        conn.execute(cases.insert().values(category_code="noise", status="closed", department_id=dept,
                                           description="噪音", source="citizen", created_at=yesterday,
                                           updated_at=yesterday))

    city.db.write_sync(one)
    found = city.db.read_sync(lambda c: forecast(c, now=city.clock.now(), category="noise"))
    assert found["history_days"] == 56 and sum(found["recent"]["counts"]) == 1
    assert sum(found["forecast"]) <= 2 and found["forecast"].count(0.0) >= 12  # the odd case, not one a day


def test_a_city_without_history_forecasts_nothing(city: City) -> None:
    found = city.db.read_sync(lambda c: forecast(c, now=city.clock.now(), category="noise"))
    assert found["history_days"] == 0 and found["backtest_mae"] == {} and set(found["forecast"]) == {0.0}


def test_the_operations_page_and_the_api_show_the_forecast_with_its_method_and_errors(city: City) -> None:
    from wecity.identity.models import users
    from wecity.identity.service import start_session

    from ..conftest import make_client
    from ..web.conftest import log_in

    _weekly_cases(city)
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "chengguan")).scalar_one(), city.clock.now()))
    supervisor = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == "supervisor")).scalar_one(), city.clock.now()))
    with make_client(city) as client:
        assert client.get("/api/v1/ai/forecast").status_code == 401
        assert client.get("/api/v1/ai/forecast", headers={"Authorization": f"Bearer {token}"}).status_code == 403
        answer = client.get("/api/v1/ai/forecast", params={"category": "garbage"},
                            headers={"Authorization": f"Bearer {supervisor}"}).json()
        assert len(answer["forecast"]) == 14 and answer["method"] in ("seasonal_naive", "ets")
        log_in(client, "supervisor")
        zh = client.get("/ops", params={"hot_category": "garbage"}, headers={"Accept-Language": "zh-CN"}).text
        assert "未来 14 天" in zh and "平均绝对误差" in zh and 'id="forecast-table"' in zh


def test_a_district_s_forecast_counts_its_own_cases_and_the_page_keeps_the_choice(city: City) -> None:
    from ..conftest import make_client
    from ..web.conftest import log_in

    _weekly_cases(city, district="芙蓉区")
    codes = dict(city.db.read_sync(lambda c: c.execute(sa.select(areas.c.name_zh, areas.c.code)).all()))
    furong = city.db.read_sync(lambda c: forecast(c, now=city.clock.now(), district=codes["芙蓉区"]))
    yuelu = city.db.read_sync(lambda c: forecast(c, now=city.clock.now(), district=codes["岳麓区"]))
    assert furong["history_days"] == 56 and sum(furong["forecast"]) > 14 * 3
    # no case there ever: the city's 56 days are zeros there, and so is the forecast
    assert yuelu["history_days"] == 56 and set(yuelu["forecast"]) == {0.0}
    with make_client(city) as client:
        log_in(client, "supervisor")
        page = client.get("/ops", params={"forecast_district": codes["芙蓉区"], "hot_category": "garbage"},
                          headers={"Accept-Language": "zh-CN"}).text
        assert "未来 14 天 · " in page and "芙蓉区</h2>" in page
        assert f'<option value="{codes["芙蓉区"]}" selected>' in page
        assert 'name="forecast_district" value="' + codes["芙蓉区"] + '"' in page  # kept by the hot-spot form
        # An unknown district is the whole city, not an error.
        assert client.get("/ops", params={"forecast_district": "nowhere"}).status_code == 200


def test_days_are_the_city_s_own(city: City) -> None:
    """A case at 02:00 UTC is yesterday's in New York and today's in Changsha: the forecast's history counts it
    by the city's own zone (its jurisdiction's), not a fixed one."""
    from wecity.ai.forecasts import daily_counts
    from wecity.geo.service import get_jurisdiction, set_jurisdiction

    now = city.clock.now()
    at = datetime.combine((now - timedelta(days=3)).date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)

    def add(conn: sa.Connection) -> None:
        dept = conn.execute(sa.select(categories.c.department_id).where(categories.c.code == "garbage")).scalar_one()
        conn.execute(cases.insert(), [{"category_code": "garbage", "status": "closed", "department_id": dept,
                                       "description": "垃圾", "source": "citizen", "created_at": at,
                                       "updated_at": at}])

    city.db.write_sync(add)

    def day_counted(zone: str) -> str:
        def move(conn: sa.Connection) -> None:
            row = get_jurisdiction(conn)
            set_jurisdiction(conn, id=row.id, name_zh=row.name_zh, name_en=row.name_en, adcode=row.adcode,
                             timezone=zone)

        city.db.write_sync(move)
        days, counts = city.db.read_sync(lambda c: daily_counts(c, now=now, category="garbage"))
        return days[int(counts.argmax())].isoformat()

    assert day_counted("Asia/Shanghai") == at.date().isoformat()
    assert day_counted("America/New_York") == (at.date() - timedelta(days=1)).isoformat()
