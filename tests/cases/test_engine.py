"""Every case transition, every refusal, the timeline and the audit log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.choices import MERGEABLE, CaseStatus
from wecity.cases.models import cases, reports
from wecity.cases.timeline import case_events
from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.identity.models import audit_log

from ..conftest import City
from .conftest import Staff, case_row, open_case

# Each verb with the actor allowed to do it, so that only the state decides.
VERBS: dict[str, Callable[..., None]] = {
    "acknowledge": lambda c, cid, s, now: engine.acknowledge(c, cid, s.handler, now),
    "return": lambda c, cid, s, now: engine.return_case(c, cid, "not_our_duty", s.handler, now),
    "start": lambda c, cid, s, now: engine.start(c, cid, s.handler, now),
    "resolve": lambda c, cid, s, now: engine.resolve(c, cid, s.handler, now, note="已更换井盖",
                                                     evidence_media_id="evidence"),
    "verify": lambda c, cid, s, now: engine.verify(c, cid, s.dispatcher, now),
    "reject": lambda c, cid, s, now: engine.reject_resolution(c, cid, s.dispatcher, now, note="井盖仍松动"),
    "close": lambda c, cid, s, now: engine.close(c, cid, s.dispatcher, now),
    "reopen": lambda c, cid, s, now: engine.reopen(c, cid, s.dispatcher, now, note="市民反映仍未修好"),
    "dispatch": lambda c, cid, s, now: engine.dispatch(c, cid, 2, s.dispatcher, now),
    "transfer": lambda c, cid, s, now: engine.transfer(c, cid, 3, s.dispatcher, now, note="属住建职责"),
}

# The life cycle's diagram: from each state, the verbs that are allowed.
ALLOWED = {
    CaseStatus.DISPATCHED: {"acknowledge", "return", "transfer"},
    CaseStatus.ACKNOWLEDGED: {"return", "start", "resolve", "transfer"},
    CaseStatus.IN_PROGRESS: {"resolve", "transfer"},
    CaseStatus.RETURNED: {"dispatch"},
    CaseStatus.RESOLVED: {"verify", "reject"},
    CaseStatus.VERIFIED: {"close", "reopen"},
    CaseStatus.CLOSED: {"reopen"},
}

# Where each verb leads.
RESULT = {
    "acknowledge": CaseStatus.ACKNOWLEDGED, "return": CaseStatus.RETURNED, "start": CaseStatus.IN_PROGRESS,
    "resolve": CaseStatus.RESOLVED, "verify": CaseStatus.VERIFIED, "reject": CaseStatus.IN_PROGRESS,
    "close": CaseStatus.CLOSED, "reopen": CaseStatus.DISPATCHED, "dispatch": CaseStatus.DISPATCHED,
    "transfer": CaseStatus.DISPATCHED,
}

# How to reach each state from a freshly dispatched case.
PATHS = {
    CaseStatus.DISPATCHED: [],
    CaseStatus.ACKNOWLEDGED: ["acknowledge"],
    CaseStatus.IN_PROGRESS: ["acknowledge", "start"],
    CaseStatus.RETURNED: ["return"],
    CaseStatus.RESOLVED: ["acknowledge", "resolve"],
    CaseStatus.VERIFIED: ["acknowledge", "resolve", "verify"],
    CaseStatus.CLOSED: ["acknowledge", "resolve", "verify", "close"],
}


def _drive(city: City, staff: Staff, case_id: int, verbs: list[str]) -> None:
    for verb in verbs:
        city.clock.advance(minutes=5)
        city.db.write_sync(VERBS[verb], case_id, staff, city.clock.now())


@pytest.mark.parametrize("state", list(PATHS))
@pytest.mark.parametrize("verb", list(VERBS))
def test_transition_table(city: City, staff: Staff, state: CaseStatus, verb: str) -> None:
    case_id = open_case(city)
    _drive(city, staff, case_id, PATHS[state])
    assert case_row(city, case_id).status == state
    if verb in ALLOWED[state]:
        _drive(city, staff, case_id, [verb])
        assert case_row(city, case_id).status == RESULT[verb]
    else:
        with pytest.raises(InvalidTransition) as refused:
            _drive(city, staff, case_id, [verb])
        assert refused.value.details["status"] == state
        assert "不能" in refused.value.message_zh
        assert case_row(city, case_id).status == state  # nothing half-written


def test_full_life_cycle_timeline_and_audit(city: City, staff: Staff) -> None:
    case_id = open_case(city, email="citizen@example.cn")
    _drive(city, staff, case_id, ["acknowledge", "start", "resolve", "verify", "close"])
    case = case_row(city, case_id)
    assert case.status == CaseStatus.CLOSED and case.closed_at and case.acknowledged_at and case.resolved_at
    events = city.db.read_sync(case_events, case_id)
    assert [e["event"] for e in events] == ["submitted", "dispatched", "report_added", "acknowledged", "started",
                                            "resolved", "verified", "closed"]
    resolved = next(e for e in events if e["event"] == "resolved")
    assert resolved["actor"] == staff.handler.id and resolved["media_id"] == "evidence"
    assert resolved["from_status"] == "acknowledged" or resolved["from_status"] == "in_progress"
    assert resolved["channel"] == "staff_api" and resolved["note"] == "已更换井盖"
    audit = city.db.read_sync(lambda c: c.execute(sa.select(audit_log).order_by(audit_log.c.id)).all())
    assert [a.action for a in audit] == ["case.acknowledged", "case.started", "case.resolved", "case.verified",
                                         "case.closed"]
    for entry in audit:
        assert entry.at and entry.actor.startswith("user:") and entry.target == f"case:{case_id}"
        assert entry.outcome == "ok" and entry.source_address == "10.0.0.7"
    # The citizen was told on dispatch, resolution and closure (e-mail), the department on dispatch.
    outbox = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages)).all())
    emails = [m.payload["subject"] for m in outbox if m.channel == "email"]
    assert len(emails) == 3 and "已派遣" in emails[0] and "办结" in emails[1] and "结案" in emails[2]
    assert any(m.target == "department:2" and m.channel == "in_app" for m in outbox)


def test_rights_are_checked(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.other_handler, now))
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.transfer(c, case_id, 3, staff.handler, now, note="x"))
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.admin, now))  # admin may do anything
    city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="ok", evidence_media_id="p"))
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.verify(c, case_id, staff.handler, now))


def test_resolve_needs_note_and_evidence(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    _drive(city, staff, case_id, ["acknowledge"])
    now = city.clock.now()
    with pytest.raises(ValidationFailed, match="evidence"):
        city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="修好了",
                                                    evidence_media_id=None))
    with pytest.raises(ValidationFailed, match="note"):
        city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note=" ",
                                                    evidence_media_id="p"))


def test_return_and_redispatch_restarts_the_clocks(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    first_due = case_row(city, case_id).ack_due_at
    with pytest.raises(ValidationFailed):
        _drive(city, staff, case_id, ["__bad__"] if False else [])
        city.db.write_sync(lambda c: engine.return_case(c, case_id, "because", staff.handler, city.clock.now()))
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: engine.return_case(c, case_id, "other", staff.handler, city.clock.now()))
    _drive(city, staff, case_id, ["return"])
    assert case_row(city, case_id).status == CaseStatus.RETURNED
    city.clock.advance(hours=1)
    city.db.write_sync(lambda c: engine.dispatch(c, case_id, 3, staff.dispatcher, city.clock.now()))
    case = case_row(city, case_id)
    assert case.status == CaseStatus.DISPATCHED and case.department_id == 3 and case.ack_due_at > first_due
    returned = [e for e in city.db.read_sync(case_events, case_id) if e["event"] == "returned"][0]
    assert returned["reason"] == "not_our_duty" and returned["public"] is False


def test_reopen_only_within_seven_days(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    _drive(city, staff, case_id, PATHS[CaseStatus.CLOSED])
    city.clock.advance(days=8)
    with pytest.raises(InvalidTransition, match="7 days"):
        _drive(city, staff, case_id, ["reopen"])
    other = open_case(city, code="garbage")
    city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id == other).values(department_id=2)))
    _drive(city, staff, other, PATHS[CaseStatus.CLOSED])
    city.clock.advance(days=6)
    _drive(city, staff, other, ["reopen"])
    row = case_row(city, other)
    assert row.status == CaseStatus.DISPATCHED and row.reopen_count == 1 and row.closed_at is None


def test_merge_moves_reports_to_the_surviving_case(city: City, staff: Staff) -> None:
    a = open_case(city)
    b = open_case(city, lat=28.2100)  # far enough to be its own case
    city.db.write_sync(lambda c: engine.merge(c, b, a, staff.dispatcher, city.clock.now()))
    assert case_row(city, b).status == CaseStatus.MERGED and case_row(city, b).merged_into_id == a
    moved = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.case_id)).scalars().all())
    assert set(moved) == {a}
    with pytest.raises(InvalidTransition):
        city.db.write_sync(lambda c: engine.merge(c, b, a, staff.dispatcher, city.clock.now()))
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: engine.merge(c, a, a, staff.dispatcher, city.clock.now()))


def test_a_merge_is_undone_with_the_reports_that_moved_and_the_state_it_was_merged_from(city: City,
                                                                                        staff: Staff) -> None:
    a = open_case(city)
    b = open_case(city, lat=28.2100)
    c = open_case(city, lat=28.2200)
    _drive(city, staff, b, PATHS[CaseStatus.ACKNOWLEDGED])
    now = city.clock.now()
    own = city.db.read_sync(lambda conn: set(conn.execute(sa.select(reports.c.id).where(reports.c.case_id == b))
                                             .scalars()))
    city.db.write_sync(lambda conn: engine.merge(conn, b, a, staff.dispatcher, now))
    city.db.write_sync(lambda conn: engine.merge(conn, a, c, staff.dispatcher, now))  # merged on since
    with pytest.raises(ValidationFailed):  # why is required
        city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.dispatcher, now, ""))
    with pytest.raises(PermissionDenied):  # another department's handler
        city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.other_handler, now, "两处不同的井盖"))
    with pytest.raises(InvalidTransition):  # only a merged case
        city.db.write_sync(lambda conn: engine.unmerge(conn, c, staff.dispatcher, now, "两处不同的井盖"))
    assert city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.dispatcher, now, "两处不同的井盖")) == b
    row = case_row(city, b)
    assert (row.status, row.merged_into_id) == (CaseStatus.ACKNOWLEDGED, None)
    back = city.db.read_sync(lambda conn: set(conn.execute(sa.select(reports.c.id).where(reports.c.case_id == b))
                                              .scalars()))
    assert back == own and case_row(city, a).status == CaseStatus.MERGED  # a's own merge stands
    events = [e["event"] for e in city.db.read_sync(lambda conn: case_events(conn, b, public_only=False))]
    assert events[-2:] == ["merged", "unmerged"]
    assert "case_unmerged_out" in [e["event"] for e in city.db.read_sync(
        lambda conn: case_events(conn, a, public_only=False))]
    with pytest.raises(InvalidTransition):  # once
        city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.dispatcher, now, "两处不同的井盖"))


def test_undoing_merges_in_a_chain_keeps_each_case_s_reports_urges_and_clocks(city: City, staff: Staff) -> None:
    """B into A, then A into C: taking B out, then A, leaves each with its own report (A's merge record lists
    B's too, which came back already); an urge B carried to A goes back with it; and the clocks stood while a
    case was merged, so it is not escalated at once for days its department never held it."""
    from wecity.cases import handling
    from wecity.cases.clocks import check_clocks

    a, b, c = open_case(city), open_case(city, lat=28.2100), open_case(city, lat=28.2200)
    city.clock.advance(days=1)  # a case is urged once it has waited a while
    now = city.clock.now()

    def reports_of(case_id: int) -> set[int]:
        return city.db.read_sync(lambda conn: set(conn.execute(sa.select(reports.c.id).where(
            reports.c.case_id == case_id)).scalars()))

    own = {x: reports_of(x) for x in (a, b, c)}
    city.db.write_sync(lambda conn: check_clocks(conn, now))  # what was due before the merges has fired
    due = case_row(city, b).resolve_due_at
    city.db.write_sync(lambda conn: handling.urge(conn, b, staff.dispatcher, now, "来电催办"))
    city.db.write_sync(lambda conn: engine.merge(conn, b, a, staff.dispatcher, now))
    assert case_row(city, a).urge_count == 1 and case_row(city, a).urged_at is not None
    city.db.write_sync(lambda conn: engine.merge(conn, a, c, staff.dispatcher, now))
    city.clock.advance(days=5)
    later = city.clock.now()
    city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.dispatcher, later, "不是同一处"))
    city.db.write_sync(lambda conn: engine.unmerge(conn, a, staff.dispatcher, later, "不是同一处"))
    assert {x: reports_of(x) for x in (a, b, c)} == own
    back = case_row(city, b)
    assert back.urged_at is not None and back.urge_count == 1  # its urge waits on it again
    assert case_row(city, c).urge_count == 0 and case_row(city, c).urged_at is None
    assert due is not None and back.resolve_due_at == due + timedelta(days=5)  # moved on by the five days
    fired = city.db.write_sync(lambda conn: check_clocks(conn, later))
    assert [e for case_id, e in fired if case_id in (a, b)] == []


def test_a_merge_that_did_not_record_its_reports_is_not_undone_by_guessing(city: City, staff: Staff) -> None:
    from wecity.cases.models import timeline

    a, b = open_case(city), open_case(city, lat=28.2100)
    now = city.clock.now()
    city.db.write_sync(lambda conn: engine.merge(conn, b, a, staff.dispatcher, now))
    city.db.write_sync(lambda conn: conn.execute(timeline.update().where(  # as merges made before they named them
        timeline.c.case_id == b, timeline.c.event == "merged").values(detail={"into_case_id": a})))
    with pytest.raises(InvalidTransition) as refused:
        city.db.write_sync(lambda conn: engine.unmerge(conn, b, staff.dispatcher, now, "两处不同的井盖"))
    assert refused.value.code == "case.unmerge_unrecorded" and case_row(city, b).status == CaseStatus.MERGED


def test_only_cases_still_being_worked_on_are_merged_as_intake_merges(city: City, staff: Staff) -> None:
    working = open_case(city)
    resolved = open_case(city, lat=28.2100)
    verified = open_case(city, lat=28.2200)
    _drive(city, staff, resolved, PATHS[CaseStatus.RESOLVED])
    _drive(city, staff, verified, PATHS[CaseStatus.VERIFIED])
    now = city.clock.now()
    for done in (resolved, verified):
        for case_id, into in ((done, working), (working, done)):
            with pytest.raises(InvalidTransition) as refused:
                city.db.write_sync(lambda c, a=case_id, b=into: engine.merge(c, a, b, staff.dispatcher, now))
            assert refused.value.details["allowed_from"] == [s.value for s in MERGEABLE]
    assert case_row(city, resolved).status == CaseStatus.RESOLVED
    assert case_row(city, verified).status == CaseStatus.VERIFIED
    assert case_row(city, working).status == CaseStatus.DISPATCHED


def _token(city: City, case_id: int) -> str:
    return city.db.read_sync(lambda c: c.execute(sa.select(reports.c.token).where(reports.c.case_id == case_id))
                             .scalars().first())


def test_good_rating_confirms_the_fix(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    token = _token(city, case_id)
    with pytest.raises(InvalidTransition):
        city.db.write_sync(lambda c: engine.rate(c, token, 5, city.clock.now()))
    _drive(city, staff, case_id, ["acknowledge", "resolve"])
    city.db.write_sync(lambda c: engine.rate(c, token, 5, city.clock.now(), tags=["及时"], comment="很快"))
    assert case_row(city, case_id).status == CaseStatus.VERIFIED
    with pytest.raises(InvalidTransition, match="already"):
        city.db.write_sync(lambda c: engine.rate(c, token, 4, city.clock.now()))
    with pytest.raises(NotFound):
        city.db.write_sync(lambda c: engine.rate(c, "nope", 4, city.clock.now()))


def test_low_rating_opens_a_follow_up_for_the_supervisor(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    token = _token(city, case_id)
    _drive(city, staff, case_id, ["acknowledge", "resolve"])
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: engine.rate(c, token, 6, city.clock.now()))
    city.db.write_sync(lambda c: engine.rate(c, token, 1, city.clock.now(), comment="根本没修"))
    row = case_row(city, case_id)
    assert row.followup_open and row.status == CaseStatus.RESOLVED  # a bad rating does not verify
    outbox = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages)).all())
    assert any(m.target == "department:1:supervisor" and m.payload["event"] == "low_rating" for m in outbox)
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.close_followup(c, case_id, staff.handler, city.clock.now(), note="x"))
    city.db.write_sync(lambda c: engine.close_followup(c, case_id, staff.supervisor, city.clock.now(),
                                                       note="已回访，重新安排处置"))
    assert not case_row(city, case_id).followup_open


def test_citizen_reopens_a_closed_case_by_tracking_code(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    _drive(city, staff, case_id, PATHS[CaseStatus.CLOSED])
    city.clock.advance(days=1)
    city.db.write_sync(lambda c: engine.citizen_reopen(c, _token(city, case_id), city.clock.now(), "又坏了"))
    assert case_row(city, case_id).status == CaseStatus.DISPATCHED
    assert city.db.read_sync(case_events, case_id)[-1]["actor"] == "citizen"


def test_concurrent_change_is_refused_not_lost(sqlite_city: City) -> None:
    """The guarded update: moving from a stale state fails instead of overwriting."""
    city = sqlite_city
    case_id = open_case(city)
    stale = case_row(city, case_id)
    city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id == case_id).values(status="acknowledged")))
    with pytest.raises(InvalidTransition):
        city.db.write_sync(lambda c: engine._move(c, stale, CaseStatus.ACKNOWLEDGED, engine.Actor.system(),
                                                  city.clock.now() + timedelta(seconds=1), event="acknowledged"))
