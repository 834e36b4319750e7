"""What follows every step of an application's process, whoever took it: the status read off the BPMN
engine's state, the rounds of parallel review, the clock's pauses for 补正, delivery of the certificate,
the timeline and the notices.

The BPMN definition (wecity.govservice.process) decides what comes next; this module keeps the tables in
step with it, so that queues and clocks are plain queries.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.outbox import enqueue_many
from wecity.geo.service import city_calendar
from wecity.govservice import certificates, process
from wecity.govservice.clock import due_on, local_day, working_days_between
from wecity.govservice.models import (
    application_events,
    application_pauses,
    application_reviews,
    applications,
    matter_versions,
)
from wecity.identity.applicants import get_applicant, legal_representative, may_act_for
from wecity.identity.models import departments


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"        # waiting for acceptance (待受理)
    SUPPLEMENT = "supplement"      # with the applicant (补正)
    IN_REVIEW = "in_review"        # parallel review (并联审查)
    DECIDING = "deciding"          # decision (决定)
    APPROVED = "approved"          # 准予许可, certificate issued
    REFUSED = "refused"            # 不予许可
    NOT_ACCEPTED = "not_accepted"  # 不予受理
    WITHDRAWN = "withdrawn"        # 撤回


STATUS_LABELS: dict[str, tuple[str, str]] = {
    Status.DRAFT: ("草稿", "Draft"), Status.SUBMITTED: ("待受理", "Awaiting acceptance"),
    Status.SUPPLEMENT: ("待补正", "Materials requested"), Status.IN_REVIEW: ("审查中", "In review"),
    Status.DECIDING: ("待决定", "Awaiting decision"), Status.APPROVED: ("已办结（准予）", "Approved"),
    Status.REFUSED: ("已办结（不予许可）", "Refused"), Status.NOT_ACCEPTED: ("不予受理", "Not accepted"),
    Status.WITHDRAWN: ("已撤回", "Withdrawn"),
}
FINISHED = frozenset({Status.APPROVED, Status.REFUSED, Status.NOT_ACCEPTED, Status.WITHDRAWN})
_END_STATUS = {"approved": Status.APPROVED, "refused": Status.REFUSED, "not_accepted": Status.NOT_ACCEPTED}

# What the applicant is told at each step (title zh, title en).
_APPLICANT_TEXT: dict[str, tuple[str, str]] = {
    "accepted": ("您的申请 {number} 已受理", "Your application {number} was accepted"),
    "supplement": ("您的申请 {number} 需要补正材料", "Your application {number} needs more from you"),
    "approved": ("您的申请 {number} 已办结：准予许可，电子证照已发放", "Your application {number} was approved; the certificate is in your wallet"),
    "refused": ("您的申请 {number} 已办结：不予许可", "Your application {number} was refused"),
    "not_accepted": ("您的申请 {number} 不予受理", "Your application {number} was not accepted"),
    "withdrawn": ("您的申请 {number} 已撤回", "Your application {number} was withdrawn"),
    "extended": ("您的申请 {number} 办理期限已延长", "The time limit of your application {number} was extended"),
}
_DEPARTMENT_TEXT: dict[str, tuple[str, str]] = {
    "submitted": ("新申请 {number} 待受理", "New application {number} to accept"),
    "supplied": ("申请 {number} 已补正", "Application {number}: the applicant supplied what was asked"),
    "review": ("申请 {number} 待并联审查", "Application {number} awaits your review"),
    "decide": ("申请 {number} 审查完毕，待决定", "Application {number} reviewed; awaiting decision"),
    "withdrawn": ("申请 {number} 已被申请人撤回", "Application {number} was withdrawn"),
    "warning": ("申请 {number} 已用时限 80%", "Application {number} has used 80% of its time limit"),
    "overdue": ("申请 {number} 已超期", "Application {number} is overdue"),
    "bad_rating": ("申请 {number} 收到差评，请于 15 个工作日内整改", "Application {number} was rated badly: rectify within 15 working days"),
}


def log_event(conn: Connection, app_id: int, kind: str, *, actor: str, now: datetime, note: str | None = None,
              department_code: str | None = None, detail: dict[str, Any] | None = None) -> None:
    conn.execute(application_events.insert().values(application_id=app_id, at=now, kind=kind, actor=actor,
                                                     note=note, department_code=department_code, detail=detail))


def _department(conn: Connection, code: str) -> Any:
    return conn.execute(sa.select(departments).where(departments.c.code == code)).first()


def tell_department(conn: Connection, code: str, app_id: int, event: str, *, now: datetime, role: str = "") -> None:
    dept = _department(conn, code)
    number = conn.execute(sa.select(applications.c.number).where(applications.c.id == app_id)).scalar_one()
    if dept is None:
        return
    zh, en = _DEPARTMENT_TEXT[event]
    target = f"department:{dept.id}" + (f":{role}" if role else "")
    enqueue_many(conn, [("in_app", target, {
        "title_zh": zh.format(number=number), "title_en": en.format(number=number), "body": number,
        "link": f"/staff/applications/{app_id}", "event": f"application.{event}", "application_id": app_id})], now=now)


def tell_applicant(conn: Connection, app_id: int, event: str, *, now: datetime, note: str | None = None) -> None:
    """In the applicant's inbox, and by SMS to the citizen who filed it."""
    row = conn.execute(sa.select(applications.c.number, applications.c.applicant_id, applications.c.filed_by)
                       .where(applications.c.id == app_id)).one()
    zh, en = _APPLICANT_TEXT[event]
    title_zh, title_en = zh.format(number=row.number), en.format(number=row.number)
    link = f"/services/applications/{app_id}"
    messages: list[tuple[str, str, dict[str, object]]] = [("in_app", f"applicant:{row.applicant_id}", {
        "title_zh": title_zh, "title_en": title_en, "body": note or "", "link": link,
        "event": f"application.{event}", "application_id": app_id})]
    # The citizen who filed it, while they may still act for the applicant; else (an agent withdrawn since)
    # the enterprise's legal representative.
    teller = row.filed_by if may_act_for(conn, row.filed_by, row.applicant_id) \
        else legal_representative(conn, row.applicant_id)
    phone = get_applicant(conn, teller).phone if teller is not None else None
    if phone:
        messages.append(("webhook", "sms", {"phone": phone, "text": f"【WeCity】{title_zh}。{title_en}.",
                                            "event": f"application.{event}"}))
    enqueue_many(conn, messages, now=now)


# -- the clock --------------------------------------------------------------------------------------

def start_pause(conn: Connection, app_id: int, kind: str, *, reason: str, now: datetime,
                requested: dict[str, Any] | None = None) -> None:
    """The clock stops (when it runs: before acceptance there is none to stop, the spell is still kept)."""
    row = conn.execute(sa.select(applications.c.accepted_at, applications.c.paused_since)
                       .where(applications.c.id == app_id)).one()
    conn.execute(application_pauses.insert().values(application_id=app_id, kind=kind, reason=reason,
                                                    requested=requested, started_at=now))
    if row.accepted_at is not None and row.paused_since is None:
        conn.execute(applications.update().where(applications.c.id == app_id).values(paused_since=now))


def open_pauses(conn: Connection, app_id: int) -> list[Any]:
    """The spells still open, newest first: two may overlap (补正 asked for during an inspection)."""
    return list(conn.execute(sa.select(application_pauses).where(
        application_pauses.c.application_id == app_id, application_pauses.c.ended_at.is_(None))
        .order_by(application_pauses.c.id.desc())))


def open_pause(conn: Connection, app_id: int) -> Any:
    found = open_pauses(conn, app_id)
    return found[0] if found else None


def end_pause(conn: Connection, app_id: int, *, now: datetime, kind: str | None = None) -> None:
    """End the newest open spell of `kind` (every open spell when None: the application ends). The clock runs
    again only when no spell is left open, and the due date moves on by the working days it stood still,
    counted once however many spells overlapped; each spell keeps its own length."""
    spells = [s for s in open_pauses(conn, app_id) if kind is None or s.kind == kind]
    if kind is not None:
        spells = spells[:1]
    if not spells:
        return
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    calendar = city_calendar(conn)
    for spell in spells:
        own = working_days_between(calendar, local_day(spell.started_at, calendar), local_day(now, calendar)) \
            if row.accepted_at is not None else 0
        conn.execute(application_pauses.update().where(application_pauses.c.id == spell.id).values(
            ended_at=now, working_days=own))
    if row.accepted_at is None or open_pause(conn, app_id) is not None or row.paused_since is None:
        return
    days = working_days_between(calendar, local_day(row.paused_since, calendar), local_day(now, calendar))
    paused = row.paused_days + days
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        paused_days=paused, paused_since=None,
        due_on=due_on(calendar, local_day(row.accepted_at, calendar), limit=row.limit_days or 0, paused=paused,
                      extended=row.extended_days)))


def start_clock(conn: Connection, app_id: int, *, now: datetime) -> None:
    """Acceptance (受理): the promised limit starts to run, the day of acceptance not counted."""
    row = conn.execute(sa.select(applications.c.matter_code, applications.c.matter_version)
                       .where(applications.c.id == app_id)).one()
    definition = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == row.matter_code, matter_versions.c.version == row.matter_version)).scalar_one()
    calendar = city_calendar(conn)
    limit = int(definition["promised_limit_days"])
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        accepted_at=now, limit_days=limit, due_on=due_on(calendar, local_day(now, calendar), limit=limit)))


# -- following the process ---------------------------------------------------------------------------

def _supplement_requests(conn: Connection, app_id: int) -> list[dict[str, Any]]:
    """Every 补正 request since the applicant last supplied: sent together, once (一次性告知)."""
    last = conn.execute(sa.select(sa.func.max(application_events.c.id)).where(
        application_events.c.application_id == app_id,
        application_events.c.kind.in_(("supplied", "submitted")))).scalar() or 0
    rows = conn.execute(sa.select(application_events.c.detail, application_events.c.note,
                                  application_events.c.department_code).where(
        application_events.c.application_id == app_id, application_events.c.kind == "supplement_requested",
        application_events.c.id > last).order_by(application_events.c.id))
    return [{"department": r.department_code, "note": r.note, **(r.detail or {})} for r in rows]


def _open_review_round(conn: Connection, app_id: int, tasks: list[process.ReadyTask], *, now: datetime) -> None:
    known = set(conn.execute(sa.select(application_reviews.c.task_id).where(
        application_reviews.c.application_id == app_id)).scalars())
    fresh = [t for t in tasks if t.id not in known]
    if not fresh:
        return
    last_round = conn.execute(sa.select(sa.func.max(application_reviews.c.round)).where(
        application_reviews.c.application_id == app_id)).scalar() or 0
    for task in fresh:
        conn.execute(application_reviews.insert().values(application_id=app_id, round=last_round + 1,
                                                         department_code=task.reviewer or "", task_id=task.id))
        tell_department(conn, task.reviewer or "", app_id, "review", now=now)


def after_step(conn: Connection, app_id: int, *, now: datetime, key_dir: Path | None = None) -> Status:
    """Bring the application's row in step with its process after a step; returns the new status."""
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    if row.status in FINISHED:  # withdrawn (or decided): what the process says now changes nothing
        return Status(row.status)
    state = row.workflow
    if process.is_finished(state):
        status = _END_STATUS[process.end_event(state) or "refused"]
        end_pause(conn, app_id, now=now)
        conn.execute(applications.update().where(applications.c.id == app_id).values(
            status=status, outcome=str(status), finished_at=now, updated_at=now))
        tell_applicant(conn, app_id, str(status), now=now)
        return status
    ready = process.ready_tasks(state)
    names = {t.name for t in ready}
    if any(t.lane == "applicant" for t in ready):
        status = Status.SUPPLEMENT
        if row.status != Status.SUPPLEMENT:
            asked = _supplement_requests(conn, app_id)
            start_pause(conn, app_id, "supplement", reason="；".join(a["note"] or "" for a in asked if a["note"]),
                        requested={"requests": asked}, now=now)
            tell_applicant(conn, app_id, "supplement", now=now,
                           note="\n".join(a["note"] or "" for a in asked if a["note"]))
    elif "accept" in names:
        status = Status.SUBMITTED
    elif "review" in names:
        status = Status.IN_REVIEW
        _open_review_round(conn, app_id, [t for t in ready if t.name == "review"], now=now)
    elif "decide" in names:
        status = Status.DECIDING
        if row.status != Status.DECIDING:
            tell_department(conn, row.department_code, app_id, "decide", now=now)
    elif "deliver" in names:
        deliver(conn, app_id, now=now, key_dir=key_dir)
        return after_step(conn, app_id, now=now, key_dir=key_dir)
    else:
        raise RuntimeError(f"application {app_id}: the process waits at {sorted(names)}, which this platform "
                           "does not know")
    conn.execute(applications.update().where(applications.c.id == app_id).values(status=status, updated_at=now))
    return status


def certificate_fields(form_data: dict[str, Any]) -> dict[str, Any]:
    """The form's answers as a certificate carries them: a signed document holds no binary fractions, so a
    decimal number is written as its shortest text ("6.5"); forms.prefill reads it back as a number."""
    def signed(v: Any) -> Any:
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, list):
            return [signed(x) for x in v]
        if isinstance(v, dict):
            return {k: signed(x) for k, x in v.items()}
        return v

    return {k: signed(v) for k, v in form_data.items()}


def deliver(conn: Connection, app_id: int, *, now: datetime, key_dir: Path | None) -> None:
    """送达: the approval's certificate is issued into the holder's wallet, then the process ends."""
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    detail = issue_certificate(conn, app_id, now=now, key_dir=key_dir)
    task = next(t for t in process.ready_tasks(row.workflow) if t.name == "deliver")
    conn.execute(applications.update().where(applications.c.id == app_id).values(
        workflow=process.complete(row.workflow, task.id, {"delivered": True})))
    log_event(conn, app_id, "delivered", actor="system", now=now, department_code=row.department_code, detail=detail)


def issue_certificate(conn: Connection, app_id: int, *, now: datetime, key_dir: Path | None) -> dict[str, Any]:
    """The certificate an approved application's matter issues, from its form data ({"certificate": number},
    or {} for a matter that issues none)."""
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    definition = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == row.matter_code, matter_versions.c.version == row.matter_version)).scalar_one()
    detail: dict[str, Any] = {}
    spec = definition.get("certificate")
    if spec:
        if key_dir is None:
            raise RuntimeError("issuing a certificate needs the signing key's folder")
        dept = _department(conn, row.department_code)
        holder = get_applicant(conn, row.applicant_id)
        issued = certificates.issue(
            conn, key=certificates.signing_key(conn, key_dir), type=spec["type"], name_zh=spec["name_zh"],
            name_en=spec["name_en"], holder_id=holder.id, holder_name=holder.display_name, application_id=app_id,
            application_number=row.number, department_code=row.department_code,
            department_name_zh=dept.name_zh if dept else row.department_code,
            department_name_en=dept.name_en if dept else row.department_code,
            fields=certificate_fields(row.form_data), valid_days=spec.get("valid_days"), now=now,
            holder_id_number=holder.profile.get("id_number"), by="system")
        detail = {"certificate": issued["number"]}
    return detail
