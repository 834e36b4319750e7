"""The service loop through its verbs, on SQLite and PostgreSQL: apply pre-filled once-only, 补正 with the
clock paused, parallel review, decision, a certificate issued and reused, rating and rectification."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.core.models import outbox_messages as outbox
from wecity.geo.service import city_calendar, city_today, get_jurisdiction, set_jurisdiction
from wecity.govservice import applications as apply
from wecity.govservice import approvals, certificates, queries, ratings
from wecity.govservice.clock import add_working_days, local_day
from wecity.govservice.models import applications
from wecity.govservice.models import certificates as certificates_table
from wecity.identity.models import audit_log

from .conftest import CREDIT_CODE, Services


def view(s: Services, app_id: int) -> dict[str, Any]:
    return s.city.db.read_sync(lambda c: queries.application_view(c, app_id, today=city_today(c, s.city.clock.now())))


def write(s: Services, fn: Any) -> Any:
    return s.city.db.write_sync(fn)


def licensed(s: Services) -> str:
    """Run the licence matter (the simple process) for the citizen; returns the licence's number."""
    now = s.city.clock.now
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-BIZ", now=now()))
    write(s, lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=now(),
                                        form_data={"business_name": "明记小吃", "credit_code": CREDIT_CODE}))
    write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=now()))
    write(s, lambda c: approvals.accept(c, app_id, staff=s.market, now=now()))
    write(s, lambda c: approvals.decide(c, app_id, staff=s.market_lead, outcome="approve", reason=None,
                                        legal_basis=None, now=now(), key_dir=s.city.settings.var_dir))
    v = view(s, app_id)
    assert v["status"] == "approved" and len(v["certificates"]) == 1
    return str(v["certificates"][0]["number"])


def test_a_draft_is_prefilled_from_the_profile_and_a_held_certificate_and_spares_its_material(services: Services) -> None:
    s = services
    number = licensed(s)
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    v = view(s, app_id)
    assert v["form_data"] == {"business_name": "明记小吃", "credit_code": CREDIT_CODE, "contact": "李明"}
    assert v["prefill"]["business_name"] == {"source": "certificate:business_licence", "status": "filled", "via": number,
                                             "value": "明记小吃"}
    assert v["prefill"]["contact"]["source"] == "profile"
    assert v["materials"]["licence"] == {"state": "replaced", "media": [], "by": number}
    assert v["materials"]["design"]["state"] == "missing"
    assert v["documents_spared"] == 1


def test_a_certificate_revoked_after_the_draft_began_spares_nothing_at_submission(services: Services) -> None:
    s = services
    number = licensed(s)
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    write(s, lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=s.city.clock.now(),
                                        form_data={"address": "五一大道 9 号", "width_m": 2}))
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["m1"],
                                             now=s.city.clock.now()))
    write(s, lambda c: certificates.revoke(c, number, by="user:shichang", department_code="shichang",
                                           reason="吊销", now=s.city.clock.now()))
    with pytest.raises(ValidationFailed) as lapsed:
        write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now()))
    assert lapsed.value.code == "govservice.certificate_lapsed" and lapsed.value.details["materials"] == ["licence"]
    assert f"电子证照 {number} 已失效" in lapsed.value.message_zh
    # Uploaded instead, the material counts, and the application goes in.
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="licence", media=["m2"],
                                             now=s.city.clock.now()))
    assert write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now())) is True


def test_a_source_that_fails_shows_as_failed_not_as_an_empty_success(services: Services) -> None:
    s = services
    number = licensed(s)
    # The licence's stored document no longer matches its signature: reuse must not trust it.
    def tamper(conn: sa.Connection) -> None:
        document = certificates.get_certificate(conn, number)["document"]
        forged = {**document, "fields": {**document["fields"], "business_name": "假冒"}}
        conn.execute(certificates_table.update().where(certificates_table.c.number == number).values(document=forged))

    write(s, tamper)
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    v = view(s, app_id)
    assert v["prefill"]["business_name"]["status"] == "failed"
    assert "business_name" not in v["form_data"]
    assert v["prefill"]["contact"]["status"] == "filled"  # the other source still answered


def test_a_citizen_without_a_licence_sees_the_fields_absent_and_must_upload(services: Services) -> None:
    s = services
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.stranger, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    v = view(s, app_id)
    assert v["prefill"]["business_name"]["status"] == "absent"
    assert v["materials"]["licence"]["state"] == "missing" and v["documents_spared"] == 0
    with pytest.raises(ValidationFailed) as err:
        write(s, lambda c: apply.submit(c, app_id, citizen=s.stranger, now=s.city.clock.now()))
    assert err.value.code == "govservice.form_invalid"
    fields = {f["field"] for f in err.value.details["fields"]}
    assert {"business_name", "credit_code", "address", "width_m"} <= fields


def _ready_sign_application(s: Services) -> int:
    licensed(s)
    now = s.city.clock.now
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN", now=now(),
                                                         idempotency_key="k1"))
    assert write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN", now=now(),
                                                      idempotency_key="k1")) == app_id
    write(s, lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=now(),
                                        form_data={"address": "长沙市芙蓉区五一大道 1 号", "width_m": 6.5}))
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["m1"], now=now()))
    assert write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=now())) is True
    assert write(s, lambda c: apply.submit(c, app_id, citizen=s.citizen, now=now())) is False  # idempotent
    return app_id


def test_the_whole_loop_with_a_supplement_that_moves_the_due_date(services: Services) -> None:
    s = services
    clock = s.city.clock
    app_id = _ready_sign_application(s)
    assert view(s, app_id)["status"] == "submitted"
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=clock.now()))
    v = view(s, app_id)
    calendar = s.city.db.read_sync(city_calendar)
    accepted_day = local_day(clock.now(), calendar)
    assert v["status"] == "in_review" and v["due_on"] == add_working_days(calendar, accepted_day, 5)
    assert sorted(r["department_code"] for r in v["reviews"]) == ["jiaojing", "jiaotong"]

    # Transport asks for a better drawing; the applicant is told only when police has answered too.
    write(s, lambda c: approvals.request_supplement(c, app_id, staff=s.transport, note="效果图须标注尺寸",
                                                    materials=["design"], now=clock.now()))
    assert view(s, app_id)["status"] == "in_review"
    write(s, lambda c: approvals.review(c, app_id, staff=s.police, outcome="approve", note=None, now=clock.now()))
    v = view(s, app_id)
    assert v["status"] == "supplement" and v["materials"]["design"]["state"] == "requested"
    paused_on = local_day(clock.now(), calendar)
    with pytest.raises(ValidationFailed):  # the drawing asked for is not there yet
        write(s, lambda c: apply.supply(c, app_id, citizen=s.citizen, form_data={}, now=clock.now()))

    clock.advance(days=7)  # a week with the applicant: five working days (2026-11-03 .. 11-09)
    write(s, lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["m2"],
                                             now=clock.now()))
    write(s, lambda c: apply.supply(c, app_id, citizen=s.citizen, form_data={}, now=clock.now()))
    v = view(s, app_id)
    paused = sum(1 for d in range(1, 8) if calendar.is_working_day(date.fromordinal(paused_on.toordinal() + d)))
    assert v["paused_days"] == paused == 5
    assert v["due_on"] == add_working_days(calendar, accepted_day, 5 + paused)
    assert v["status"] == "in_review"
    assert {r["round"] for r in v["reviews"]} == {1, 2}

    for reviewer in (s.transport, s.police):
        write(s, lambda c, r=reviewer: approvals.review(c, app_id, staff=r, outcome="approve", note=None,
                                                        now=clock.now()))
    assert view(s, app_id)["status"] == "deciding"
    write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="approve", reason=None, legal_basis=None,
                                        now=clock.now(), key_dir=s.city.settings.var_dir))
    v = view(s, app_id)
    assert v["status"] == "approved" and v["finished_at"] is not None
    number = v["certificates"][0]["number"]
    verdict = s.city.db.read_sync(lambda c: certificates.verify_number(c, number, clock.now()))
    assert verdict.status == "valid"

    with pytest.raises(ValidationFailed) as too_long:
        write(s, lambda c: ratings.rate(c, app_id, citizen=s.citizen, level=2, comment="慢" * 1001, now=clock.now()))
    assert too_long.value.code == "govservice.comment_too_long"
    rect = write(s, lambda c: ratings.rate(c, app_id, citizen=s.citizen, level=2, tags=["slow"], comment="太慢",
                                           now=clock.now()))
    assert rect is not None
    v = view(s, app_id)
    assert v["rectification"]["due_on"] == add_working_days(calendar, local_day(clock.now(), calendar), 15)
    with pytest.raises(PermissionDenied):
        write(s, lambda c: ratings.close_rectification(c, rect, staff=s.transport, department_code="jiaotong",
                                                       callback_note="x", measures="y", now=clock.now()))
    write(s, lambda c: ratings.close_rectification(c, rect, staff=s.lead, department_code="chengguan",
                                                   callback_note="已回访，申请人认可", measures="压缩审查环节",
                                                   now=clock.now()))
    kinds = [e["kind"] for e in view(s, app_id)["events"]]
    assert kinds[:3] == ["created", "material_added", "submitted"]
    # The applicant reads the officers by name and department, never by their sign-in names.
    staff_view = json.dumps(view(s, app_id), default=str, ensure_ascii=False)
    mine = json.dumps(s.city.db.read_sync(lambda c: queries.applicant_view(
        c, app_id, now=s.city.clock.now())), default=str, ensure_ascii=False)
    assert '"user:' in staff_view and '"user:' not in mine and "已回访" in mine
    assert {"accepted", "supplement_requested", "supplied", "review_approved", "approved", "delivered", "rated",
            "rectification_opened", "rectification_closed"} <= set(kinds)
    audited = s.city.db.read_sync(lambda c: set(c.execute(sa.select(audit_log.c.action).where(
        audit_log.c.target.like("application:%"))).scalars()))
    assert {"application.submit", "application.accept", "application.request_supplement",
            "application.review_approve", "application.decide_approve"} <= audited
    sms = s.city.db.read_sync(lambda c: [r.payload for r in c.execute(sa.select(outbox.c.payload).where(
        outbox.c.target == "sms"))])
    assert any("需要补正" in p["text"] and p["phone"] == "13912345678" for p in sms)


def test_rights_of_the_other_applicant_and_of_other_departments(services: Services) -> None:
    s = services
    app_id = _ready_sign_application(s)
    now = s.city.clock.now
    with pytest.raises(NotFound):
        s.city.db.read_sync(lambda c: apply.own_application(c, app_id, s.stranger))
    with pytest.raises(NotFound):
        write(s, lambda c: apply.withdraw(c, app_id, citizen=s.stranger, now=now()))
    with pytest.raises(PermissionDenied):  # a reviewer cannot accept for the owning department
        write(s, lambda c: approvals.accept(c, app_id, staff=s.transport, now=now()))
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=now()))
    with pytest.raises(PermissionDenied):  # the market regulator has no review here
        write(s, lambda c: approvals.review(c, app_id, staff=s.market, outcome="approve", note=None, now=now()))
    with pytest.raises(InvalidTransition):  # not at the decision yet
        write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="approve", reason=None,
                                            legal_basis=None, now=now(), key_dir=s.city.settings.var_dir))
    for reviewer in (s.transport, s.police):
        write(s, lambda c, r=reviewer: approvals.review(c, app_id, staff=r, outcome="approve", note=None, now=now()))
    with pytest.raises(PermissionDenied):  # deciding is the supervisor's
        write(s, lambda c: approvals.decide(c, app_id, staff=s.accepting, outcome="approve", reason=None,
                                            legal_basis=None, now=now(), key_dir=s.city.settings.var_dir))
    with pytest.raises(ValidationFailed):  # a refusal gives its reasons
        write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="refuse", reason=None,
                                            legal_basis=None, now=now(), key_dir=s.city.settings.var_dir))
    write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="refuse", reason="位置占用消防通道",
                                        legal_basis="《消防法》第二十八条", now=now(), key_dir=s.city.settings.var_dir))
    v = view(s, app_id)
    assert v["status"] == "refused" and v["certificates"] == []


def test_an_agent_applies_for_the_enterprise_and_a_stranger_cannot(services: Services) -> None:
    s = services
    now = s.city.clock.now
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN", now=now(),
                                                         acting_for=s.firm.id))
    assert view(s, app_id)["applicant_id"] == s.firm.id
    with pytest.raises(PermissionDenied):
        write(s, lambda c: apply.start_application(c, citizen=s.stranger, matter_code="T-SIGN", now=now(),
                                                   acting_for=s.firm.id))
    with pytest.raises(PermissionDenied):  # the licence matter is for citizens only
        write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-BIZ", now=now(),
                                                   acting_for=s.firm.id))


def test_special_procedure_and_extension_move_the_due_date_and_the_clock_warns_then_escalates(services: Services) -> None:
    from wecity.govservice.tasks import check_clocks

    s = services
    clock = s.city.clock
    app_id = _ready_sign_application(s)
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=clock.now()))
    calendar = s.city.db.read_sync(city_calendar)
    due = view(s, app_id)["due_on"]
    with pytest.raises(ValidationFailed):  # hearings are not an uncounted step of this matter
        write(s, lambda c: approvals.start_special_procedure(c, app_id, staff=s.accepting, kind="hearing",
                                                             reason="x", now=clock.now()))
    write(s, lambda c: approvals.start_special_procedure(c, app_id, staff=s.accepting, kind="inspection",
                                                         reason="现场勘验", now=clock.now()))
    clock.advance(days=1)
    write(s, lambda c: approvals.end_special_procedure(c, app_id, staff=s.accepting, now=clock.now()))
    after_inspection = view(s, app_id)["due_on"]
    assert after_inspection == add_working_days(calendar, due, 1)
    with pytest.raises(PermissionDenied):
        write(s, lambda c: approvals.extend(c, app_id, staff=s.accepting, days=3, reason="复杂", now=clock.now()))
    write(s, lambda c: approvals.extend(c, app_id, staff=s.lead, days=3, reason="需征求相关部门意见", now=clock.now()))
    assert view(s, app_id)["due_on"] == add_working_days(calendar, after_inspection, 3)
    assert write(s, lambda c: check_clocks(c, clock.now())) == 0
    clock.advance(days=9)  # 7 of 9 working days used: past 80%
    assert write(s, lambda c: check_clocks(c, clock.now())) == 1
    assert write(s, lambda c: check_clocks(c, clock.now())) == 0  # warned once
    clock.advance(days=7)
    assert write(s, lambda c: check_clocks(c, clock.now())) == 1
    v = view(s, app_id)
    assert v["clock"]["overdue"] and "escalated" in [e["kind"] for e in v["events"]]
    row = s.city.db.read_sync(lambda c: c.execute(sa.select(applications.c.escalated_at).where(
        applications.c.id == app_id)).scalar())
    assert row is not None


def test_due_dates_and_certificate_numbers_are_counted_in_the_city_s_own_days(services: Services) -> None:
    s = services

    def move_to_new_york(conn: sa.Connection) -> None:
        row = get_jurisdiction(conn)
        set_jurisdiction(conn, id=row.id, name_zh=row.name_zh, name_en=row.name_en, adcode=row.adcode,
                         timezone="America/New_York")

    write(s, move_to_new_york)
    s.city.clock.at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # Monday 2 Nov 21:00 in New York; Tuesday in China
    assert "-20261102-" in licensed(s)
    app_id = _ready_sign_application(s)
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=s.city.clock.now()))
    calendar = s.city.db.read_sync(city_calendar)
    assert str(calendar.tz) == "America/New_York"
    # Five working days from Monday (not counted) in New York: the next Monday, not Tuesday as in China.
    assert view(s, app_id)["due_on"] == add_working_days(calendar, date(2026, 11, 2), 5) == date(2026, 11, 9)


def test_the_same_first_request_twice_at_once_makes_one_citizen_and_one_draft(services: Services) -> None:
    """An app retrying while its first request still runs: on PostgreSQL both saw nothing and the second
    hit the unique constraint (a 500). Now both get the same citizen and the same draft."""
    import threading

    from wecity.identity.applicants import citizen_for_phone

    s = services
    start = threading.Barrier(2)
    got: list[tuple[int, int]] = []
    failed: list[BaseException] = []

    def first_request() -> None:
        start.wait(10)
        try:
            def run(c: sa.Connection) -> tuple[int, int]:
                who = citizen_for_phone(c, "13955550000", now=s.city.clock.now())
                return who.id, apply.start_application(c, citizen=who, matter_code="T-SIGN", now=s.city.clock.now(),
                                                       idempotency_key="retry-1")
            got.append(s.city.db.write_sync(run))
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failed.append(exc)

    threads = [threading.Thread(target=first_request) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert failed == [] and len(got) == 2 and got[0] == got[1]
