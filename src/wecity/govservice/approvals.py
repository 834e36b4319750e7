"""The departments' verbs on an application: accept (受理) or not, ask for 补正, review in parallel
(并联审查), decide, pause for a special procedure the law does not count, extend the limit.

Who may: the matter's department accepts, decides and extends (a supervisor decides and extends, as the
law asks the head of the organ to); a reviewing department reviews only its own part. Every step goes
through the matter's BPMN process (wecity.govservice.process), onto the timeline and into the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.geo.service import city_calendar
from wecity.govservice import certificates, process
from wecity.govservice.clock import due_on, local_day
from wecity.govservice.models import (
    application_extensions,
    application_reviews,
    applications,
    matter_versions,
)
from wecity.govservice.steps import (
    FINISHED,
    after_step,
    end_pause,
    log_event,
    open_pause,
    open_pauses,
    start_clock,
    start_pause,
    tell_applicant,
)
from wecity.identity.audit import record_audit
from wecity.identity.models import departments
from wecity.identity.service import StaffUser

MAX_NOTE = 2000
MAX_EXTENSION_DAYS = 30
SPECIAL_PROCEDURES = {"hearing": ("听证", "hearing"), "inspection": ("检验检测、现场勘验", "inspection or testing"),
                      "expert_review": ("专家评审", "expert review"), "public_notice": ("公示", "public notice")}


def staff_department(conn: Connection, staff: StaffUser) -> str | None:
    if staff.department_id is None:
        return None
    return conn.execute(sa.select(departments.c.code).where(departments.c.id == staff.department_id)).scalar()


def may_see(conn: Connection, staff: StaffUser, app_id: int) -> bool:
    """Staff of the matter's department, of a department asked to review it, or an administrator."""
    if "admin" in staff.roles:
        return True
    dept = staff_department(conn, staff)
    owner = conn.execute(sa.select(applications.c.department_code).where(applications.c.id == app_id)).scalar()
    if owner is None:
        raise NotFound(f"no application {app_id}", message_zh=f"申请 {app_id} 不存在")
    return dept == owner or conn.execute(sa.select(application_reviews.c.id).where(
        application_reviews.c.application_id == app_id, application_reviews.c.department_code == dept)).first() is not None


def _application(conn: Connection, app_id: int, staff: StaffUser) -> Any:
    """The application, locked, for a staff member who may see it at all: anyone else is refused before
    learning anything of its state."""
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no application {app_id}", message_zh=f"申请 {app_id} 不存在")
    if not may_see(conn, staff, app_id):
        raise PermissionDenied("this application belongs to another department", message_zh="该申请不属于您的部门",
                               code="govservice.other_department")
    return row


def _own_department(conn: Connection, row: Any, staff: StaffUser, *, role: str = "handler") -> str:
    """The staff member works for the matter's department, with the role the step needs."""
    dept = staff_department(conn, staff)
    if dept != row.department_code and "admin" not in staff.roles:
        raise PermissionDenied("this application belongs to another department", message_zh="该申请不属于您的部门",
                               code="govservice.other_department")
    if not (staff.has(role) or staff.has("supervisor")):
        raise PermissionDenied(f"this step needs the {role} role", message_zh=f"此操作需要 {role} 角色",
                               code="govservice.role")
    return row.department_code


def _ready(row: Any, name: str, reviewer: str | None = None) -> process.ReadyTask:
    if row.status in FINISHED:
        raise InvalidTransition("this application is finished", message_zh="该申请已办结", code="govservice.finished")
    if row.workflow is None:
        raise InvalidTransition("this application is not in progress", message_zh="该申请不在办理中")
    for task in process.ready_tasks(row.workflow):
        if task.name == name and (reviewer is None or task.reviewer == reviewer):
            return task
    raise InvalidTransition(f"this application is not waiting for {name}", message_zh="该申请当前不在此环节",
                            code="govservice.not_this_step")


def _note(text: str | None, *, required: bool, what: str, what_zh: str) -> str | None:
    text = (text or "").strip()
    if required and not text:
        raise ValidationFailed(f"give the {what}", message_zh=f"请填写{what_zh}", code="govservice.reason_required")
    if len(text) > MAX_NOTE:
        raise ValidationFailed(f"the {what} is longer than {MAX_NOTE} characters",
                               message_zh=f"{what_zh}超过 {MAX_NOTE} 字", code="govservice.note_too_long")
    return text or None


def _step(conn: Connection, row: Any, task: process.ReadyTask, data: dict[str, Any], *, now: datetime,
          key_dir: Path | None = None) -> None:
    conn.execute(applications.update().where(applications.c.id == row.id).values(
        workflow=process.complete(row.workflow, task.id, data), updated_at=now))
    after_step(conn, row.id, now=now, key_dir=key_dir)


def _audit(conn: Connection, staff: StaffUser, action: str, row: Any, now: datetime, **detail: Any) -> None:
    record_audit(conn, at=now, actor=f"user:{staff.username}", action=f"application.{action}",
                 target=f"application:{row.number}", detail=detail or None)


def accept(conn: Connection, app_id: int, *, staff: StaffUser, now: datetime) -> None:
    """受理: the materials are complete; the promised limit starts to run."""
    row = _application(conn, app_id, staff)
    dept = _own_department(conn, row, staff)
    task = _ready(row, "accept")
    if row.accepted_at is None:
        start_clock(conn, app_id, now=now)
    log_event(conn, app_id, "accepted", actor=f"user:{staff.username}", now=now, department_code=dept)
    _audit(conn, staff, "accept", row, now)
    tell_applicant(conn, app_id, "accepted", now=now)
    _step(conn, row, task, {"outcome": "accept"}, now=now)


def not_accept(conn: Connection, app_id: int, *, staff: StaffUser, reason: str, legal_basis: str,
               now: datetime) -> None:
    """不予受理, with the reasons and the law it rests on (the applicant may appeal)."""
    row = _application(conn, app_id, staff)
    dept = _own_department(conn, row, staff)
    task = _ready(row, "accept")
    reason_text = _note(reason, required=True, what="reason", what_zh="不予受理的理由")
    basis = _note(legal_basis, required=True, what="legal basis", what_zh="法律依据")
    log_event(conn, app_id, "not_accepted", actor=f"user:{staff.username}", now=now, department_code=dept,
              note=reason_text, detail={"legal_basis": basis})
    _audit(conn, staff, "not_accept", row, now)
    _step(conn, row, task, {"outcome": "reject"}, now=now)


def request_supplement(conn: Connection, app_id: int, *, staff: StaffUser, note: str,
                       materials: Sequence[str] = (), fields: Sequence[str] = (), now: datetime) -> None:
    """补正: ask for everything missing at once. At acceptance the accepting department asks; in review,
    each reviewing department adds its own request, and the applicant gets them together when the round ends."""
    row = _application(conn, app_id, staff)
    if row.status in FINISHED:
        raise InvalidTransition("this application is finished", message_zh="该申请已办结", code="govservice.finished")
    definition = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == row.matter_code, matter_versions.c.version == row.matter_version)).scalar_one()
    text = _note(note, required=True, what="note saying what is missing", what_zh="补正内容说明")
    unknown = [m for m in materials if m not in row.materials]
    unknown += [f for f in fields if f not in definition["form"].get("properties", {})]
    if unknown:
        raise ValidationFailed(f"the matter has no material or field {', '.join(unknown)}",
                               message_zh=f"该事项没有材料或字段：{'、'.join(unknown)}", code="govservice.unknown_material")
    dept = staff_department(conn, staff) or ""
    if row.status == "submitted":
        _own_department(conn, row, staff)
        task = _ready(row, "accept")
        data: dict[str, Any] = {"outcome": "supplement"}
    else:
        task = _review_task(conn, row, staff)
        data = {"outcome": "supplement"}
        _record_review(conn, row, task, staff, "supplement", text, now)
    asked = {m: {"state": "requested", "media": [], "earlier": row.materials[m].get("media", [])} for m in materials}
    if asked:
        conn.execute(applications.update().where(applications.c.id == app_id).values(
            materials={**row.materials, **asked}))
    log_event(conn, app_id, "supplement_requested", actor=f"user:{staff.username}", now=now, department_code=dept,
              note=text, detail={"materials": list(materials), "fields": list(fields)})
    _audit(conn, staff, "request_supplement", row, now)
    _step(conn, row, task, data, now=now)


def _review_task(conn: Connection, row: Any, staff: StaffUser) -> process.ReadyTask:
    dept = staff_department(conn, staff)
    if not (staff.has("handler") or staff.has("supervisor")):
        raise PermissionDenied("reviewing needs the handler role", message_zh="审查需要处置人员角色", code="govservice.role")
    if row.status in FINISHED:  # withdrawn while the reviews waited: the process is left as it stood
        raise InvalidTransition("this application is finished", message_zh="该申请已办结", code="govservice.finished")
    if row.workflow is None or not any(t.name == "review" for t in process.ready_tasks(row.workflow)):
        raise InvalidTransition("this application is not in review", message_zh="该申请不在审查环节",
                                code="govservice.not_this_step")
    mine = [t for t in process.ready_tasks(row.workflow) if t.name == "review" and t.reviewer == dept]
    if not mine:
        raise PermissionDenied("your department has no review of this application pending",
                               message_zh="您的部门没有待审查的该申请", code="govservice.not_a_reviewer")
    return mine[0]


def _record_review(conn: Connection, row: Any, task: process.ReadyTask, staff: StaffUser, outcome: str,
                   note: str | None, now: datetime) -> None:
    conn.execute(application_reviews.update().where(
        application_reviews.c.application_id == row.id, application_reviews.c.task_id == task.id).values(
        outcome=outcome, note=note, decided_by=f"user:{staff.username}", decided_at=now))


def review(conn: Connection, app_id: int, *, staff: StaffUser, outcome: str, note: str | None,
           now: datetime) -> None:
    """One department's part of the parallel review: approve, or refuse with its reasons."""
    if outcome not in ("approve", "refuse"):
        raise ValidationFailed("a review approves or refuses", message_zh="审查意见应为同意或不同意",
                               code="govservice.bad_outcome")
    row = _application(conn, app_id, staff)
    task = _review_task(conn, row, staff)
    text = _note(note, required=outcome == "refuse", what="reason", what_zh="不同意的理由")
    _record_review(conn, row, task, staff, outcome, text, now)
    log_event(conn, app_id, f"review_{outcome}d", actor=f"user:{staff.username}", now=now,
              department_code=task.reviewer, note=text)
    _audit(conn, staff, f"review_{outcome}", row, now)
    _step(conn, row, task, {"outcome": outcome}, now=now)


def decide(conn: Connection, app_id: int, *, staff: StaffUser, outcome: str, reason: str | None,
           legal_basis: str | None, now: datetime, key_dir: Path) -> None:
    """决定: approve (the certificate is issued) or refuse, with reasons and the legal basis."""
    if outcome not in ("approve", "refuse"):
        raise ValidationFailed("a decision approves or refuses", message_zh="决定应为准予或不予许可",
                               code="govservice.bad_outcome")
    row = _application(conn, app_id, staff)
    dept = _own_department(conn, row, staff, role="supervisor")
    task = _ready(row, "decide")
    text = _note(reason, required=outcome == "refuse", what="reason", what_zh="不予许可的理由")
    basis = _note(legal_basis, required=outcome == "refuse", what="legal basis", what_zh="法律依据")
    log_event(conn, app_id, "approved" if outcome == "approve" else "refused", actor=f"user:{staff.username}",
              now=now, department_code=dept, note=text, detail={"legal_basis": basis} if basis else None)
    _audit(conn, staff, f"decide_{outcome}", row, now)
    _step(conn, row, task, {"outcome": outcome}, now=now, key_dir=key_dir)


def start_special_procedure(conn: Connection, app_id: int, *, staff: StaffUser, kind: str, reason: str,
                            now: datetime) -> None:
    """A special procedure the matter's definition says is not counted (听证, 检验检测, 专家评审, 公示)."""
    row = _application(conn, app_id, staff)
    _own_department(conn, row, staff)
    definition = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == row.matter_code, matter_versions.c.version == row.matter_version)).scalar_one()
    if kind not in definition.get("uncounted_steps", []):
        raise ValidationFailed(f"{kind!r} is not an uncounted procedure of this matter",
                               message_zh=f"{kind!r} 不是该事项不计时的特别程序", code="govservice.not_uncounted")
    if row.accepted_at is None or row.status in FINISHED or open_pause(conn, app_id) is not None:
        raise InvalidTransition("the clock is not running", message_zh="时限计时未在进行", code="govservice.clock_not_running")
    text = _note(reason, required=True, what="reason", what_zh="理由")
    start_pause(conn, app_id, kind, reason=text or "", now=now)
    zh, en = SPECIAL_PROCEDURES[kind]
    log_event(conn, app_id, "special_started", actor=f"user:{staff.username}", now=now,
              department_code=row.department_code, note=text, detail={"kind": kind, "label_zh": zh, "label_en": en})
    _audit(conn, staff, "special_start", row, now, kind=kind)


def end_special_procedure(conn: Connection, app_id: int, *, staff: StaffUser, now: datetime) -> None:
    row = _application(conn, app_id, staff)
    _own_department(conn, row, staff)
    spell = next((s for s in open_pauses(conn, app_id) if s.kind != "supplement"), None)
    if spell is None:
        raise InvalidTransition("no special procedure is running", message_zh="没有进行中的特别程序",
                                code="govservice.clock_not_paused")
    end_pause(conn, app_id, now=now, kind=spell.kind)
    log_event(conn, app_id, "special_ended", actor=f"user:{staff.username}", now=now,
              department_code=row.department_code, detail={"kind": spell.kind})
    _audit(conn, staff, "special_end", row, now, kind=spell.kind)


def extend(conn: Connection, app_id: int, *, staff: StaffUser, days: int, reason: str, now: datetime) -> None:
    """延期: more working days, with the reason recorded and the applicant told; a supervisor's step."""
    row = _application(conn, app_id, staff)
    _own_department(conn, row, staff, role="supervisor")
    if not 1 <= days <= MAX_EXTENSION_DAYS:
        raise ValidationFailed(f"an extension is 1 to {MAX_EXTENSION_DAYS} working days",
                               message_zh=f"延期应为 1 至 {MAX_EXTENSION_DAYS} 个工作日", code="govservice.bad_extension")
    if row.accepted_at is None or row.status in FINISHED:
        raise InvalidTransition("the clock is not running", message_zh="时限计时未在进行", code="govservice.clock_not_running")
    text = _note(reason, required=True, what="reason", what_zh="延期理由")
    calendar = city_calendar(conn)
    extended = row.extended_days + days
    conn.execute(application_extensions.insert().values(application_id=app_id, days=days, reason=text,
                                                        approved_by=f"user:{staff.username}", at=now))
    new_due = due_on(calendar, local_day(row.accepted_at, calendar), limit=row.limit_days or 0,
                     paused=row.paused_days, extended=extended)
    # A later due date is a new limit: the clock warns at 80% of it and escalates past it again.
    again = {"warned_at": None, "escalated_at": None} if row.due_on is None or new_due > row.due_on else {}
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        extended_days=extended, updated_at=now, due_on=new_due, **again))
    log_event(conn, app_id, "extended", actor=f"user:{staff.username}", now=now, department_code=row.department_code,
              note=text, detail={"days": days})
    _audit(conn, staff, "extend", row, now, days=days)
    tell_applicant(conn, app_id, "extended", now=now, note=text)


def revoke_certificate(conn: Connection, number: str, *, staff: StaffUser, reason: str, now: datetime) -> dict[str, Any]:
    """Revoke a certificate the staff member's department issued: a supervisor's step (as a decision is),
    since it withdraws what a decision granted."""
    if not (staff.has("supervisor") or staff.has("admin")):
        raise PermissionDenied("revoking a certificate is a supervisor's step", message_zh="注销证照须由负责人办理",
                               code="govservice.role")
    return certificates.revoke(conn, number, by=f"user:{staff.username}",
                               department_code=staff_department(conn, staff) or "", reason=reason, now=now)
