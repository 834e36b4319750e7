"""The department's tools on a case: re-filing (a label the category model learns), priority, assignment (and
its notice), standard replies with fields to fill, several evidence photos, merging by a handler (and the AI
platform's proposals), and the inbox of escalations and low ratings."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.ai.models import ai_duplicates
from wecity.ai.training import training_rows
from wecity.cases import engine, handling, queries, replies
from wecity.cases.models import cases, timeline
from wecity.core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.core.registry import Events
from wecity.identity.models import departments, users
from wecity.identity.service import get_user

from ..conftest import City
from .conftest import Staff, case_row, open_case


def _user_id(city: City, username: str) -> int:
    return int(city.db.read_sync(lambda c: c.execute(sa.select(users.c.id).where(users.c.username == username))
                                 .scalar_one()))


def _events(city: City, case_id: int, event: str) -> list[sa.Row]:
    return city.db.read_sync(lambda c: c.execute(sa.select(timeline).where(
        timeline.c.case_id == case_id, timeline.c.event == event)).all())


# -- 改类 ------------------------------------------------------------------------------------------------

def test_a_handler_refiles_within_its_departments_categories_and_the_model_learns_the_new_label(
        city: City, staff: Staff) -> None:
    case_id = open_case(city)  # manhole: 城管's
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    city.db.write_sync(lambda c: engine.recategorise(c, case_id, "garbage", staff.handler, now, note="是垃圾"))
    assert case_row(city, case_id).category_code == "garbage"
    [event] = _events(city, case_id, "recategorised")
    assert event.detail == {"from": "manhole", "to": "garbage", "by": "department"} and event.public is False
    texts, labels = city.db.read_sync(training_rows)
    assert labels[texts.index("井盖没了，很危险")] == "garbage"
    # Another department's category: back to the dispatch centre with 退单 instead.
    with pytest.raises(PermissionDenied) as refused:
        city.db.write_sync(lambda c: engine.recategorise(c, case_id, "pothole", staff.handler, now))
    assert refused.value.code == "case.category_of_another_department"
    # Another department's handler may not touch it at all; the dispatch centre may file it anywhere.
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.recategorise(c, case_id, "streetlight", staff.other_handler, now))
    city.db.write_sync(lambda c: engine.recategorise(c, case_id, "pothole", staff.dispatcher, now))
    assert _events(city, case_id, "recategorised")[-1].detail["by"] == "dispatch_centre"


def test_a_resolved_case_is_not_refiled_by_its_handler(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="ok", evidence_media_id="p"))
    with pytest.raises(InvalidTransition):
        city.db.write_sync(lambda c: engine.recategorise(c, case_id, "garbage", staff.handler, now))


# -- 优先级 -----------------------------------------------------------------------------------------------

def test_priority_is_set_by_the_department_recorded_and_sorted_on(city: City, staff: Staff) -> None:
    first, second = open_case(city), open_case(city, lat=28.21)
    now = city.clock.now()
    assert case_row(city, first).priority == "normal"
    city.db.write_sync(lambda c: handling.set_priority(c, second, "urgent", staff.handler, now, note="学校门口"))
    [event] = _events(city, second, "priority_changed")
    assert event.detail == {"from": "normal", "to": "urgent"} and event.note == "学校门口"
    by_due = [c["id"] for c in city.db.read_sync(lambda c: queries.queue(c, staff.handler.user, now))]
    by_priority = [c["id"] for c in city.db.read_sync(lambda c: queries.queue(c, staff.handler.user, now,
                                                                             sort="priority"))]
    assert by_due.index(first) < by_due.index(second)  # the older deadline first
    assert by_priority.index(second) < by_priority.index(first)
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: handling.set_priority(c, first, "high", staff.other_handler, now))
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: handling.set_priority(c, first, "whenever", staff.handler, now))
    with pytest.raises(ValidationFailed):  # no change is no event
        city.db.write_sync(lambda c: handling.set_priority(c, second, "urgent", staff.dispatcher, now))


# -- 指派 -------------------------------------------------------------------------------------------------

def test_assigning_tells_the_assignee_in_app_and_the_departments_webhook(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    lead = _user_id(city, "chengguan-lead")
    city.db.write_sync(lambda c: c.execute(departments.update().where(departments.c.code == "chengguan")
                                           .values(webhook_url="https://chengguan.example/hook")))
    city.db.write_sync(lambda c: handling.assign(c, case_id, lead, staff.handler, now, note="请今天去看"))
    assert case_row(city, case_id).assignee_id == lead
    [event] = _events(city, case_id, "assigned")
    assert event.detail["assignee_id"] == lead and event.detail["assignee_name"] == "城管科长 刘洋"
    messages = city.db.read_sync(lambda c: c.execute(sa.select(outbox_messages).where(
        outbox_messages.c.target.in_([f"user:{lead}", "https://chengguan.example/hook"]))).all())
    in_app = [m for m in messages if m.channel == "in_app"]
    hooks = [m for m in messages if m.channel == "webhook"]
    assert len(in_app) == 1 and in_app[0].payload["event"] == "assigned"
    assert in_app[0].payload["case_id"] == case_id and in_app[0].payload["link"] == f"/staff/cases/{case_id}"
    assert [h.payload["event"] for h in hooks] == ["case.assigned"] and hooks[0].payload["assignee_id"] == lead
    # "mine": the assignee's own queue.
    lead_user = city.db.read_sync(lambda c: get_user(c, lead))
    assert lead_user is not None
    mine = city.db.read_sync(lambda c: queries.queue(c, lead_user, now, name="mine"))
    assert [c["id"] for c in mine] == [case_id]
    assert city.db.read_sync(lambda c: queries.queue(c, staff.handler.user, now, name="mine")) == []
    # Acknowledging keeps the assignee the department chose.
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    assert case_row(city, case_id).assignee_id == lead


def test_only_a_handler_of_the_department_is_assigned(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    for username in ("zhujian", "dispatcher"):  # another department's handler; the centre, no handler
        with pytest.raises(ValidationFailed) as refused:
            city.db.write_sync(lambda c, u=username: handling.assign(c, case_id, _user_id(city, u),
                                                                     staff.handler, now))
        assert refused.value.code == "case.assignee"
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: handling.assign(c, case_id, _user_id(city, "chengguan-lead"),
                                                     staff.other_handler, now))


# -- 标准回复 ---------------------------------------------------------------------------------------------

def test_placeholders_are_plain_substitution_and_none_may_be_left_empty() -> None:
    body = "已处理：{{处置措施}}，{{ 完成时间 }}完成。{{处置措施}}"
    assert replies.fields(body) == ["处置措施", "完成时间"]
    with pytest.raises(ValidationFailed) as refused:
        replies.fill(body, {"处置措施": "已更换井盖", "完成时间": "  "})
    assert refused.value.code == "reply.unfilled" and refused.value.details == {"fields": ["完成时间"]}
    # A value that looks like a placeholder or like template code stays text: nothing is evaluated.
    done = replies.fill(body, {"处置措施": "{{完成时间}}", "完成时间": "{% for x in y %}{{ 7*7 }}"})
    assert done == "已处理：{{完成时间}}，{% for x in y %}{{ 7*7 }}完成。{{完成时间}}"
    with pytest.raises(ValidationFailed):
        replies.require_filled("已处理：{{处置措施}}")
    replies.require_filled("已处理：更换井盖")


def test_a_long_run_of_spaces_between_braces_is_no_placeholder_and_is_read_in_one_pass() -> None:
    # 8,000 characters a handler (or a back office's public note) may send: braces around a run of spaces,
    # ideographic ones included. Such a run is no name (a placeholder holds at most 40 characters between
    # its braces); the pattern once matched it, after trying every split of the run (seconds, in the write).
    run = "\u3000 " * 3994
    text = "{{" + run + "}}，{{ 地点 }}"
    assert len(text) >= 8000
    assert replies.fields(text) == ["地点"]
    assert replies.fields("已处理。{{" + run + "。") == []
    replies.require_filled("已处理。{{" + run + "}}")  # nothing to fill: sent as written
    with pytest.raises(ValidationFailed) as refused:
        replies.require_filled(text)
    assert refused.value.details == {"fields": ["地点"]}


def test_resolving_with_a_template_needs_every_field(city: City, staff: Staff) -> None:
    case_id = open_case(city)  # manhole
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    offered = city.db.read_sync(lambda c: replies.templates_for(c, status="acknowledged", category_code="manhole",
                                                                use="resolve", locale="zh_CN"))
    assert [t["name"] for t in offered] == ["井盖处置", "通用办结回复"]  # the category's own first
    template = offered[0]
    with pytest.raises(ValidationFailed) as refused:
        city.db.write_sync(lambda c: handling.resolve(c, case_id, staff.handler, now, note=None,
                                                      template_id=template["id"], fields={"处置方式": "更换"},
                                                      photos=["p"]))
    assert refused.value.details == {"fields": ["完成时间"]}
    assert case_row(city, case_id).status == "acknowledged"
    # Typed by hand with the placeholder still in it: refused as well.
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="井盖已{{处置方式}}",
                                                    evidence_media_id="p"))
    # A pothole template does not fit a manhole case.
    pothole = city.db.read_sync(lambda c: replies.templates_for(c, status="acknowledged", category_code="pothole",
                                                                use="resolve", locale="zh_CN"))[0]
    with pytest.raises(ValidationFailed) as unfit:
        city.db.write_sync(lambda c: handling.resolve(c, case_id, staff.handler, now, note=None,
                                                      template_id=pothole["id"], fields={}, photos=["p"]))
    assert unfit.value.code == "reply.not_applicable"
    city.db.write_sync(lambda c: handling.resolve(c, case_id, staff.handler, now, note="另已清理周边",
                                                  template_id=template["id"],
                                                  fields={"处置方式": "更换", "完成时间": "今天 15:00"},
                                                  photos=["p1", "p2", "p3"]))
    row = case_row(city, case_id)
    assert row.status == "resolved" and row.status_notes == "井盖已更换，现场警示已撤除，于 今天 15:00 完成。\n\n另已清理周边"
    assert row.evidence_media_ids == ["p1", "p2", "p3"] and row.evidence_media_id == "p1"
    view = city.db.read_sync(lambda c: queries.public_view(c, case_id))
    assert view["evidence_media_ids"] == ["p1", "p2", "p3"]


def test_at_most_six_evidence_photos(city: City, staff: Staff) -> None:
    case_id = open_case(city)
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: engine.resolve(c, case_id, staff.handler, now, note="ok",
                                                    evidence_media_ids=[f"p{i}" for i in range(7)]))


def test_administrators_keep_templates_and_bad_placeholders_are_refused(city: City, staff: Staff) -> None:
    now = city.clock.now()
    values = {"name": "路灯修复", "locale": "zh_CN", "use": "resolve", "category_code": "streetlight",
              "body": "路灯已修复：{{更换部件}}。"}
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: replies.create_template(c, staff.handler.user, values, now=now))
    template_id = city.db.write_sync(lambda c: replies.create_template(c, staff.admin.user, values, now=now))
    assert city.db.read_sync(lambda c: replies.get_template(c, template_id))["fields"] == ["更换部件"]
    for body in ("未闭合 {{更换部件", "嵌套 {{a{{b}}}}", "{{}}"):
        with pytest.raises(ValidationFailed):
            city.db.write_sync(lambda c, b=body: replies.update_template(c, staff.admin.user, template_id,
                                                                          {**values, "body": b}, now=now))
    city.db.write_sync(lambda c: replies.delete_template(c, staff.admin.user, template_id, now=now))
    assert template_id not in [t["id"] for t in city.db.read_sync(replies.list_templates)]


# -- 并单 -------------------------------------------------------------------------------------------------

def test_a_handler_merges_two_of_its_departments_cases_and_the_proposal_is_settled(city: City, staff: Staff) -> None:
    older, newer = open_case(city), open_case(city, lat=28.2100)
    elsewhere = open_case(city, code="pothole", lat=28.2200)  # 住建's
    now = city.clock.now()
    city.db.write_sync(lambda c: c.execute(ai_duplicates.insert().values(
        case_id=newer, candidate_id=older, score=0.6, text_similarity=0.9, photo_similarity=None, distance_m=120.0,
        same_category=True, state="proposed", found_at=now)))
    events = Events()
    heard: list[dict[str, object]] = []
    events.subscribe("cases.merged", lambda conn, **payload: heard.append(payload))
    from wecity.ai.duplicates import on_case_merged
    events.subscribe("cases.merged", on_case_merged)
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.merge(c, elsewhere, older, staff.handler, now, events=events))
    assert heard == []
    kept = city.db.write_sync(lambda c: engine.merge(c, newer, older, staff.handler, now, events=events))
    assert kept == older and case_row(city, newer).status == "merged"
    assert heard == [{"case_id": newer, "into_case_id": older, "actor": staff.handler.id, "now": now}]
    proposal = city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates)).one())
    assert proposal.state == "merged" and proposal.decided_by == staff.handler.id


# -- 待办提醒 ---------------------------------------------------------------------------------------------

def test_the_inbox_holds_escalated_cases_and_open_follow_ups_of_the_department(city: City, staff: Staff) -> None:
    escalated, followup, quiet = open_case(city), open_case(city, lat=28.21), open_case(city, lat=28.22)
    theirs = open_case(city, code="pothole", lat=28.23)
    city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id.in_([escalated, theirs]))
                                           .values(ack_escalated=True)))
    city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id == followup).values(followup_open=True)))
    now = city.clock.now()
    mine = city.db.read_sync(lambda c: queries.inbox(c, staff.handler.user, now))
    assert [c["id"] for c in mine["escalated"]] == [escalated]
    assert [c["id"] for c in mine["followups"]] == [followup]
    assert quiet not in [c["id"] for part in mine.values() for c in part]
    assert city.db.read_sync(lambda c: queries.inbox_counts(c, staff.handler.user)) == {"escalated": 1, "urged": 0,
                                                                                        "followups": 1}
    every = city.db.read_sync(lambda c: queries.inbox(c, staff.supervisor.user, now))
    assert {c["id"] for c in every["escalated"]} == {escalated, theirs}
    # Acknowledged: the acknowledge clock's escalation is answered.
    city.db.write_sync(lambda c: engine.acknowledge(c, escalated, staff.handler, now))
    assert city.db.read_sync(lambda c: queries.inbox_counts(c, staff.handler.user))["escalated"] == 0
