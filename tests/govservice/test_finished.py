"""A finished application stays finished: what its departments still had waiting when the applicant
withdrew it cannot bring it back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.core.errors import InvalidTransition
from wecity.govservice import applications as apply
from wecity.govservice import approvals
from wecity.govservice.models import application_reviews, applications

from .conftest import Services
from .test_flow import _ready_sign_application, view, write


def test_a_review_or_a_supplement_request_after_withdrawal_is_refused_and_changes_nothing(services: Services) -> None:
    s = services
    now = s.city.clock.now
    app_id = _ready_sign_application(s)
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=now()))
    assert view(s, app_id)["status"] == "in_review"
    write(s, lambda c: apply.withdraw(c, app_id, citizen=s.citizen, now=now()))

    def state() -> tuple[object, ...]:
        return s.city.db.read_sync(lambda c: (
            c.execute(sa.select(applications.c.status, applications.c.finished_at, applications.c.workflow,
                                applications.c.materials).where(applications.c.id == app_id)).one(),
            c.execute(sa.select(application_reviews.c.outcome).where(
                application_reviews.c.application_id == app_id).order_by(application_reviews.c.id)).all()))

    before = state()
    for staff in (s.transport, s.police):
        with pytest.raises(InvalidTransition) as refused:
            write(s, lambda c, staff=staff: approvals.review(c, app_id, staff=staff, outcome="approve", note=None,
                                                             now=now()))
        assert refused.value.status == 409 and refused.value.code == "govservice.finished"
        with pytest.raises(InvalidTransition) as asked:
            write(s, lambda c, staff=staff: approvals.request_supplement(c, app_id, staff=staff, note="缺图纸",
                                                                         materials=["design"], now=now()))
        assert asked.value.code == "govservice.finished"
    with pytest.raises(InvalidTransition) as decided:
        write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="approve", reason=None, legal_basis=None,
                                            now=now(), key_dir=s.city.settings.var_dir))
    assert decided.value.code == "govservice.finished"  # as for a review or a 补正 request
    assert state() == before
    v = view(s, app_id)
    assert v["status"] == "withdrawn" and v["certificates"] == []


def test_a_withdrawn_application_is_not_rated_and_opens_no_rectification(services: Services) -> None:
    from wecity.govservice import ratings
    from wecity.govservice.models import application_ratings, rectifications

    s = services
    now = s.city.clock.now
    app_id = _ready_sign_application(s)
    write(s, lambda c: apply.withdraw(c, app_id, citizen=s.citizen, now=now()))
    with pytest.raises(InvalidTransition) as refused:
        write(s, lambda c: ratings.rate(c, app_id, citizen=s.citizen, level=1, tags=["slow"], now=now()))
    assert refused.value.code == "govservice.withdrawn"
    assert s.city.db.read_sync(lambda c: (
        c.execute(sa.select(sa.func.count()).select_from(application_ratings)).scalar(),
        c.execute(sa.select(sa.func.count()).select_from(rectifications)).scalar())) == (0, 0)


def test_after_an_extension_the_clock_warns_and_escalates_again(services: Services) -> None:
    from wecity.govservice.tasks import check_clocks

    s = services
    clock = s.city.clock
    app_id = _ready_sign_application(s)
    write(s, lambda c: approvals.accept(c, app_id, staff=s.accepting, now=clock.now()))
    clock.advance(days=14)  # well past the 5 promised working days
    assert write(s, lambda c: check_clocks(c, clock.now())) == 1
    assert "escalated" in [e["kind"] for e in view(s, app_id)["events"]]
    write(s, lambda c: approvals.extend(c, app_id, staff=s.lead, days=20, reason="需征求相关部门意见", now=clock.now()))
    assert not view(s, app_id)["clock"]["overdue"]
    assert write(s, lambda c: check_clocks(c, clock.now())) == 0  # 10 of 25 working days: nothing to say
    clock.advance(days=21)  # 25 of 25: past 80%
    assert write(s, lambda c: check_clocks(c, clock.now())) == 1
    clock.advance(days=7)  # past the new due date
    assert write(s, lambda c: check_clocks(c, clock.now())) == 1
    kinds = [e["kind"] for e in view(s, app_id)["events"]]
    assert kinds.count("escalated") == 2 and kinds.count("warned") == 1


def test_an_idempotency_key_sent_again_for_another_matter_or_applicant_is_a_conflict(services: Services) -> None:
    from wecity.core.errors import Conflict

    s = services
    now = s.city.clock.now
    first = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN", now=now(),
                                                        idempotency_key="k"))
    assert write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN", now=now(),
                                                      idempotency_key="k")) == first
    for matter, acting in (("T-BIZ", None), ("T-SIGN", s.firm.id)):
        with pytest.raises(Conflict) as refused:
            write(s, lambda c, m=matter, a=acting: apply.start_application(
                c, citizen=s.citizen, matter_code=m, acting_for=a, now=now(), idempotency_key="k"))
        assert refused.value.code == "govservice.idempotency_key_reused" and refused.value.status == 409
    assert s.city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(applications)).scalar()) == 1
