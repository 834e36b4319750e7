"""指派: a case given to one of its department's handlers, who is told in the portal and through the group robots."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.cases import engine, handling
from wecity.cases.models import cases
from wecity.cases.timeline import case_events
from wecity.core.errors import PermissionDenied, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.identity.models import users
from wecity.identity.service import get_user

from ..conftest import City
from .conftest import Staff, open_case


def _actor(city: City, username: str) -> engine.Actor:
    user = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one()))
    assert user is not None
    return engine.Actor.staff(user)


def test_a_supervisor_assigns_a_case_to_a_handler_of_the_department(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    handler = staff.handler.user
    assert handler is not None
    now = city.clock.now()
    city.db.write_sync(lambda c: handling.assign(c, case_id, handler.id, _actor(city, "chengguan-lead"), now, note="今天去"))
    assert city.db.read_sync(lambda c: c.execute(sa.select(cases.c.assignee_id).where(cases.c.id == case_id))
                             .scalar()) == handler.id
    events = city.db.read_sync(lambda c: case_events(c, case_id, public_only=False))
    assert events[-1]["event"] == "assigned" and events[-1]["detail"]["assignee_id"] == handler.id
    told = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.channel, outbox_messages.c.target)
                                                 .where(outbox_messages.c.channel.in_(["in_app", "staff_event"]))
                                                 .order_by(outbox_messages.c.id.desc()).limit(2)).all())
    assert {tuple(t) for t in told} == {("in_app", f"user:{handler.id}"), ("staff_event", f"case:{case_id}")}


def test_assigning_is_refused_to_others_and_to_people_outside_the_department(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    handler, other = staff.handler.user, staff.other_handler.user
    assert handler is not None and other is not None
    now = city.clock.now()
    with pytest.raises(PermissionDenied):  # another department's handler does not hand out this one's work
        city.db.write_sync(lambda c: handling.assign(c, case_id, handler.id, staff.other_handler, now))
    with pytest.raises(ValidationFailed):  # the 住建 handler is not of this case's department
        city.db.write_sync(lambda c: handling.assign(c, case_id, other.id, _actor(city, "chengguan-lead"), now))
    assert city.db.read_sync(lambda c: c.execute(sa.select(cases.c.assignee_id).where(cases.c.id == case_id))
                             .scalar()) is None
