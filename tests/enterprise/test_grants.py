"""A 免申即享 benefit is granted once: not twice by two runs, not again to an enterprise that applied for it
(快申快享), and not held up forever by a draft the enterprise left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from wecity.enterprise import benefits, matching, queries, register
from wecity.enterprise.models import policy_matches
from wecity.govservice.applications import submit
from wecity.govservice.models import applications
from wecity.identity.applicants import find_citizen

from ..conftest import City
from .conftest import COMPLETE, uscc


def _firm(city: City, first17: str, facts: dict[str, Any]) -> dict[str, Any]:
    now = city.clock.now()
    data = {**COMPLETE, "credit_code": uscc(first17), "facts": facts}
    firm_id = city.db.write_sync(lambda c: register.save_enterprise(c, data, now=now))[0]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    return city.db.read_sync(lambda c: register.get_enterprise(c, firm_id))


def _applications(city: City, applicant_id: int) -> list[tuple[str, str]]:
    return [(r.matter_code, r.status) for r in city.db.read_sync(lambda c: c.execute(
        sa.select(applications.c.matter_code, applications.c.status).where(
            applications.c.applicant_id == applicant_id).order_by(applications.c.id)).all())]


def _quick_apply(city: City, firm: dict[str, Any], code: str) -> dict[str, Any]:
    citizen = city.db.read_sync(lambda c: find_citizen(c, str(COMPLETE["legal_representative_phone"])))
    return city.db.write_sync(lambda c: benefits.quick_apply(
        c, citizen=citizen, enterprise_applicant_id=firm["applicant_id"], policy_code=code, now=city.clock.now()))


def _grant_pending(city: City, when: Any) -> int:
    return city.db.write_sync(lambda c: matching.grant_pending(c, now=when, key_dir=city.settings.var_dir))


def test_a_grant_is_made_once_however_often_it_is_asked_for(policy_city: City) -> None:
    """Two runners (or one run twice) granting the same match make one grant: the row is claimed first."""
    city = policy_city
    firm = _firm(city, "91430102MA4T00401", dict(COMPLETE["facts"]))
    now = city.clock.now()
    first = city.db.write_sync(lambda c: benefits.grant(c, firm["id"], "t-wengang", now=now, key_dir=city.settings.var_dir))
    again = city.db.write_sync(lambda c: benefits.grant(c, firm["id"], "t-wengang", now=now, key_dir=city.settings.var_dir))
    assert first is not None and again is None
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "approved")]
    assert _grant_pending(city, now) == 0


def test_an_enterprise_that_applied_is_not_granted_the_benefit_again(policy_city: City) -> None:
    """Not eligible on the register at first (a violation on record), the enterprise applies (快申快享) and
    submits; once the register clears it, the 免申即享 run does not pay the benefit a second time."""
    city = policy_city
    firm = _firm(city, "91430102MA4T00402", {**COMPLETE["facts"], "serious_violation": True})
    draft = _quick_apply(city, firm, "t-wengang")
    citizen = city.db.read_sync(lambda c: find_citizen(c, str(COMPLETE["legal_representative_phone"])))
    assert city.db.write_sync(lambda c: submit(c, draft["application_id"], citizen=citizen, now=city.clock.now())) \
        is not None
    # The application is linked to the policy, though the match had kept no row for an ineligible firm.
    linked = city.db.read_sync(lambda c: c.execute(sa.select(policy_matches.c.application_id).where(
        policy_matches.c.enterprise_id == firm["id"], policy_matches.c.policy_code == "t-wengang")).scalar())
    assert linked == draft["application_id"]
    later = city.clock.now() + timedelta(hours=1)
    city.db.write_sync(lambda c: register.update_facts(c, firm["id"], {"facts": {"serious_violation": False}}, now=later))
    city.db.write_sync(lambda c: matching.match_pending(c, now=later))
    assert _grant_pending(city, later) == 0
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "submitted")]
    # Nor when the match row was unlinked (an application made at the counter, say): the grant looks.
    city.db.write_sync(lambda c: c.execute(policy_matches.update().where(
        policy_matches.c.enterprise_id == firm["id"]).values(application_id=None)))
    assert city.db.write_sync(lambda c: benefits.grant(c, firm["id"], "t-wengang", now=later,
                                                       key_dir=city.settings.var_dir)) is None
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "submitted")]
    assert city.db.read_sync(lambda c: matching.grant_due(c)) == []  # linked again: not due


def test_a_draft_left_unsent_does_not_hold_up_the_grant(policy_city: City) -> None:
    """The enterprise opened a draft while the register lacked its layoff rate; once the rate arrives, the
    benefit is granted without an application and the draft withdrawn, as the page said it would be."""
    city = policy_city
    firm = _firm(city, "91430102MA4T00403", {k: v for k, v in COMPLETE["facts"].items() if k != "layoff_rate"})
    draft = _quick_apply(city, firm, "t-wengang")
    assert draft["status"] == "draft"
    later = city.clock.now() + timedelta(hours=1)
    city.db.write_sync(lambda c: register.update_facts(c, firm["id"], {"facts": {"layoff_rate": 0.01}}, now=later))
    city.db.write_sync(lambda c: matching.match_pending(c, now=later))
    assert _grant_pending(city, later) == 1
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "withdrawn"), ("T-WG", "approved")]
    home = city.db.read_sync(lambda c: queries.enterprise_home(c, firm["applicant_id"], later.date()))
    shown = next(p for p in home["policies"] if p["code"] == "t-wengang")
    assert shown["granted_at"] is not None and shown["application_id"] != draft["application_id"]
    assert _grant_pending(city, later) == 0


def test_an_application_a_reviewer_refused_is_not_overturned_by_a_grant(policy_city: City) -> None:
    """A person refused the enterprise's application for the benefit: the platform does not grant it anyway
    when the register later says it is eligible."""
    city = policy_city
    firm = _firm(city, "91430102MA4T00409", {k: v for k, v in COMPLETE["facts"].items() if k != "layoff_rate"})
    draft = _quick_apply(city, firm, "t-wengang")
    city.db.write_sync(lambda c: c.execute(applications.update().where(
        applications.c.id == draft["application_id"]).values(status="refused")))  # as a reviewer's decision
    later = city.clock.now() + timedelta(hours=1)
    city.db.write_sync(lambda c: register.update_facts(c, firm["id"], {"facts": {"layoff_rate": 0.01}}, now=later))
    city.db.write_sync(lambda c: matching.match_pending(c, now=later))
    assert _grant_pending(city, later) == 0
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "refused")]


def test_the_operations_page_counts_a_grant_once(policy_city: City) -> None:
    """A 免申即享 grant is recorded as an application decided at once: it is a grant, not also an application."""
    from wecity.insight.loops import enterprise
    from wecity.insight.queries import default_filters

    city = policy_city
    firm = _firm(city, "91430102MA4T00404", dict(COMPLETE["facts"]))
    now = city.clock.now()
    assert _grant_pending(city, now) == 1
    later = now + timedelta(hours=1)
    figures = city.db.read_sync(lambda c: {f["code"]: f["value"] for f in enterprise(c, default_filters(c, later))})
    assert (figures["policy_granted"], figures["policy_applied"]) == (1, 0)
    assert figures["policy_no_application_share"] == 100.0
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "approved")]


def test_take_up_counts_an_application_once_it_is_submitted(policy_city: City) -> None:
    """A draft opened in one click is not yet an application: the policy's take-up counts it as not taken up."""
    city = policy_city
    firm = _firm(city, "91430102MA4T00405", dict(COMPLETE["facts"]))
    draft = _quick_apply(city, firm, "t-rent")
    taken = city.db.read_sync(lambda c: queries.take_up(c, "t-rent"))
    assert (taken["eligible"], taken["applied"], taken["not_taken_up"], taken["applications"]) == (1, 0, 1, {})
    citizen = city.db.read_sync(lambda c: find_citizen(c, str(COMPLETE["legal_representative_phone"])))
    city.db.write_sync(lambda c: submit(c, draft["application_id"], citizen=citizen, now=city.clock.now()))
    taken = city.db.read_sync(lambda c: queries.take_up(c, "t-rent"))
    assert (taken["applied"], taken["not_taken_up"], taken["applications"]) == (1, 0, {"submitted": 1})


def test_two_runners_granting_at_once_on_postgresql_make_one_grant(policy_city: City) -> None:
    """Two transactions grant the same match at the same moment: the second waits on the first's claim of
    the row and, once the first commits, finds it granted."""
    import threading
    import time

    import pytest

    city = policy_city
    if city.backend != "postgres":
        pytest.skip("SQLite has one writer: two grants cannot overlap")
    firm = _firm(city, "91430102MA4T00406", dict(COMPLETE["facts"]))
    now = city.clock.now()
    second: list[int | None] = []

    def run_second() -> None:
        with city.db.engine.begin() as c:
            second.append(benefits.grant(c, firm["id"], "t-wengang", now=now, key_dir=city.settings.var_dir))

    with city.db.engine.connect() as first:
        with first.begin():
            made = benefits.grant(first, firm["id"], "t-wengang", now=now, key_dir=city.settings.var_dir)
            other = threading.Thread(target=run_second)
            other.start()
            time.sleep(0.5)  # the second is at the claim, waiting on the first's row lock
        other.join(timeout=30)
    assert made is not None and second == [None]
    assert _applications(city, firm["applicant_id"]) == [("T-WG", "approved")]


def test_a_benefit_s_amount_is_kept_to_the_fen_exactly(policy_city: City) -> None:
    """NUMERIC(14, 2), not a binary float: the database holds 31200.00 and sums to the fen."""
    city = policy_city
    _firm(city, "91430102MA4T00407", dict(COMPLETE["facts"]))
    column = next(c for c in city.db.read_sync(lambda c: sa.inspect(c).get_columns("policy_matches"))
                  if c["name"] == "amount")
    assert isinstance(column["type"], sa.Numeric) and not isinstance(column["type"], sa.Float)
    assert (column["type"].precision, column["type"].scale) == (14, 2)
    amount = city.db.read_sync(lambda c: c.execute(sa.select(policy_matches.c.amount).where(
        policy_matches.c.policy_code == "t-wengang")).scalar_one())
    assert amount == 31200.0 and isinstance(amount, int | float)  # SQLite gives 31200 back as a whole number
