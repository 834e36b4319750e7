"""Matching the register against policies: batch and incremental, 免申即享 end to end, 快申快享 pre-filled."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from wecity.core.models import outbox_messages
from wecity.enterprise import benefits, matching, register
from wecity.enterprise.models import policy_matches
from wecity.govservice.models import application_events, applications, certificates
from wecity.identity.applicants import citizen_for_phone

from ..conftest import City
from .conftest import COMPLETE, uscc


def _outcome(city: City, enterprise_id: int, code: str) -> tuple[str, float | None, list[str]] | None:
    row = city.db.read_sync(lambda c: c.execute(sa.select(policy_matches).where(
        policy_matches.c.enterprise_id == enterprise_id, policy_matches.c.policy_code == code)).first())
    return None if row is None else (row.outcome, row.amount, list(row.missing))


def test_automatic_grant_end_to_end(policy_city: City) -> None:
    """An enterprise whose data become complete is matched by the incremental run, granted without
    applying, and sees the decision and its record."""
    city = policy_city
    now = city.clock.now()
    incomplete = {**COMPLETE, "credit_code": uscc("91430102MA4T00001"),
                  "facts": {k: v for k, v in COMPLETE["facts"].items() if k != "layoff_rate"}}
    firm = city.db.write_sync(lambda c: register.save_enterprise(c, incomplete, now=now))[0]
    # The runner's first runs: the two policies just imported, each over the register (one a run), then the
    # enterprise, new since, against every policy.
    runs = [city.db.write_sync(lambda c: matching.match_pending(c, now=now)) for _ in range(4)]
    assert [(r.policies, r.enterprises) for r in runs] == [(1, 1), (1, 1), (2, 1), (0, 0)]
    assert _outcome(city, firm, "t-wengang") == ("unknown", None, ["layoff_rate"])
    assert city.db.write_sync(lambda c: matching.grant_pending(c, now=now, key_dir=city.settings.var_dir)) == 0

    # The employment bureau's data arrive: the layoff rate is now known.
    later = now + timedelta(hours=1)
    assert city.db.write_sync(lambda c: register.update_facts(c, firm, {"facts": {"layoff_rate": 0.02}}, now=later))
    report = city.db.write_sync(lambda c: matching.match_pending(c, now=later))
    assert report.enterprises == 1 and report.newly_eligible >= 1
    assert _outcome(city, firm, "t-wengang") == ("eligible", 31200.0, [])  # 52,000 x 60% (a small firm)
    # Nothing to match any more.
    assert city.db.write_sync(lambda c: matching.match_pending(c, now=later)).enterprises == 0

    assert city.db.write_sync(lambda c: matching.grant_pending(c, now=later, key_dir=city.settings.var_dir)) == 1
    enterprise = city.db.read_sync(lambda c: register.get_enterprise(c, firm))

    def record(c: sa.Connection) -> tuple[object, ...]:
        match = c.execute(sa.select(policy_matches).where(policy_matches.c.enterprise_id == firm,
                                                          policy_matches.c.policy_code == "t-wengang")).one()
        app = c.execute(sa.select(applications).where(applications.c.id == match.application_id)).one()
        events = [e.kind for e in c.execute(sa.select(application_events.c.kind).where(
            application_events.c.application_id == app.id).order_by(application_events.c.id))]
        cert = c.execute(sa.select(certificates).where(certificates.c.application_id == app.id)).one()
        inbox = c.execute(sa.select(outbox_messages.c.payload).where(
            outbox_messages.c.target == f"applicant:{enterprise['applicant_id']}")).scalars().all()
        return match, app, events, cert, inbox

    match, app, events, cert, inbox = city.db.read_sync(record)
    assert match.granted_at is not None
    assert (app.status, app.outcome, app.applicant_id) == ("approved", "approved", enterprise["applicant_id"])
    assert app.form_data["benefit_amount"] == 31200.0 and app.form_data["policy"] == "t-wengang"
    assert app.form_data["credit_code"] == enterprise["credit_code"]
    assert events == ["granted_without_application", "delivered"]
    assert cert.holder_id == enterprise["applicant_id"] and cert.document["fields"]["benefit_amount"] == "31200.0"  # a signed document holds decimals as text
    assert any("已办结" in str(p) for p in inbox)
    # Granted once: the next run grants nothing more.
    assert city.db.write_sync(lambda c: matching.grant_pending(c, now=later, key_dir=city.settings.var_dir)) == 0


def test_quick_apply_prefills_all_but_the_missing_field(policy_city: City) -> None:
    city = policy_city
    now = city.clock.now()
    data = {**COMPLETE, "credit_code": uscc("91430102MA4T00002"), "legal_representative_phone": "13800000002",
            "facts": {k: v for k, v in COMPLETE["facts"].items() if k != "rent_paid"}}
    firm = city.db.write_sync(lambda c: register.save_enterprise(c, data, now=now))[0]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert _outcome(city, firm, "t-rent") == ("unknown", None, ["rent_paid"])
    enterprise = city.db.read_sync(lambda c: register.get_enterprise(c, firm))
    citizen = city.db.write_sync(lambda c: citizen_for_phone(c, "13800000002", now=now))
    draft = city.db.write_sync(lambda c: benefits.quick_apply(
        c, citizen=citizen, enterprise_applicant_id=enterprise["applicant_id"], policy_code="t-rent", now=now))
    assert draft["status"] == "draft"
    assert draft["form_data"] == {"credit_code": enterprise["credit_code"], "name": "长沙数智软件有限公司", "employees": 40}
    assert draft["to_fill"] == ["rent_paid"] and draft["required_to_fill"] == ["rent_paid"]
    assert draft["prefill"]["employees"]["status"] == "filled"
    assert draft["prefill"]["rent_paid"]["status"] == "absent"
    # Asking again opens the same draft.
    again = city.db.write_sync(lambda c: benefits.quick_apply(
        c, citizen=citizen, enterprise_applicant_id=enterprise["applicant_id"], policy_code="t-rent", now=now))
    assert again["application_id"] == draft["application_id"]


def test_a_policy_change_rematches_the_register(policy_city: City) -> None:
    from wecity.enterprise.catalogue import import_policies

    from .conftest import POLICIES, RETENTION

    city = policy_city
    now = city.clock.now()
    firm = city.db.write_sync(lambda c: register.save_enterprise(
        c, {**COMPLETE, "credit_code": uscc("91430102MA4T00003")}, now=now))[0]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert _outcome(city, firm, "t-wengang") == ("eligible", 31200.0, [])
    stricter = {**RETENTION, "conditions": [*RETENTION["conditions"][:1], {
        **RETENTION["conditions"][1], "rule": "layoff_rate <= 0.01"}, *RETENTION["conditions"][2:]]}
    counts = city.db.write_sync(lambda c: import_policies(c, {**POLICIES, "policies": [stricter, POLICIES["policies"][1]]},
                                                          now=now, actor="test"))
    assert counts == {"added": 0, "changed": 1, "unchanged": 1}
    report = city.db.write_sync(lambda c: matching.match_pending(c, now=now))
    assert report.policies == 1 and report.removed == 1
    assert _outcome(city, firm, "t-wengang") is None  # ineligible now: no row


def test_notifies_newly_eligible_enterprises_once(policy_city: City) -> None:
    city = policy_city
    now = city.clock.now()
    city.db.write_sync(lambda c: register.save_enterprise(c, {**COMPLETE, "credit_code": uscc("91430102MA4T00004")},
                                                          now=now))
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert city.db.write_sync(lambda c: matching.notify_pending(c, now=now)) == 1  # the rent subsidy, to apply for
    assert city.db.write_sync(lambda c: matching.notify_pending(c, now=now)) == 0
    told = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.payload).where(
        outbox_messages.c.target.like("applicant:%"))).scalars().all())
    assert [p["link"] for p in told] == ["/policies/t-rent"]
    from ..conftest import make_client

    with make_client(city) as client:
        assert client.get("/policies/t-rent").status_code == 200  # the page the notice links to


def test_matching_again_with_nothing_changed_writes_nothing(policy_city: City) -> None:
    city = policy_city
    now = city.clock.now()
    for n, facts in enumerate(({}, {"layoff_rate": None}, {"rent_paid": None, "layoff_rate": None})):
        data = {**COMPLETE, "credit_code": uscc(f"91430102MA4T0010{n}"),
                "facts": {k: v for k, v in COMPLETE["facts"].items() if k not in facts}}
        city.db.write_sync(lambda c, data=data: register.save_enterprise(c, data, now=now))
    first = city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert first.written == first.outcomes["eligible"] + first.outcomes["unknown"] > 0
    again = city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert (again.written, again.removed, again.newly_eligible) == (0, 0, 0)
    assert again.outcomes == first.outcomes


def test_a_changed_policy_is_matched_over_the_register_one_chunk_a_transaction(policy_city: City, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from wecity.enterprise.catalogue import import_policies
    from wecity.enterprise.models import policies

    from .conftest import POLICIES, RETENTION

    city = policy_city
    now = city.clock.now()
    firms = [city.db.write_sync(lambda c, n=n: register.save_enterprise(
        c, {**COMPLETE, "credit_code": uscc(f"91430102MA4T0020{n}")}, now=now))[0] for n in range(3)]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert all(_outcome(city, f, "t-wengang") is not None for f in firms)
    stricter = {**RETENTION, "conditions": [*RETENTION["conditions"][:1], {
        **RETENTION["conditions"][1], "rule": "layoff_rate <= 0.01"}, *RETENTION["conditions"][2:]]}
    city.db.write_sync(lambda c: import_policies(c, {**POLICIES, "policies": [stricter, POLICIES["policies"][1]]},
                                                 now=now, actor="test"))
    monkeypatch.setattr(matching, "REMATCH_CHUNK", 2)
    first = city.db.write_sync(lambda c: matching.match_pending(c, now=now))
    assert (first.enterprises, first.removed) == (2, 2)
    cursor = city.db.read_sync(lambda c: c.execute(sa.select(policies.c.match_cursor, policies.c.matched_version)
                                                   .where(policies.c.code == "t-wengang")).one())
    assert cursor == (firms[1], 1)  # half way: still matched against version 1
    second = city.db.write_sync(lambda c: matching.match_pending(c, now=now))
    assert (second.enterprises, second.removed) == (1, 1)
    done = city.db.read_sync(lambda c: c.execute(sa.select(policies.c.match_cursor, policies.c.matched_version)
                                                 .where(policies.c.code == "t-wengang")).one())
    assert done == (None, 2)
    assert all(_outcome(city, f, "t-wengang") is None for f in firms)


def _run_pending(city: City, now: object) -> list[matching.MatchReport]:
    """The runner's incremental match until it has nothing left."""
    reports = []
    for _ in range(10):
        report = city.db.write_sync(lambda c: matching.match_pending(c, now=now))
        if not (report.enterprises or report.policies):
            return reports
        reports.append(report)
    raise AssertionError("the incremental match never settled")


def test_a_policy_coming_into_force_is_matched_on_its_first_day_and_granted(policy_city: City) -> None:
    """Imported before it is in force (the usual practice): nobody is eligible on import; on its first day
    the daily match finds the enterprises, and the 免申即享 grants follow, with no change to policy or data."""
    from wecity.enterprise.catalogue import import_policies

    from .conftest import RETENTION

    city = policy_city
    now = city.clock.now()  # 2026-11-02
    firm = city.db.write_sync(lambda c: register.save_enterprise(
        c, {**COMPLETE, "credit_code": uscc("91430102MA4T00301")}, now=now))[0]
    coming = {**RETENTION, "code": "t-coming", "valid_from": "2026-11-20", "valid_until": None}
    city.db.write_sync(lambda c: import_policies(c, {"format": "wecity-policies/1", "policies": [coming]},
                                                 now=now, actor="test"))
    _run_pending(city, now)
    assert _outcome(city, firm, "t-coming") is None
    assert _run_pending(city, now + timedelta(hours=6)) == []  # the same day: nothing to do again
    eve = now + timedelta(days=17)  # 19 November
    assert [r.policies for r in _run_pending(city, eve)] == [1, 1, 1]  # each policy once on a new day
    assert _outcome(city, firm, "t-coming") is None
    first_day = now + timedelta(days=18)  # 20 November, 17:00 in Changsha
    _run_pending(city, first_day)
    assert _outcome(city, firm, "t-coming") == ("eligible", 31200.0, [])
    assert city.db.write_sync(lambda c: matching.grant_pending(c, now=first_day, key_dir=city.settings.var_dir)) == 2


def test_a_match_no_longer_eligible_when_granted_leaves_the_due_list(policy_city: City) -> None:
    """The refund ends on 31 December: a match made before that but granted after it is not granted, and
    no longer due, so that it is not tried on every run (nor holds up the grants behind it)."""
    city = policy_city
    now = city.clock.now()
    firm = city.db.write_sync(lambda c: register.save_enterprise(
        c, {**COMPLETE, "credit_code": uscc("91430102MA4T00302")}, now=now))[0]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    assert _outcome(city, firm, "t-wengang") == ("eligible", 31200.0, [])
    assert len(city.db.read_sync(lambda c: matching.grant_due(c))) == 1
    ended = now + timedelta(days=70)  # 11 January 2027
    assert city.db.write_sync(lambda c: matching.grant_pending(c, now=ended, key_dir=city.settings.var_dir)) == 0
    assert _outcome(city, firm, "t-wengang") is None
    assert city.db.read_sync(lambda c: matching.grant_due(c)) == []
