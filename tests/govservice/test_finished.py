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
        assert refused.value.status == 409
        with pytest.raises(InvalidTransition):
            write(s, lambda c, staff=staff: approvals.request_supplement(c, app_id, staff=staff, note="缺图纸",
                                                                         materials=["design"], now=now()))
    with pytest.raises(InvalidTransition):
        write(s, lambda c: approvals.decide(c, app_id, staff=s.lead, outcome="approve", reason=None, legal_basis=None,
                                            now=now(), key_dir=s.city.settings.var_dir))
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
