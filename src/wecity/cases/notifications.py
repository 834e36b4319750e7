"""Who is told what about a case, written to the outbox in the same transaction as the change.

The citizen is told on dispatch, resolution and closure, and when their 催办 is answered (in-app on the
tracking page, e-mail if given, SMS through the `sms` webhook gateway if a phone was given); the department
on dispatch, return of a verification, escalation and a reporter's 催办 (in-app for its staff, and its own
webhook if it has one); the supervisor on escalation, 催办 and low ratings. Each event staff must hear of
where they work (a case dispatched to a department or assigned to a person, an escalation, a 催办, a low
rating) is also one `staff_event` message, which the notification domain passes on to the group robots
(WeCom, DingTalk) and webhooks that want it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import CENTRE_HOLDS, CaseStatus
from wecity.cases.models import case_followers, cases, reports
from wecity.core import cache
from wecity.core.outbox import enqueue, enqueue_many
from wecity.identity.models import departments

# event -> (zh, en) headline for citizens
_CITIZEN_TEXT = {
    "dispatched": ("您的诉求已派遣至{dept}处理", "Your report has been sent to {dept_en}"),
    "resolved": ("您的诉求已办结，请查看处置结果并评价", "Your report has been resolved; please check and rate it"),
    "closed": ("您的诉求已结案，感谢您参与城市共治", "Your report is closed. Thank you for helping your city"),
    "urge_answered": ("您的催办已有答复，请查看办理进展", "Your request to hurry has been answered; see the progress"),
}

# To people who follow a case (+1) and left an e-mail address.
_FOLLOWER_TEXT = {
    "resolved": ("您关注的问题已处理，请查看结果", "A problem you follow has been fixed; see the result"),
    "closed": ("您关注的问题已结案", "A problem you follow is closed"),
}

_DEPARTMENT_TEXT = {
    "dispatched": ("新派遣案件 #{case}：{category}", "New case #{case} dispatched: {category}"),
    "verification_failed": ("案件 #{case} 核查不通过，请继续处置", "Case #{case} failed verification; please continue"),
    "ack_warning": ("案件 #{case} 签收时限即将到期", "Case #{case}: acknowledge deadline approaching"),
    "resolve_warning": ("案件 #{case} 办结时限即将到期", "Case #{case}: resolve deadline approaching"),
    "ack_escalated": ("催办：案件 #{case} 超时未签收", "Escalation: case #{case} not acknowledged in time"),
    "resolve_escalated": ("催办：案件 #{case} 超时未办结", "Escalation: case #{case} not resolved in time"),
    "returned": ("案件 #{case} 被退单，请重新派遣", "Case #{case} was returned; please re-dispatch"),
    "citizen_update": ("案件 #{case}：市民补充了新情况", "Case #{case}: the reporter added an update"),
    "citizen_urged": ("市民催办：案件 #{case}，请尽快办理并答复", "A citizen urges case #{case}: please act and answer"),
    "low_rating": ("案件 #{case} 收到差评（{stars} 星），请回访", "Case #{case} rated {stars}/5; please follow up"),
    "assigned": ("案件 #{case} 已指派给您：{category}", "Case #{case} is assigned to you: {category}"),
}


def _case_facts(conn: Connection, case_id: int) -> sa.Row:
    return conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.category_code, cases.c.department_id,
                                  departments.c.name_zh, departments.c.name_en, departments.c.webhook_url,
                                  cases.c.assignee_id)
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
    assignee_id: int | None = None


def department_facts(conn: Connection, department_id: int) -> tuple[str, str, str | None]:
    """(zh name, en name, webhook) of a department; departments change rarely, so this is cached."""
    return cache.cached(conn, ("department", department_id), lambda: tuple(conn.execute(
        sa.select(departments.c.name_zh, departments.c.name_en, departments.c.webhook_url)
        .where(departments.c.id == department_id)).one()))


def new_case_dispatched(conn: Connection, *, case_id: int, status: str, category_code: str, department_id: int,
                        token: str, email: str | None, phone: str | None, now: datetime,
                        lang: str | None = None) -> None:
    """The intake's notices for a case it just opened and dispatched, from what it already knows (its first
    webhook notice is number 1: the intake inserted the case with notice_seq 1)."""
    name_zh, name_en, webhook = department_facts(conn, department_id)
    facts = Facts(case_id, status, category_code, department_id, name_zh, name_en, webhook)
    messages = _department_messages(facts, "dispatched", now, sequence=lambda: 1)
    messages += _reporter_messages(facts, "dispatched", [(token, email, phone, lang)])
    messages.append(_staff_event(facts, "dispatched", now))
    enqueue_many(conn, messages, now=now)


def case_dispatched(conn: Connection, *, case_id: int, now: datetime) -> None:
    facts = _case_facts(conn, case_id)
    enqueue_many(conn, _department_messages(facts, "dispatched", now, sequence=_numbered(conn, case_id))
                 + _reporter_messages(facts, "dispatched", _reporters(conn, case_id))
                 + [_staff_event(facts, "dispatched", now)], now=now)


def case_resolved(conn: Connection, *, case_id: int, now: datetime, urged_at: datetime | None = None) -> None:
    """A resolution that answers a 催办 (`urged_at`) is told even when this round's was told before: the
    reporter who pressed is waiting for it."""
    _tell_reporters(conn, _case_facts(conn, case_id), "resolved", now,
                    tail=f":{urged_at.isoformat()}" if urged_at is not None else "")


def case_closed(conn: Connection, *, case_id: int, now: datetime) -> None:
    _tell_reporters(conn, _case_facts(conn, case_id), "closed", now)


def case_returned(conn: Connection, *, case_id: int, now: datetime) -> None:
    _tell_dispatch_centre(conn, _case_facts(conn, case_id), "returned", now)


def low_rating(conn: Connection, *, case_id: int, stars: int, now: datetime) -> None:
    facts = _case_facts(conn, case_id)
    _tell_dispatch_centre(conn, facts, "low_rating", now, stars=stars, role="supervisor")
    enqueue_many(conn, [_staff_event(facts, "low_rating", now, stars=stars)], now=now)


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
    messages.append(_staff_event(facts, "assigned", now))  # the group robots @mention the assignee
    enqueue_many(conn, messages, now=now)


def clock_event(conn: Connection, *, case_id: int, event: str, now: datetime) -> None:
    """SLA warnings go to the department; escalations (催办) also to the dispatch centre's supervisors."""
    facts = _case_facts(conn, case_id)
    enqueue_many(conn, _department_messages(facts, event, now, sequence=_numbered(conn, case_id)), now=now)
    if event.endswith("escalated"):
        enqueue_many(conn, [_staff_event(facts, "escalated", now, detail=event)], now=now)
        _tell_dispatch_centre(conn, facts, event, now, role="supervisor")
        # Once per department and SLA round: a dedupe key is kept for good, and a case transferred (or
        # reopened) and escalated again must reach the supervisors who hold it now.
        dispatched_at = conn.execute(sa.select(cases.c.dispatched_at).where(cases.c.id == case_id)).scalar()
        round_ = dispatched_at.isoformat() if dispatched_at is not None else "-"
        enqueue(conn, channel="in_app", target=f"department:{facts.department_id}:supervisor",
                payload=_department_payload(facts, event), now=now,
                dedupe_key=f"case:{case_id}:{event}:dept-sup:{facts.department_id}:{round_}")


def citizen_urged(conn: Connection, *, case_id: int, now: datetime, overdue: bool) -> None:
    """市民催办 goes to the department and its supervisors (to the dispatch centre's dispatchers while the
    centre holds the case: not yet sent, or sent back), and to the centre's supervisors as well when a clock
    of the case has already run out."""
    facts = _case_facts(conn, case_id)
    if facts.department_id is None or CaseStatus(facts.status) in CENTRE_HOLDS:
        _tell_dispatch_centre(conn, facts, "citizen_urged", now)
        return
    messages = _department_messages(facts, "citizen_urged", now, sequence=_numbered(conn, case_id))
    messages.append(("in_app", f"department:{facts.department_id}:supervisor",
                     _department_payload(facts, "citizen_urged")))
    messages.append(_staff_event(facts, "citizen_urged", now))
    enqueue_many(conn, messages, now=now)
    if overdue:
        _tell_dispatch_centre(conn, facts, "citizen_urged", now, role="supervisor")


def _department_payload(facts: Facts | sa.Row, event: str, **extra: object) -> dict[str, object]:
    zh, en = _DEPARTMENT_TEXT[event]
    fields = {"case": facts.id, "category": facts.category_code, **extra}
    return {"title_zh": zh.format(**fields), "title_en": en.format(**fields),
            "body": f"case {facts.id} / {facts.category_code} / {facts.status}", "link": f"/staff/cases/{facts.id}",
            "event": event, "case_id": facts.id}


def _staff_event(facts: Facts | sa.Row, event: str, now: datetime, *, detail: str | None = None,
                 stars: int | None = None) -> tuple[str, str, dict[str, object]]:
    """The `staff_event` message: what happened to which case, for whom; nothing of the reporter."""
    return ("staff_event", f"case:{facts.id}", {
        "event": event, "detail": detail or event, "case_id": facts.id, "category": facts.category_code,
        "department_id": facts.department_id, "assignee_id": facts.assignee_id, "stars": stars,
        "at": now.isoformat()})


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


Reporter = tuple[str, str | None, str | None, str | None]  # (tracking code, e-mail, phone, language)


def _reporter_messages(facts: Facts | sa.Row, event: str, reporters: list[Reporter], *,
                       dedupe: str | None = None) -> list[tuple[str, str, dict[str, object]]]:
    """What each reporter is told: in the language they reported in (both when it is not known), with the
    link to their report, which the e-mail and SMS channels make absolute (settings.public_url)."""
    zh, en = _CITIZEN_TEXT[event]
    title_zh = zh.format(dept=facts.name_zh or "")
    title_en = en.format(dept_en=facts.name_en or "the responsible department")
    status = CaseStatus(facts.status)
    messages: list[tuple[str, str, dict[str, object]]] = []
    for token, email, phone, lang in reporters:
        link = f"/track/{token}"
        messages.append(("in_app", f"citizen:{token}", {
            "title_zh": title_zh, "title_en": title_en, "body": f"{status.label_zh} / {status.label_en}",
            "link": link, "event": event, "case_id": facts.id,
            **({"dedupe": f"{dedupe}:in_app:{token}"} if dedupe else {})}))
        title = title_en if lang == "en" else title_zh if lang == "zh_CN" else f"{title_zh} / {title_en}"
        code = "Tracking code" if lang == "en" else "查询码" if lang == "zh_CN" else "查询码 / tracking code"
        if email:
            messages.append(("email", email, {
                "subject": title, "body": f"{title}\n\n{code}: {token}\n", "link": link, "lang": lang or "",
                **({"dedupe": f"{dedupe}:email:{token}"} if dedupe else {})}))
        if phone:
            sms = f"[WeCity] {title_en}. {code}: {token}" if lang == "en" else f"【WeCity】{title_zh}，{code} {token}"
            messages.append(("webhook", "sms", {
                "phone": phone, "text": sms, "event": event, "link": link,
                **({"dedupe": f"{dedupe}:sms:{token}"} if dedupe else {})}))
    return messages


def _reporters(conn: Connection, case_id: int) -> list[Reporter]:
    rows = conn.execute(sa.select(reports.c.token, reports.c.email, reports.c.phone, reports.c.lang)
                        .where(reports.c.case_id == case_id)).all()
    return [(r.token, r.email, r.phone, r.lang) for r in rows]


def urge_answered(conn: Connection, *, case_id: int, urged_at: datetime, now: datetime) -> None:
    """The reporters learn that their 催办 was acted on (a step of the work or a public reply), once per urge."""
    _tell_reporters(conn, _case_facts(conn, case_id), "urge_answered", now, tail=f":{urged_at.isoformat()}")


def _tell_reporters(conn: Connection, facts: Facts | sa.Row, event: str, now: datetime, *, tail: str = "") -> None:
    """Each reporter (and each follower with an e-mail address) is told once per event and round of the case
    (and `tail`, where one event can happen more than once in a round): a repeated step (a resolve undone
    and redone the same day) does not text them twice."""
    round_ = conn.execute(sa.select(cases.c.reopen_count).where(cases.c.id == facts.id)).scalar_one()
    dedupe = f"case:{facts.id}:{round_}:{event}{tail}"
    messages = _reporter_messages(facts, event, _reporters(conn, facts.id), dedupe=dedupe)
    messages += _follower_messages(conn, facts, event, dedupe)
    for channel, target, payload in messages:
        key = payload.pop("dedupe", None)
        enqueue(conn, channel=channel, target=target, payload=payload, now=now,
                dedupe_key=str(key) if key else None)


def _follower_messages(conn: Connection, facts: Facts | sa.Row, event: str,
                       dedupe: str) -> list[tuple[str, str, dict[str, object]]]:
    if event not in _FOLLOWER_TEXT:
        return []
    rows = conn.execute(sa.select(case_followers.c.email, case_followers.c.lang, case_followers.c.follower_key)
                        .where(case_followers.c.case_id == facts.id, case_followers.c.email.is_not(None))).all()
    zh, en = _FOLLOWER_TEXT[event]
    messages: list[tuple[str, str, dict[str, object]]] = []
    for r in rows:
        title = en if r.lang == "en" else zh if r.lang == "zh_CN" else f"{zh} / {en}"
        messages.append(("email", r.email, {"subject": title, "body": f"{title}\n", "link": f"/cases/{facts.id}",
                                            "dedupe": f"{dedupe}:follower:{r.follower_key}"}))
    return messages
