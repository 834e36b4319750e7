"""A reporter's verbs by tracking code (rating, "still not fixed", 催办) have no credentials: each is counted
per client address before any work, so neither guesses at codes nor a flood of ratings reach the database."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.models import reports
from wecity.core.limits import parse_rule

from ..conftest import City, make_client
from .conftest import Staff, open_case


@pytest.mark.parametrize(("verb", "rule", "body"), [
    ("rating", "case_rating", {"stars": 5}),
    ("reopen", "portal_voice", {"note": "还是没修好"}),
])
def test_a_reporters_verb_is_counted_per_address_before_any_work(sqlite_city: City, verb: str, rule: str,
                                                                 body: dict[str, object]) -> None:
    rules = {**sqlite_city.settings.rate_limits, rule: parse_rule("2/minute")}
    with make_client(sqlite_city, rate_limits=rules) as client:
        answers = [client.post(f"/api/v1/track/made-up-code-{n}/{verb}", json=body).status_code for n in range(3)]
    assert answers[:2] == [404, 404]  # no such code: looked up, and counted
    assert answers[2] == 429


def test_the_limit_leaves_a_reporter_their_own_rating(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="已修复", evidence_media_id="p"))
    token = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.token).where(reports.c.case_id == case_id))
                              .scalar_one())
    with make_client(city) as client:
        rated = client.post(f"/api/v1/track/{token}/rating", json={"stars": 5})
    assert rated.status_code == 200 and rated.json()["status"] == "verified"
