"""Open311 POSTs count against their API key's rate limit (WECITY_RATE_LIMIT_OPEN311): one key filed
about 1,400 reports a minute before there was one."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest

from wecity.cases.models import reports
from wecity.core.limits import parse_rule
from wecity.identity.service import add_api_key

from ..conftest import SEED_TIME, City, make_client
from .test_requests import post


def _reports(city: City) -> int:
    return len(city.db.read_sync(lambda c: c.execute(reports.select()).all()))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_request_past_the_key_limit_is_429_in_the_open311_format_until_the_window_ends(
        city: City, fmt: str) -> None:
    city.clock.at = SEED_TIME + timedelta(seconds=20)  # 20 s into a minute: 40 s left of the window
    with make_client(city, rate_limits={"open311": parse_rule("3/minute")}) as client:
        for n in range(3):
            assert post(client, city, fmt, description=f"坑 {n}").status_code == 200
        refused = post(client, city, fmt, description="坑 3")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "40"
        if fmt == "json":
            error = refused.json()[0]
            assert error["code"] == 429 and "40 秒后再试" in error["description"]
        else:
            root = ET.fromstring(refused.content)
            assert root.findtext("error/code") == "429" and "at most 3 per minute" in root.findtext(
                "error/description")
        assert _reports(city) == 3

        other_key = city.db.write_sync(lambda c: add_api_key(c, name="another partner", scopes=["open311:write"],
                                                             now=SEED_TIME))
        assert post(client, city, fmt, api_key=other_key, description="另一个伙伴").status_code == 200

        city.clock.advance(seconds=40)
        assert post(client, city, fmt, description="坑 4").status_code == 200
    assert _reports(city) == 5


def _back_office_key(city: City) -> str:
    """A key of 住建's back office (the pothole's department), acting as its handler."""
    return city.db.write_sync(lambda c: add_api_key(c, name="zhujian back office", scopes=["open311:write"],
                                                    username="zhujian", now=SEED_TIME))


def test_status_updates_from_a_back_office_count_too(sqlite_city: City) -> None:
    back_office = _back_office_key(sqlite_city)
    with make_client(sqlite_city, rate_limits={"open311": parse_rule("2/minute")}) as client:
        assert post(client, sqlite_city, api_key=back_office).status_code == 200
        update = {"api_key": back_office, "service_request_id": "1", "status": "OPEN", "description": "已安排"}
        assert client.post("/open311/v2/servicerequestupdates.json", data=update).status_code == 200
        refused = client.post("/open311/v2/servicerequestupdates.json", data=update)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) <= 60


@pytest.mark.parametrize("path", ["requests.json", "servicerequestupdates.xml"])
def test_a_made_up_key_is_refused_by_a_read_before_it_is_counted_or_anything_is_written(
        sqlite_city: City, path: str) -> None:
    city = sqlite_city
    with make_client(city) as client:
        assert post(client, city).status_code == 200
        counted: list[tuple[str, str]] = []
        limits = client.app.state.ctx.limits
        hit = limits.hit

        async def counting(name: str, key: str, *args: object) -> None:
            counted.append((name, key))
            await hit(name, key, *args)

        writes = {"n": 0}
        write = city.db.write

        async def writing(*args: object, **kwargs: object) -> object:
            writes["n"] += 1
            return await write(*args, **kwargs)

        limits.hit, city.db.write = counting, writing
        try:
            for n in range(5):
                refused = client.post(f"/open311/v2/{path}", data={
                    "api_key": f"made-up-{n}", "service_request_id": "1", "status": "OPEN", "description": "x",
                    "service_code": "pothole", "lat": "28.196", "long": "112.977"})
                assert refused.status_code == 403, refused.text
            # Nor a key that is real but acts for no staff member (it may file requests, not update them).
            assert client.post("/open311/v2/servicerequestupdates.json", data={
                "api_key": city.api_key, "service_request_id": "1", "status": "OPEN"}).status_code == 403
        finally:
            limits.hit, city.db.write = hit, write
        assert counted == [] and writes["n"] == 0
