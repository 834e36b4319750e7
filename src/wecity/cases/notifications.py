"""Who is told what about a case, written to the outbox in the same transaction as the change.

The citizen is told on dispatch, resolution and closure (in-app on the tracking page, e-mail if given,
SMS through the `sms` webhook gateway if a phone was given); the department on dispatch, return of a
verification and escalation (in-app for its staff, and its own webhook if it has one); the supervisor
on escalation and low ratings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import CaseStatus
from wecity.cases.models import cases, reports
from wecity.core import cache
from wecity.core.outbox import enqueue, enqueue_many
from wecity.identity.models import departments

# event -> (zh, en) headline for citizens
_CITIZEN_TEXT = {
    "dispatched": ("您的诉求已派遣至{dept}处理", "Your report has been sent to {dept_en}"),
    "resolved": ("您的诉求已办结，请查看处置结果并评价", "Your report has been resolved; please check and rate it"),
    "closed": ("您的诉求已结案，感谢您参与城市共治", "Your report is closed. Thank you for helping your city"),
}

_DEPARTMENT_TEXT = {
    "dispatched": ("新派遣案件 #{case}：{category}", "New case #{case} dispatched: {category}"),
    "verification_failed": ("案件 #{case} 核查不通过，请继续处置", "Case #{case} failed verification; please continue"),
    "ack_warning": ("案件 #{case} 签收时限即将到期", "Case #{case}: acknowledge deadline approaching"),
    "resolve_warning": ("案件 #{case} 办结时限即将到期", "Case #{case}: resolve deadline approaching"),
    "ack_escalated": ("催办：案件 #{case} 超时未签收", "Escalation: case #{case} not acknowledged in time"),
    "resolve_escalated": ("催办：案件 #{case} 超时未办结", "Escalation: case #{case} not resolved in time"),
    "returned": ("案件 #{case} 被退单，请重新派遣", "Case #{case} was returned; please re-dispatch"),
    "low_rating": ("案件 #{case} 收到差评（{stars} 星），请回访", "Case #{case} rated {stars}/5; please follow up"),
    "assigned": ("案件 #{case} 已指派给您：{category}", "Case #{case} is assigned to you: {category}"),
}


def _case_facts(conn: Connection, case_id: int) -> sa.Row:
    return conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.category_code, cases.c.department_id,
                                  departments.c.name_zh, departments.c.name_en, departments.c.webhook_url)
                        .select_from(cases.outerjoin(departments, departments.c.id == cases.c.department_id))
                        .where(cases.c.id == case_id)).one()


@dataclass(frozen=True, slots=True)
class Facts:
    """What the messages about a case need to say (read once, or known by the caller already)."""

    id: int
    status: str
    category_code: str
    department_id: int | None
    name_zh: str | None
    name_en: str | None
    webhook_url: str | None


def department_facts(conn: Connection, department_id: int) -> tuple[str, str, str | None]:
    """(zh name, en name, webhook) of a department; departments change rarely, so this is cached."""
    return cache.cached(conn, ("department", department_id), lambda: tuple(conn.execute(
        sa.select(departments.c.name_zh, departments.c.name_en, departments.c.webhook_url)
        .where(departments.c.id == department_id)).one()))


def new_case_dispatched(conn: Connection, *, case_id: int, status: str, category_code: str, department_id: int,
                        token: str, email: str | None, phone: str | None, now: datetime) -> None:
    """The intake's notices for a case it just opened and dispatched, from what it already knows (its first
    webhook notice is number 1: the intake inserted the case with notice_seq 1)."""
    name_zh, name_en, webhook = department_facts(conn, department_id)
    facts = Facts(case_id, status, category_code, department_id, name_zh, name_en, webhook)
    messages = _department_messages(facts, "dispatched", now, sequence=lambda: 1)
    messages += _reporter_messages(facts, "dispatched", [(token, email, phone)])
    enqueue_many(conn, messages, now=now)


def case_dispatched(conn: Connection, *, case_id: int, now: datetime) -> None:
    facts = _case_facts(conn, case_id)
    enqueue_many(conn, _department_messages(facts, "dispatched", now, sequence=_numbered(conn, case_id))
                 + _reporter_messages(facts, "dispatched", _reporters(conn, case_id)), now=now)


def case_resolved(conn: Connection, *, case_id: int, now: datetime) -> None:
    _tell_reporters(conn, _case_facts(conn, case_id), "resolved", now)


def case_closed(conn: Connection, *, case_id: int, now: datetime) -> None:
    _tell_reporters(conn, _case_facts(conn, case_id), "closed", now)


def case_returned(conn: Connection, *, case_id: int, now: datetime) -> None:
    _tell_dispatch_centre(conn, _case_facts(conn, case_id), "returned", now)


def low_rating(conn: Connection, *, case_id: int, stars: int, now: datetime) -> None:
    _tell_dispatch_centre(conn, _case_facts(conn, case_id), "low_rating", now, stars=stars, role="supervisor")


def case_assigned(conn: Connection, *, case_id: int, assignee_id: int, by: str, now: datetime,
                  note: str | None = None) -> None:
    """指派: the assignee is told in-app (`user:<id>`, event "assigned"); the department's webhook, if it has
    one, hears `case.assigned` with the assignee, numbered like every notice about the case."""
    facts = _case_facts(conn, case_id)
    payload = _department_payload(facts, "assigned")
    payload.update({"assignee_id": assignee_id, "by": by, **({"body": note} if note else {})})
    messages: list[tuple[str, str, dict[str, object]]] = [("in_app", f"user:{assignee_id}", payload)]
    if facts.webhook_url:
        messages.append(("webhook", facts.webhook_url, {
            "event": "case.assigned", "case_id": facts.id, "sequence": next_notice_number(conn, case_id),
            "status": facts.status, "category": facts.category_code, "department_id": facts.department_id,
            "assignee_id": assignee_id, "at": now.isoformat(), "note": note}))
    enqueue_many(conn, messages, now=now)


def clock_event(conn: Connection, *, case_id: int, event: str, now: datetime) -> None:
    """SLA warnings go to the department; escalations (催办) also to the dispatch centre's supervisors."""
    facts = _case_facts(conn, case_id)
    enqueue_many(conn, _department_messages(facts, event, now, sequence=_numbered(conn, case_id)), now=now)
    if event.endswith("escalated"):
        _tell_dispatch_centre(conn, facts, event, now, role="supervisor")
        enqueue(conn, channel="in_app", target=f"department:{facts.department_id}:supervisor",
                payload=_department_payload(facts, event), now=now, dedupe_key=f"case:{case_id}:{event}:dept-sup")


def _department_payload(facts: Facts | sa.Row, event: str, **extra: object) -> dict[str, object]:
    zh, en = _DEPARTMENT_TEXT[event]
    fields = {"case": facts.id, "category": facts.category_code, **extra}
    return {"title_zh": zh.format(**fields), "title_en": en.format(**fields),
            "body": f"case {facts.id} / {facts.category_code} / {facts.status}", "link": f"/staff/cases/{facts.id}",
            "event": event, "case_id": facts.id}


_NEXT_NOTICE = cases.update().where(cases.c.id == sa.bindparam("b_case")).values(
    notice_seq=cases.c.notice_seq + 1).returning(cases.c.notice_seq)


def next_notice_number(conn: Connection, case_id: int) -> int:
    """The case's next webhook notice number, taken in the caller's transaction (the row lock it takes
    orders two transactions on one case, so numbers follow the order their changes commit in)."""
    return int(conn.execute(_NEXT_NOTICE, {"b_case": case_id}).scalar_one())


def _department_messages(facts: Facts | sa.Row, event: str, now: datetime, note: str | None = None, *,
                         sequence: Callable[[], int]) -> list[tuple[str, str, dict[str, object]]]:
    if facts.department_id is None:
        return []
    payload = _department_payload(facts, event)
    if note:
        payload["body"] = note
    messages: list[tuple[str, str, dict[str, object]]] = [("in_app", f"department:{facts.department_id}", payload)]
    if facts.webhook_url:
        messages.append(("webhook", facts.webhook_url, {
            "event": f"case.{event}", "case_id": facts.id, "sequence": sequence(), "status": facts.status,
            "category": facts.category_code, "department_id": facts.department_id, "at": now.isoformat(),
            "note": note}))
    return messages


def _numbered(conn: Connection, case_id: int) -> Callable[[], int]:
    return lambda: next_notice_number(conn, case_id)


def tell_department(conn: Connection, *, case_id: int, event: str, now: datetime, note: str | None = None) -> None:
    enqueue_many(conn, _department_messages(_case_facts(conn, case_id), event, now, note,
                                            sequence=_numbered(conn, case_id)), now=now)


def _tell_dispatch_centre(conn: Connection, facts: Facts | sa.Row, event: str, now: datetime, *,
                          role: str = "dispatcher", **extra: object) -> None:
    centre = conn.execute(sa.select(departments.c.id).where(departments.c.is_dispatch_centre.is_(True))).first()
    if centre is None:
        return
    enqueue(conn, channel="in_app", target=f"department:{centre.id}:{role}",
            payload=_department_payload(facts, event, **extra), now=now)


def _reporter_messages(facts: Facts | sa.Row, event: str,
                       reporters: list[tuple[str, str | None, str | None]]) -> list[tuple[str, str, dict[str, object]]]:
    zh, en = _CITIZEN_TEXT[event]
    title_zh = zh.format(dept=facts.name_zh or "")
    title_en = en.format(dept_en=facts.name_en or "the responsible department")
    status = CaseStatus(facts.status)
    messages: list[tuple[str, str, dict[str, object]]] = []
    for token, email, phone in reporters:
        link = f"/track/{token}"
        messages.append(("in_app", f"citizen:{token}", {
            "title_zh": title_zh, "title_en": title_en, "body": f"{status.label_zh} / {status.label_en}",
            "link": link, "event": event, "case_id": facts.id}))
        if email:
            messages.append(("email", email, {
                "subject": f"{title_zh} / {title_en}",
                "body": f"{title_zh}\n{title_en}\n\n查询码 / tracking code: {token}\n{link}\n"}))
        if phone:
            messages.append(("webhook", "sms", {
                "phone": phone, "text": f"【WeCity】{title_zh}，查询码 {token}", "event": event}))
    return messages


def _reporters(conn: Connection, case_id: int) -> list[tuple[str, str | None, str | None]]:
    rows = conn.execute(sa.select(reports.c.token, reports.c.email, reports.c.phone)
                        .where(reports.c.case_id == case_id)).all()
    return [(r.token, r.email, r.phone) for r in rows]


def _tell_reporters(conn: Connection, facts: Facts | sa.Row, event: str, now: datetime) -> None:
    enqueue_many(conn, _reporter_messages(facts, event, _reporters(conn, facts.id)), now=now)
