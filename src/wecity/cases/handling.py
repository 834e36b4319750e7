"""How a department organises its work on a case: its priority (优先级) and the person it is assigned to
(指派). Like the life-cycle verbs in `engine`, each checks rights and state, then writes the change, the
timeline event, the audit entry and the notices in the caller's one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import citizen_voice, engine, notifications, replies
from wecity.cases.choices import CaseStatus, Channel, Priority, ReplyUse
from wecity.cases.engine import Actor, _audit, _case, _require_department_handler, _require_state
from wecity.cases.models import cases
from wecity.cases.timeline import add_event
from wecity.core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from wecity.identity.choices import Role
from wecity.identity.models import users
from wecity.identity.service import works_in_dispatch_centre

# While a department holds a case; a resolved case still has its priority and assignee, but no longer changes.
WITH_DEPARTMENT = (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS)
PRIORITY_STATES = (CaseStatus.SUBMITTED, CaseStatus.RETURNED, *WITH_DEPARTMENT)


def _require_department_or_centre(conn: Connection, actor: Actor, case: Any) -> None:
    """A handler of the responsible department, or the dispatch centre (its dispatchers and supervisors)."""
    user = actor.user
    if actor.kind == "system" or actor.has(Role.ADMIN):
        return
    if user is not None and (user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)) \
            and works_in_dispatch_centre(conn, user):
        return
    if user is not None and user.has(Role.SUPERVISOR) and user.department_id == case.department_id:
        return
    _require_department_handler(actor, case)


def set_priority(conn: Connection, case_id: int, priority: str, actor: Actor, now: datetime,
                 note: str | None = None) -> None:
    """优先级: how urgent the case is to treat, beside its SLA clock."""
    try:
        chosen = Priority(priority)
    except ValueError:
        raise ValidationFailed(f"priority must be one of {', '.join(Priority)}", message_zh="优先级无效",
                               code="case.priority") from None
    case = _case(conn, case_id)
    _require_department_or_centre(conn, actor, case)
    _require_state(case, PRIORITY_STATES, "prioritise")
    if chosen == case.priority:
        raise ValidationFailed("the case has that priority already", message_zh="案件已是该优先级",
                               code="case.priority")
    changed = conn.execute(cases.update().where(cases.c.id == case.id, cases.c.priority == case.priority)
                           .values(priority=chosen.value, updated_at=now)).rowcount
    if changed != 1:
        raise InvalidTransition("the case changed meanwhile; reload and try again",
                                message_zh="案件状态已被他人更新，请刷新后重试", code="case.concurrent_change")
    detail = {"from": case.priority, "to": chosen.value}
    add_event(conn, case.id, at=now, event="priority_changed", actor=actor.id, actor_name=actor.name,
              channel=actor.channel, from_status=case.status, to_status=case.status,
              department_id=case.department_id, note=note, public=False, detail=detail)
    _audit(conn, actor, "priority_changed", case.id, now, detail=detail)


def assignable(conn: Connection, department_id: int | None) -> list[dict[str, Any]]:
    """The active handlers of a department: whom its cases may be assigned to."""
    if department_id is None:
        return []
    rows = conn.execute(sa.select(users.c.id, users.c.display_name, users.c.roles).where(
        users.c.department_id == department_id, users.c.is_active.is_(True)).order_by(users.c.display_name))
    return [{"id": r.id, "name": r.display_name} for r in rows if Role.HANDLER.value in (r.roles or "").split()]


def assign(conn: Connection, case_id: int, user_id: int, actor: Actor, now: datetime,
           note: str | None = None) -> None:
    """指派: give the case to one handler of its department; they are told in-app (and the department's
    webhook hears `case.assigned`)."""
    case = _case(conn, case_id)
    _require_department_or_centre(conn, actor, case)
    _require_state(case, WITH_DEPARTMENT, "assign")
    person = next((p for p in assignable(conn, case.department_id) if p["id"] == user_id), None)
    if person is None:
        raise ValidationFailed("assign to a handler of the responsible department",
                               message_zh="只能指派给责任部门的处置人员", code="case.assignee")
    if person["id"] == case.assignee_id:
        raise ValidationFailed("the case is assigned to that person already", message_zh="案件已指派给此人",
                               code="case.assignee")
    changed = conn.execute(cases.update().where(cases.c.id == case.id, cases.c.status == case.status)
                           .values(assignee_id=person["id"], updated_at=now)).rowcount
    if changed != 1:
        raise InvalidTransition("the case changed meanwhile; reload and try again",
                                message_zh="案件状态已被他人更新，请刷新后重试", code="case.concurrent_change")
    detail = {"assignee_id": person["id"], "assignee_name": person["name"], "from_assignee_id": case.assignee_id}
    add_event(conn, case.id, at=now, event="assigned", actor=actor.id, actor_name=actor.name, channel=actor.channel,
              from_status=case.status, to_status=case.status, department_id=case.department_id, note=note,
              public=False, detail=detail)
    _audit(conn, actor, "assigned", case.id, now, detail=detail)
    notifications.case_assigned(conn, case_id=case.id, assignee_id=person["id"], by=actor.name, now=now, note=note)



def resolve(conn: Connection, case_id: int, actor: Actor, now: datetime, *, note: str | None,
            template_id: int | None = None, fields: dict[str, str] | None = None,
            photos: list[str] | None = None) -> None:
    """办结 with the note written, or a standard reply (标准回复) filled in: a reply with a field left empty
    is refused (`reply.unfilled`), as is any resolution note that still holds a placeholder."""
    if template_id is not None:
        note = replies.reply_text(conn, case_id, template_id, fields or {}, use=ReplyUse.RESOLVE, extra=note)
    engine.resolve(conn, case_id, actor, now, note=note or "", evidence_media_ids=photos or [])


def add_note(conn: Connection, case_id: int, actor: Actor, now: datetime, *, note: str | None, public: bool,
             template_id: int | None = None, fields: dict[str, str] | None = None,
             media_id: str | None = None) -> None:
    """备注, written or (for a note shown to the citizen) a standard reply filled in."""
    if template_id is not None:
        if not public:
            raise ValidationFailed("standard replies are for notes shown to the citizen",
                                   message_zh="标准回复仅用于向市民公开的备注", code="reply.not_applicable")
        note = replies.reply_text(conn, case_id, template_id, fields or {}, use=ReplyUse.NOTE, extra=note)
    engine.add_note(conn, case_id, actor, now, note or "", public=public, media_id=media_id)


MAX_CALLER_WORDS = 2000  # as every note of the case page


def urge(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str | None = None) -> int:
    """来电催办: a citizen calls the hotline (12345) to press for their case, and the dispatch centre takes it
    down. The same 催办 as the reporter's own on the portal (once a day per case, the same people told); what
    the caller said stays an internal note, as callers say names and numbers. Returns the urge's event id."""
    user = actor.user
    if not (actor.has(Role.ADMIN) or (user is not None and (user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR))
                                      and works_in_dispatch_centre(conn, user))):
        raise PermissionDenied("a caller's 催办 is taken down by the dispatch centre",
                               message_zh="来电催办由派遣中心登记", code="case.role_required")
    words = (note or "").strip()
    if len(words) > MAX_CALLER_WORDS:
        raise ValidationFailed(f"at most {MAX_CALLER_WORDS} characters", message_zh=f"最多 {MAX_CALLER_WORDS} 个字",
                               code="case.note")
    event_id = citizen_voice.urge_case(conn, case_id, now, by=(actor.id, actor.name), channel=Channel.HOTLINE,
                                       internal_note=f"来电催办 / caller's words: {words}" if words else None)
    _audit(conn, actor, "urge", case_id, now, detail={"channel": Channel.HOTLINE})
    return event_id
