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


def test_status_updates_from_a_back_office_count_too(sqlite_city: City) -> None:
    with make_client(sqlite_city, rate_limits={"open311": parse_rule("2/minute")}) as client:
        assert post(client, sqlite_city).status_code == 200
        update = {"api_key": sqlite_city.api_key, "service_request_id": "1", "status": "OPEN", "description": "x"}
        # The first update spends the key's second request; its answer is the key's business, not the limit's.
        assert client.post("/open311/v2/servicerequestupdates.json", data=update).status_code != 429
        refused = client.post("/open311/v2/servicerequestupdates.json", data=update)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) <= 60
