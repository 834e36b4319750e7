"""Webhook notices about a case carry a per-case sequence number, so a receiver can put them back in order
after an outage (the outbox delivers several at once and retries some later)."""

from __future__ import annotations

import sqlalchemy as sa

from wecity.cases.clocks import check_clocks
from wecity.cases.intake import NewReport, submit_report
from wecity.core.models import outbox_messages
from wecity.geo.service import load_area_index
from wecity.identity.models import departments

from ..conftest import City

# 五一广场, 芙蓉区 (WGS-84)
LAT, LONG = 28.19567, 112.97170


def _open(city: City, lat: float) -> int:
    def run(conn):  # noqa: ANN001, ANN202
        return submit_report(conn, NewReport(service_code="pothole", lat=lat, long=LONG, description="坑"),
                             area_index=load_area_index(conn), now=city.clock.now()).case_id

    return int(city.db.write_sync(run))


def _sequences(city: City) -> dict[int, list[int]]:
    rows = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.payload).where(
        outbox_messages.c.channel == "webhook", outbox_messages.c.target == "https://dept.example/hook")
        .order_by(outbox_messages.c.id)).all())
    found: dict[int, list[int]] = {}
    for (payload,) in rows:
        found.setdefault(payload["case_id"], []).append(payload["sequence"])
    return found


def test_each_case_numbers_its_webhook_notices_in_order(city: City) -> None:
    city.db.write_sync(lambda c: c.execute(departments.update().values(webhook_url="https://dept.example/hook")))
    first = _open(city, LAT)
    second = _open(city, LAT + 0.01)  # about 1 km away: a case of its own
    for minutes in (50, 70):  # past the pothole's 80% acknowledge warning, then past its deadline
        city.clock.advance(minutes=minutes)
        city.db.write_sync(lambda c: check_clocks(c, city.clock.now()))
    city.clock.advance(days=10)  # past the resolve warning and deadline too
    city.db.write_sync(lambda c: check_clocks(c, city.clock.now()))
    numbered = _sequences(city)
    assert numbered[first][0] == 1 and numbered[second][0] == 1
    for sequence in numbered.values():
        assert len(sequence) >= 3 and sequence == list(range(1, len(sequence) + 1))
