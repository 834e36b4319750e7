"""The case life cycle as 12345 / 数字城管 systems run it, one verb per action.

    submitted -> dispatched -> acknowledged (签收) -> in_progress -> resolved -> verified (核查) -> closed
                    |  ^            |                                  |                           |
                    v  |            v                                  v (not fixed)               v
                 returned (退单) <--+                              in_progress            reopened within 7 days
                 (re-dispatched by the dispatch centre)                                  -> dispatched

Every verb checks the actor's right and the case's state, then writes the change, the timeline event,
the audit entry and the outbox messages in the caller's one transaction. Illegal moves raise
InvalidTransition; missing rights raise PermissionDenied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import notifications, sla
from wecity.cases.categories import get_category
from wecity.cases.choices import MERGEABLE, CaseStatus, Channel, ReturnReason
from wecity.cases.models import cases, ratings, reports, timeline
from wecity.cases.replies import require_filled
from wecity.cases.timeline import add_event
from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.core.registry import Events
from wecity.identity.choices import Role
from wecity.identity.models import departments
from wecity.identity.service import StaffUser, record_audit, works_in_dispatch_centre

REOPEN_WINDOW = timedelta(days=7)
MAX_EVIDENCE_PHOTOS = 6
LOW_RATING = 2  # ratings at or below open a follow-up for the supervisor


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a staff user, a citizen (by report token), a back-office system or the platform."""

    kind: str                      # staff, citizen, system
    id: str
    name: str
    user: StaffUser | None = None
    channel: str = Channel.STAFF_API
    source_address: str | None = None

    @classmethod
    def staff(cls, user: StaffUser, *, channel: str = Channel.STAFF_API, source_address: str | None = None) -> Actor:
        return cls("staff", f"user:{user.id}", user.display_name, user, channel, source_address)

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", "system", name, None, Channel.SYSTEM)

    def has(self, role: Role) -> bool:
        return self.kind == "system" or (self.user is not None and self.user.has(role))


def _case(conn: Connection, case_id: int, *, lock: bool = True) -> Any:
    query = sa.select(cases).where(cases.c.id == case_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    return row


def _require_state(case: Any, allowed: tuple[CaseStatus, ...], action: str) -> None:
    if case.status not in allowed:
        status = CaseStatus(case.status)
        raise InvalidTransition(
            f"cannot {action} a case that is {status.label_en.lower()}",
            message_zh=f"案件当前状态为「{status.label_zh}」，不能{_ACTION_ZH.get(action, action)}",
            details={"status": case.status, "action": action, "allowed_from": [s.value for s in allowed]})


_ACTION_ZH = {"acknowledge": "签收", "return": "退单", "dispatch": "派遣", "start": "开始处置", "resolve": "办结",
              "verify": "核查", "reject": "核查不通过", "close": "结案", "reopen": "重新打开", "transfer": "转办",
              "merge": "并单", "unmerge": "撤销并单", "rate": "评价", "note": "备注", "recategorise": "改类",
              "prioritise": "设置优先级", "assign": "指派", "follow up": "回访"}


def _require_department_handler(actor: Actor, case: Any) -> None:
    if actor.kind == "system" or actor.has(Role.ADMIN):
        return
    user = actor.user
    if user is None or not user.has(Role.HANDLER) or user.department_id != case.department_id:
        raise PermissionDenied("only a handler of the responsible department may do this",
                               message_zh="只有责任部门的处置人员可以执行此操作", code="case.not_your_department")


def _require_role(actor: Actor, *roles: Role) -> None:
    if actor.kind == "system" or any(actor.has(r) for r in roles):
        return
    raise PermissionDenied(f"needs the role {' or '.join(roles)}",
                           message_zh=f"需要角色：{'或'.join(r.label_zh for r in roles)}", code="case.role_required")


# Moves that hand a case to another holder (or back to its department) without doing any of its work.
_HANDS_ON = frozenset({"dispatched", "returned", "transferred", "verification_failed", "unmerged"})
# Moves after which the reporter hears no "your 催办 has an answer": a resolution is told to them anyway
# (case_resolved, even a second one in a round), and a merge carries the urge, unanswered, to the surviving
# case. (A case is never urged while it waits for its closure.)
_NO_ANSWER_NOTICE = frozenset({"resolved", "merged"})


def _move(conn: Connection, case: Any, to: CaseStatus, actor: Actor, now: datetime, *, event: str,
          note: str | None = None, reason: str | None = None, media_id: str | None = None,
          public: bool = True, values: dict[str, Any] | None = None, detail: dict[str, Any] | None = None) -> None:
    # Optimistic guard: the update only applies if nobody moved the case since we read it. A step of the work
    # answers a citizen's 催办 (urged_at), which leaves the inbox; a move that only hands the case on keeps
    # it, so the next holder sees it.
    answered = {} if event in _HANDS_ON else {"urged_at": None}
    changed = conn.execute(cases.update().where(cases.c.id == case.id, cases.c.status == case.status).values(
        status=to, updated_at=now, **answered, **({"status_notes": note} if note and public else {}),
        **(values or {}))).rowcount
    if changed != 1:
        raise InvalidTransition("the case changed meanwhile; reload and try again",
                                message_zh="案件状态已被他人更新，请刷新后重试", code="case.concurrent_change")
    department_id = (values or {}).get("department_id", case.department_id)
    add_event(conn, case.id, at=now, event=event, actor=actor.id, actor_name=actor.name, channel=actor.channel,
              from_status=case.status, to_status=to, department_id=department_id, note=note, reason=reason,
              public=public, media_id=media_id, detail=detail)
    _audit(conn, actor, event, case.id, now, detail={"from": case.status, "to": str(to), "reason": reason})
    conn.execute(reports.update().where(reports.c.case_id == case.id).values(updated_at=now))
    if answered and case.urged_at is not None and event not in _NO_ANSWER_NOTICE:
        notifications.urge_answered(conn, case_id=case.id, urged_at=case.urged_at, now=now)


def _audit(conn: Connection, actor: Actor, action: str, case_id: int, now: datetime,
           detail: dict[str, Any] | None = None, outcome: str = "ok") -> None:
    if actor.kind == "staff":
        record_audit(conn, at=now, actor=actor.id, action=f"case.{action}", target=f"case:{case_id}",
                     outcome=outcome, source_address=actor.source_address, detail=detail)


def _require_own_department_or_centre(conn: Connection, actor: Actor, case: Any, action: str) -> None:
    """Across departments only the dispatch centre (and administrators) act: a supervisor of one department
    cannot take, verify, close, reopen, merge or answer another's case (separation of duties)."""
    user = actor.user
    if actor.kind != "staff" or user is None or user.department_id == case.department_id or actor.has(Role.ADMIN):
        return
    if not works_in_dispatch_centre(conn, user):
        raise PermissionDenied(f"only the dispatch centre may {action} another department's case",
                               message_zh=f"只有派遣中心可以{_ACTION_ZH.get(action, action)}其他部门的案件",
                               code="case.not_your_department")


def _require_not_the_resolver(conn: Connection, actor: Actor, case: Any, action: str) -> None:
    """Whoever resolved a case cannot also verify or close it (separation of duties)."""
    resolver = conn.execute(sa.select(timeline.c.actor).where(
        timeline.c.case_id == case.id, timeline.c.event == "resolved").order_by(timeline.c.id.desc()).limit(1)).scalar()
    if actor.kind == "staff" and resolver == actor.id:
        raise PermissionDenied(f"whoever resolved a case cannot {action} it",
                               message_zh=f"办结人不能{_ACTION_ZH.get(action, action)}自己办结的案件",
                               code="case.separation_of_duties")


def _department_exists(conn: Connection, department_id: int) -> None:
    if conn.execute(sa.select(departments.c.id).where(departments.c.id == department_id)).first() is None:
        raise ValidationFailed(f"no department {department_id}", message_zh=f"没有部门 {department_id}",
                               code="case.department")


def _restart_clocks(conn: Connection, case: Any, now: datetime) -> dict[str, Any]:
    clocks = sla.clocks(conn, get_category(conn, case.category_code), now)
    return {"dispatched_at": now, "acknowledged_at": None, **clocks.values(), "ack_warned": False, "ack_escalated": False, "resolve_warned": False, "resolve_escalated": False}


# -- the verbs ---------------------------------------------------------------------------------------------

def dispatch(conn: Connection, case_id: int, department_id: int, actor: Actor, now: datetime,
             note: str | None = None) -> None:
    """派遣 / re-dispatch by the dispatch centre: a submitted or returned case goes to a department."""
    _require_role(actor, Role.DISPATCHER)
    case = _case(conn, case_id)
    _require_state(case, (CaseStatus.SUBMITTED, CaseStatus.RETURNED), "dispatch")
    _department_exists(conn, department_id)
    _move(conn, case, CaseStatus.DISPATCHED, actor, now, event="dispatched", note=note, public=False,
          values={"department_id": department_id, "assignee_id": None, **_restart_clocks(conn, case, now)})
    notifications.case_dispatched(conn, case_id=case_id, now=now)


def acknowledge(conn: Connection, case_id: int, actor: Actor, now: datetime) -> None:
    """签收: the responsible department takes the case; stops the acknowledge clock."""
    case = _case(conn, case_id)
    _require_department_handler(actor, case)
    _require_state(case, (CaseStatus.DISPATCHED,), "acknowledge")
    _move(conn, case, CaseStatus.ACKNOWLEDGED, actor, now, event="acknowledged",
          values={"acknowledged_at": now,
                  "assignee_id": case.assignee_id or (actor.user.id if actor.user else None)})


def return_case(conn: Connection, case_id: int, reason: str, actor: Actor, now: datetime,
                note: str | None = None) -> None:
    """退单: the department sends the case back to the dispatch centre, with a reason."""
    case = _case(conn, case_id)
    _require_department_handler(actor, case)
    _require_state(case, (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED), "return")
    try:
        reason = ReturnReason(reason)
    except ValueError:
        raise ValidationFailed(f"reason must be one of {', '.join(ReturnReason)}", code="case.return_reason",
                               message_zh="退单原因无效") from None
    if reason == ReturnReason.OTHER and not (note or "").strip():
        raise ValidationFailed("say why when the reason is 'other'", message_zh="原因为「其他」时须说明",
                               code="case.return_reason")
    _move(conn, case, CaseStatus.RETURNED, actor, now, event="returned", note=note, reason=reason, public=False)
    notifications.case_returned(conn, case_id=case_id, now=now)


def start(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str | None = None) -> None:
    """开始处置: work on site has started."""
    case = _case(conn, case_id)
    _require_department_handler(actor, case)
    _require_state(case, (CaseStatus.ACKNOWLEDGED,), "start")
    _move(conn, case, CaseStatus.IN_PROGRESS, actor, now, event="started", note=note)


def _require_may(conn: Connection, actor: Actor, case: Any, action: str) -> None:
    """Who may resolve a case, write a note on it (the verbs that take photos) or decide whether it is a
    duplicate (merge, unmerge): a handler of its department; a note or a merge also its department's
    dispatchers and supervisors, or the dispatch centre's."""
    if action in ("note", "merge", "unmerge") and (actor.has(Role.DISPATCHER) or actor.has(Role.SUPERVISOR)):
        _require_own_department_or_centre(conn, actor, case, action)
    else:
        _require_department_handler(actor, case)


def check_may(conn: Connection, case_id: int, actor: Actor, action: str) -> None:
    """PermissionDenied (NotFound without the case) unless `actor` may `action` ("resolve", "note", "merge") the case,
    as the verb itself judges it: asked before a form's photos are read, so that they are read and decoded
    only for whoever may act. The verb judges again, with the case's state, in its write."""
    _require_may(conn, actor, _case(conn, case_id, lock=False), action)


def resolve(conn: Connection, case_id: int, actor: Actor, now: datetime, *, note: str,
            evidence_media_id: str | None = None, evidence_media_ids: list[str] | None = None) -> None:
    """办结: the department says it is fixed, with a note and one or more evidence photos."""
    case = _case(conn, case_id)
    _require_may(conn, actor, case, "resolve")
    _require_state(case, (CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS), "resolve")
    if not (note or "").strip():
        raise ValidationFailed("a resolution note is required", message_zh="办结须填写处置说明", code="case.note")
    require_filled(note)
    photos = list(dict.fromkeys(evidence_media_ids or ([evidence_media_id] if evidence_media_id else [])))
    if not photos:
        raise ValidationFailed("an evidence photo is required", message_zh="办结须上传处置后照片",
                               code="case.evidence")
    if len(photos) > MAX_EVIDENCE_PHOTOS:
        raise ValidationFailed(f"at most {MAX_EVIDENCE_PHOTOS} evidence photos",
                               message_zh=f"处置照片最多 {MAX_EVIDENCE_PHOTOS} 张", code="case.evidence")
    _move(conn, case, CaseStatus.RESOLVED, actor, now, event="resolved", note=note, media_id=photos[0],
          values={"resolved_at": now, "evidence_media_id": photos[0], "evidence_media_ids": photos},
          detail={"media_ids": photos} if len(photos) > 1 else None)
    notifications.case_resolved(conn, case_id=case_id, now=now, urged_at=case.urged_at)


def verify(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str | None = None) -> None:
    """核查通过: the dispatch centre (or the citizen, by rating) confirms the fix."""
    if actor.kind != "citizen":
        _require_role(actor, Role.DISPATCHER, Role.SUPERVISOR)
    case = _case(conn, case_id)
    _require_own_department_or_centre(conn, actor, case, "verify")
    _require_state(case, (CaseStatus.RESOLVED,), "verify")
    _require_not_the_resolver(conn, actor, case, "verify")
    _move(conn, case, CaseStatus.VERIFIED, actor, now, event="verified", note=note)


def reject_resolution(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str) -> None:
    """核查不通过: not fixed after all; back to the department, resolve clock still running."""
    _require_role(actor, Role.DISPATCHER, Role.SUPERVISOR)
    case = _case(conn, case_id)
    _require_own_department_or_centre(conn, actor, case, "reject")
    _require_state(case, (CaseStatus.RESOLVED,), "reject")
    if not (note or "").strip():
        raise ValidationFailed("say what is still wrong", message_zh="请说明核查不通过的原因", code="case.note")
    _move(conn, case, CaseStatus.IN_PROGRESS, actor, now, event="verification_failed", note=note,
          values={"resolved_at": None})
    notifications.tell_department(conn, case_id=case_id, event="verification_failed", now=now, note=note)


def close(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str | None = None) -> None:
    """结案."""
    _require_role(actor, Role.DISPATCHER, Role.SUPERVISOR)
    case = _case(conn, case_id)
    _require_own_department_or_centre(conn, actor, case, "close")
    _require_state(case, (CaseStatus.VERIFIED,), "close")
    _require_not_the_resolver(conn, actor, case, "close")
    _move(conn, case, CaseStatus.CLOSED, actor, now, event="closed", note=note, values={"closed_at": now})
    notifications.case_closed(conn, case_id=case_id, now=now)


def reopen(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str) -> None:
    """重新打开 (重办): within 7 days of closing, when the citizen is not satisfied; back to its department.
    The reporter may also say "still not fixed" to a case the department has only marked resolved."""
    case = _case(conn, case_id)
    if actor.kind == "staff":
        _require_role(actor, Role.DISPATCHER, Role.SUPERVISOR)
        _require_own_department_or_centre(conn, actor, case, "reopen")
        _require_state(case, (CaseStatus.CLOSED, CaseStatus.VERIFIED), "reopen")
    else:
        _require_state(case, (CaseStatus.CLOSED, CaseStatus.VERIFIED, CaseStatus.RESOLVED), "reopen")
    since = case.closed_at or case.resolved_at or case.updated_at
    if now - since > REOPEN_WINDOW:
        raise InvalidTransition("a case can be reopened only within 7 days of closing",
                                message_zh="结案 7 天后不能重新打开", code="case.reopen_window")
    _move(conn, case, CaseStatus.DISPATCHED, actor, now, event="reopened", note=note,
          values={"closed_at": None, "resolved_at": None, "reopen_count": case.reopen_count + 1,
                  **_restart_clocks(conn, case, now)})
    notifications.case_dispatched(conn, case_id=case_id, now=now)


def transfer(conn: Connection, case_id: int, department_id: int, actor: Actor, now: datetime, note: str) -> None:
    """转办: move an open case to another department; its clocks restart there."""
    _require_role(actor, Role.DISPATCHER, Role.SUPERVISOR)
    case = _case(conn, case_id)
    _require_state(case, (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS), "transfer")
    _require_own_department_or_centre(conn, actor, case, "transfer")
    _department_exists(conn, department_id)
    if department_id == case.department_id:
        raise ValidationFailed("the case is already with that department", message_zh="案件已在该部门",
                               code="case.department")
    _move(conn, case, CaseStatus.DISPATCHED, actor, now, event="transferred", note=note, public=False,
          values={"department_id": department_id, "assignee_id": None, **_restart_clocks(conn, case, now)},
          detail={"from_department_id": case.department_id})
    notifications.case_dispatched(conn, case_id=case_id, now=now)


def recategorise(conn: Connection, case_id: int, category_code: str, actor: Actor, now: datetime,
                 note: str | None = None) -> None:
    """改类: file a case under the right category. The dispatch centre re-files any open case it or a
    department holds (a handler returned it as the wrong one, or it was misfiled at intake); a handler of
    the responsible department re-files a case it holds within the categories that department handles (for
    another department's category, the case goes back to the dispatch centre with 退单). The corrected
    category is what the category model learns from (wecity.ai.training reads each case under its category
    now; the `recategorised` events say which were corrected); the case keeps its status and department."""
    case = _case(conn, case_id)
    by_centre = actor.has(Role.DISPATCHER)
    if not by_centre:
        _require_department_handler(actor, case)
    _require_state(case, (CaseStatus.SUBMITTED, CaseStatus.RETURNED, CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED,
                          CaseStatus.IN_PROGRESS) if by_centre else
                   (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS), "recategorise")
    try:
        category = get_category(conn, category_code)
    except NotFound:
        raise ValidationFailed(f"no category {category_code!r}", message_zh=f"没有类别 {category_code}",
                               code="case.category") from None
    if not category.active or category.code == case.category_code:
        raise ValidationFailed("choose another active category", message_zh="请选择另一个有效类别", code="case.category")
    if not by_centre and actor.kind == "staff" and category.department_id != case.department_id:
        raise PermissionDenied("that category is another department's: return the case to the dispatch centre",
                               message_zh="该类别属于其他部门，请退单至派遣中心", code="case.category_of_another_department")
    changed = conn.execute(cases.update().where(cases.c.id == case.id, cases.c.status == case.status,
                                                cases.c.category_code == case.category_code)
                           .values(category_code=category.code, updated_at=now)).rowcount
    if changed != 1:
        raise InvalidTransition("the case changed meanwhile; reload and try again",
                                message_zh="案件状态已被他人更新，请刷新后重试", code="case.concurrent_change")
    detail = {"from": case.category_code, "to": category.code, "by": "dispatch_centre" if by_centre else "department"}
    add_event(conn, case.id, at=now, event="recategorised", actor=actor.id, actor_name=actor.name, channel=actor.channel,
              from_status=case.status, to_status=case.status, department_id=case.department_id, note=note,
              public=False, detail=detail)
    _audit(conn, actor, "recategorised", case.id, now, detail=detail)


def merge(conn: Connection, case_id: int, into_case_id: int, actor: Actor, now: datetime, *,
          events: Events | None = None) -> int:
    """并单: fold a duplicate case into another; its reports follow and show the surviving case's status.
    The dispatch centre merges any two cases still being worked on (MERGEABLE: not yet resolved); a
    supervisor or a handler, two of its department's.
    Emits "cases.merged" on `events` (the AI platform marks its duplicate proposals for the pair merged).
    Returns the surviving case."""
    if case_id == into_case_id:
        raise ValidationFailed("a case cannot be merged into itself", message_zh="不能与自身并单", code="case.merge")
    case = _case(conn, case_id)
    target = _case(conn, into_case_id)
    for one in (case, target):
        _require_may(conn, actor, one, "merge")
    # Only cases still being worked on, as intake merges: a resolved or verified case folded in would leave
    # its reporters' rating and the 核查 of its fix hanging, and one folded into would take reports that
    # nobody works on.
    _require_state(case, MERGEABLE, "merge")
    _require_state(target, MERGEABLE, "merge")
    # The reports that move are named in the event, so that the merge can be undone (`unmerge`).
    moved = [int(r) for r in conn.execute(sa.select(reports.c.id).where(reports.c.case_id == case.id)
                                          .order_by(reports.c.id)).scalars()]
    # So are the urges it carries to the surviving case, for the same reason.
    urges = {"urged_at": case.urged_at.isoformat() if case.urged_at else None, "urge_count": case.urge_count,
             "into_urged_at": target.urged_at.isoformat() if target.urged_at else None}
    _move(conn, case, CaseStatus.MERGED, actor, now, event="merged", values={"merged_into_id": target.id},
          detail={"into_case_id": target.id, "report_ids": moved, **urges})
    conn.execute(reports.update().where(reports.c.case_id == case.id).values(case_id=target.id, updated_at=now))
    add_event(conn, target.id, at=now, event="case_merged_in", actor=actor.id, actor_name=actor.name,
              channel=actor.channel, detail={"from_case_id": case.id})
    # The duplicate's unanswered 催办 now waits on the surviving case, and its urges count there.
    urged = [t for t in (case.urged_at, target.urged_at) if t is not None]
    conn.execute(cases.update().where(cases.c.id == target.id).values(
        updated_at=now, urged_at=min(urged) if urged else None,
        urge_count=cases.c.urge_count + case.urge_count))
    if events is not None:
        events.emit("cases.merged", conn, case_id=case.id, into_case_id=target.id, actor=actor.id, now=now)
    return int(target.id)


def unmerge(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str, *,
            events: Events | None = None) -> int:
    """Undo a 并单 (by staff or by the platform's duplicate finder): the merged case comes back in the state it
    was merged from, with the reports that were its own then (wherever they are now: the surviving case may
    have been merged on since), and both timelines say so. Who may merge the two cases may undo it; why is
    required. Reports that joined the surviving case after the merge stay there. Emits "cases.unmerged" (the
    AI platform stops proposing the pair). Returns the case brought back."""
    note = note.strip()
    if not note:
        raise ValidationFailed("say why the merge was wrong", message_zh="请说明并单错误的原因", code="case.note")
    case = _case(conn, case_id)
    if case.status != CaseStatus.MERGED or case.merged_into_id is None:
        raise InvalidTransition("only a merged case can be taken out of its merge",
                                message_zh="只有已并单的案件才能撤销并单", code="case.not_merged")
    target = _case(conn, case.merged_into_id)
    for one in (case, target):
        _require_may(conn, actor, one, "unmerge")
    merged = conn.execute(sa.select(timeline.c.from_status, timeline.c.detail, timeline.c.at).where(
        timeline.c.case_id == case.id, timeline.c.event == "merged").order_by(timeline.c.id.desc()).limit(1)).first()
    detail = (merged.detail or {}) if merged is not None else {}
    moved = detail.get("report_ids")
    if merged is None or moved is None:
        raise InvalidTransition("this merge was made before merges recorded which reports moved; it cannot be undone",
                                message_zh="该并单发生在记录所移报告之前，无法撤销", code="case.unmerge_unrecorded")
    back_to = next((s for s in MERGEABLE if s.value == merged.from_status), CaseStatus.SUBMITTED)
    # The clocks stood while the case was merged: its due times move on by that long (the events that fired
    # before stay fired), so it is not escalated at once for time its department never held it.
    stood = now - merged.at
    clocks = {name: getattr(case, name) + stood for name in ("ack_warn_at", "ack_due_at", "resolve_warn_at",
                                                               "resolve_due_at") if getattr(case, name) is not None}
    urged_at = detail.get("urged_at")
    # Public, as the merge was (its reporters see their case again); why stays with staff.
    _move(conn, case, back_to, actor, now, event="unmerged",
          values={"merged_into_id": None, "urged_at": datetime.fromisoformat(urged_at) if urged_at else None,
                  **clocks},
          detail={"from_case_id": target.id, "report_ids": moved, "why": note})
    # Its reports come back from the surviving case, or from where that was merged since; one taken out of a
    # merge before (a case merged into this one, brought back already) stays where it is.
    chain, holder = {target.id}, target
    while holder.merged_into_id is not None and holder.merged_into_id not in chain:
        chain.add(holder.merged_into_id)
        holder = _case(conn, holder.merged_into_id, lock=False)
    if moved:
        conn.execute(reports.update().where(reports.c.id.in_(moved), reports.c.case_id.in_(chain))
                     .values(case_id=case.id, updated_at=now))
    # Its urges leave the surviving case: the count it brought, and the wait it started there if that wait
    # is still unanswered (the surviving case's own, if it had one, goes on).
    own = detail.get("into_urged_at")
    conn.execute(cases.update().where(cases.c.id == target.id).values(  # the row is locked (`_case`)
        urge_count=max(0, target.urge_count - int(detail.get("urge_count") or 0)),
        urged_at=None if target.urged_at is None else (datetime.fromisoformat(own) if own else None)))
    add_event(conn, target.id, at=now, event="case_unmerged_out", actor=actor.id, actor_name=actor.name,
              channel=actor.channel, note=note, public=False, detail={"case_id": case.id})
    if events is not None:
        events.emit("cases.unmerged", conn, case_id=case.id, into_case_id=target.id, actor=actor.id, now=now)
    return int(case.id)


def add_note(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str, *, public: bool = False,
             media_id: str | None = None) -> int:
    """备注: a note on the timeline; public notes are shown to citizens (and answer a 催办: the case is locked
    then, so an urge made meanwhile is neither lost nor answered twice)."""
    case = _case(conn, case_id, lock=public)
    _require_may(conn, actor, case, "note")
    if not (note or "").strip():
        raise ValidationFailed("the note is empty", message_zh="备注为空", code="case.note")
    if public:
        require_filled(note)
    event_id = add_event(conn, case_id, at=now, event="note", actor=actor.id, actor_name=actor.name,
                         channel=actor.channel, note=note, public=public, media_id=media_id,
                         department_id=case.department_id)
    values: dict[str, Any] = {"updated_at": now}
    if public:  # a public reply answers a citizen's 催办 as well
        values.update(status_notes=note, urged_at=None)
    conn.execute(cases.update().where(cases.c.id == case_id).values(**values))
    _audit(conn, actor, "note", case_id, now, detail={"public": public})
    if public and case.urged_at is not None:
        notifications.urge_answered(conn, case_id=case_id, urged_at=case.urged_at, now=now)
    return event_id


def rate(conn: Connection, token: str, stars: int, now: datetime, *, tags: list[str] | None = None,
         comment: str | None = None) -> None:
    """好差评: the reporter rates a resolved case 1–5. A rating confirms the fix (核查 by the citizen);
    a low one opens a follow-up for the supervisor, and a low one saying "not fixed" is also a 重办."""
    report = conn.execute(sa.select(reports).where(reports.c.token == token)).first()
    if report is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求", code="report.not_found")
    if not isinstance(stars, int) or not 1 <= stars <= 5:
        raise ValidationFailed("stars must be 1 to 5", message_zh="评分须为 1 到 5", code="rating.stars")
    case = _case(conn, report.case_id)
    _require_state(case, (CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED), "rate")
    if conn.execute(sa.select(ratings.c.id).where(ratings.c.report_id == report.id)).first():
        raise InvalidTransition("this report has been rated already", message_zh="该诉求已评价", code="rating.exists")
    conn.execute(ratings.insert().values(case_id=case.id, report_id=report.id, stars=stars, tags=tags or None,
                                         comment=(comment or "").strip() or None, at=now))
    citizen = Actor("citizen", "citizen", "市民 / citizen", None, Channel.PORTAL)
    add_event(conn, case.id, at=now, event="rated", actor=citizen.id, actor_name=citizen.name,
              channel=citizen.channel, note=comment, detail={"stars": stars, "tags": tags or []})
    if stars <= LOW_RATING:
        conn.execute(cases.update().where(cases.c.id == case.id).values(followup_open=True, updated_at=now))
        add_event(conn, case.id, at=now, event="followup_opened", actor="system", actor_name="system",
                  channel=Channel.SYSTEM, public=False, detail={"stars": stars})
        notifications.low_rating(conn, case_id=case.id, stars=stars, now=now)
        # 不满意 because it is not fixed becomes 重办, as 12345 does: back to the department at once, while
        # the supervisor's follow-up stays open; too late for that, the follow-up alone answers it.
        since = case.closed_at or case.resolved_at or case.updated_at
        if "not_fixed" in (tags or []) and now - since <= REOPEN_WINDOW:
            reopen(conn, case.id, citizen, now, (comment or "").strip() or "评价：问题未解决 / rated: not fixed")
    elif case.status == CaseStatus.RESOLVED:
        verify(conn, case.id, citizen, now, note="市民确认已解决 / confirmed by the citizen")


def close_followup(conn: Connection, case_id: int, actor: Actor, now: datetime, note: str) -> None:
    """The supervisor's answer to a low rating."""
    _require_role(actor, Role.SUPERVISOR)
    case = _case(conn, case_id)
    _require_own_department_or_centre(conn, actor, case, "follow up")
    if not case.followup_open:
        raise InvalidTransition("there is no open follow-up", message_zh="没有待处理的回访", code="case.followup")
    conn.execute(cases.update().where(cases.c.id == case_id).values(followup_open=False, updated_at=now))
    add_event(conn, case_id, at=now, event="followup_closed", actor=actor.id, actor_name=actor.name,
              channel=actor.channel, note=note, public=False)
    _audit(conn, actor, "followup_closed", case_id, now)


def citizen_reopen(conn: Connection, token: str, now: datetime, note: str) -> None:
    """The reporter says "still not fixed" (by tracking code): the case is done again (重办), within 7 days of
    being resolved or closed."""
    report = conn.execute(sa.select(reports.c.case_id).where(reports.c.token == token)).first()
    if report is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求", code="report.not_found")
    if not (note or "").strip():
        raise ValidationFailed("say what is still wrong", message_zh="请说明仍未解决的问题", code="case.note")
    reopen(conn, report.case_id, Actor("citizen", "citizen", "市民 / citizen", None, Channel.PORTAL), now, note)
