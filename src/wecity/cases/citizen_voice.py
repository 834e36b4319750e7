"""What a citizen can still say about a case after reporting it: an update or a photo (by tracking code),
催办 ("please hurry", by tracking code), and "me too" (关注 / +1) by anyone who has the same problem,
without filing a report of their own.

"Still not fixed" is the engine's `citizen_reopen` (重办): it changes the case's state, these do not.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import notifications
from wecity.cases.choices import CaseStatus, Channel, running_clock
from wecity.cases.models import case_followers, cases, reports, timeline
from wecity.cases.timeline import add_event
from wecity.core.errors import InvalidTransition, NotFound, ValidationFailed
from wecity.geo.service import city_timezone

MAX_UPDATE = 1000
# Done as far as the department is concerned: what the reporter can say now is "still not fixed".
FINISHED = (CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED, CaseStatus.MERGED)
CITIZEN = ("citizen", "市民 / citizen")
# 催办: a reporter may press for progress once the case has waited a day (or sooner, once a clock of the
# case has run out), and again a day after the last time anyone urged it. A department is not hurried by
# the same case more often than that, however many people reported it.
URGE_AFTER = timedelta(hours=24)
URGE_EVERY = timedelta(hours=24)


def _open_case_of_token(conn: Connection, token: str) -> sa.Row:
    row = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.merged_into_id)
                       .select_from(reports.join(cases, cases.c.id == reports.c.case_id))
                       .where(reports.c.token == token)).first()
    if row is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求", code="report.not_found")
    return row


def updatable_case(conn: Connection, token: str) -> int:
    """The case a reporter's update by this tracking code goes to (a merged report's words belong on the case
    it joined); NotFound for no such code, InvalidTransition for a finished case. Asked before the update's
    photo is read, and again in its write."""
    row = _open_case_of_token(conn, token)
    case_id = int(row.merged_into_id or row.id)
    status = conn.execute(sa.select(cases.c.status).where(cases.c.id == case_id)).scalar_one()
    if CaseStatus(status) in FINISHED:
        raise InvalidTransition("the case is finished; say \"still not fixed\" instead",
                                message_zh="该诉求已办结；如问题仍在，请选择“问题仍未解决”", code="case.update_closed")
    return case_id


def add_update(conn: Connection, token: str, now: datetime, note: str, *, media_id: str | None = None) -> int:
    """The reporter adds what they have seen since (text, a photo or both) to an open case: a public entry
    on its timeline, and the department is told. Returns the event id."""
    case_id = updatable_case(conn, token)
    text = (note or "").strip()
    if not text and not media_id:
        raise ValidationFailed("write what has changed or add a photo", message_zh="请填写新情况或添加照片",
                               code="case.update_empty")
    if len(text) > MAX_UPDATE:
        raise ValidationFailed(f"at most {MAX_UPDATE} characters", message_zh=f"最多 {MAX_UPDATE} 个字",
                               code="case.update_long")
    event_id = add_event(conn, case_id, at=now, event="citizen_update", actor=CITIZEN[0], actor_name=CITIZEN[1],
                         channel=Channel.PORTAL, note=text or None, public=True, media_id=media_id)
    conn.execute(cases.update().where(cases.c.id == case_id).values(updated_at=now))
    notifications.tell_department(conn, case_id=case_id, event="citizen_update", now=now, note=text or None)
    return event_id


def urge_allowed_from(conn: Connection, case: sa.Row) -> datetime | None:
    """When the case may next be urged (now or earlier: it may be urged now); None once it is finished."""
    if not CaseStatus(case.status).is_open or CaseStatus(case.status) in FINISHED:
        return None
    due = running_clock(case)[1]
    waited = case.created_at + URGE_AFTER
    first = min(waited, due) if due is not None else waited
    last = conn.execute(sa.select(sa.func.max(timeline.c.at)).where(
        timeline.c.case_id == case.id, timeline.c.event == "citizen_urged")).scalar()
    return max(first, last + URGE_EVERY) if last is not None else first


def urge_state(conn: Connection, case_id: int, now: datetime) -> dict[str, Any] | None:
    """What the reporter's page says of 催办: whether it can be pressed now, else from when, and how many
    times the case was urged; None once the case is finished."""
    case = conn.execute(sa.select(cases).where(cases.c.id == case_id)).one()
    allowed_from = urge_allowed_from(conn, case)
    if allowed_from is None:
        return None
    return {"allowed": allowed_from <= now, "allowed_from": allowed_from, "count": int(case.urge_count),
            "waiting_answer": case.urged_at is not None}


def urge(conn: Connection, token: str, now: datetime) -> int:
    """催办: the reporter asks for the open case to be hurried (by tracking code). Returns the event id."""
    return urge_case(conn, _open_case_of_token(conn, token).id, now, by=CITIZEN, channel=Channel.PORTAL)


def urge_case(conn: Connection, case_id: int, now: datetime, *, by: tuple[str, str], channel: str,
              internal_note: str | None = None) -> int:
    """催办 of an open case (the one it joined, for a merged one), by its reporter on the portal or taken down
    by the hotline from a caller (`by`: the actor's id and name, `internal_note` what the caller said): a
    public entry on its timeline, the case in the inbox of whoever holds it until a step of the work or a
    public reply answers it, and word to them (to the dispatch centre's supervisors too when a clock has
    already run out). Returns the event id."""
    case = conn.execute(sa.select(cases).where(cases.c.id == case_id).with_for_update()).first()
    if case is not None and case.merged_into_id is not None:
        case = conn.execute(sa.select(cases).where(cases.c.id == case.merged_into_id).with_for_update()).first()
    if case is None:
        raise NotFound("there is no such case", message_zh="没有该案件", code="case.not_found")
    case_id = case.id
    allowed_from = urge_allowed_from(conn, case)
    if allowed_from is None:
        raise InvalidTransition("the case is finished; if the problem is still there, say \"still not fixed\"",
                                message_zh="该诉求已办结；如问题仍在，请选择“问题仍未解决”", code="case.urge_closed")
    if allowed_from > now:
        shown = allowed_from.astimezone(city_timezone(conn)).strftime("%Y-%m-%d %H:%M")
        raise InvalidTransition(f"the case can be urged from {shown}", message_zh=f"该诉求可于 {shown} 之后催办",
                                code="case.urge_too_soon", details={"allowed_from": allowed_from.isoformat()})
    due = running_clock(case)[1]
    overdue = due is not None and due <= now
    count = int(case.urge_count) + 1
    event_id = add_event(conn, case_id, at=now, event="citizen_urged", actor=by[0], actor_name=by[1],
                         channel=channel, public=True, department_id=case.department_id,
                         detail={"count": count, "overdue": overdue})
    if internal_note:
        add_event(conn, case_id, at=now, event="note", actor=by[0], actor_name=by[1], channel=channel,
                  note=internal_note, public=False, department_id=case.department_id)
    # The inbox orders by the oldest urge not yet answered, so a second urge keeps the first one's time.
    conn.execute(cases.update().where(cases.c.id == case_id).values(
        urged_at=case.urged_at or now, urge_count=count, updated_at=now))
    notifications.citizen_urged(conn, case_id=case_id, now=now, overdue=overdue)
    return event_id


# What a mail header reads as more than one address, or as a name beside one ("a@x.cn, b@y.cn", "<b@y.cn>").
_NOT_IN_AN_ADDRESS = frozenset(',;<>"()[]\\:')


def looks_like_email(text: str) -> bool:
    """One @ with something on each side and a dot after it, no spaces: what a typo usually breaks. And one
    address only: nothing a mail header would read as a list, a display name or a line break."""
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain.strip(".") and "@" not in domain
                and not any(c.isspace() or not c.isprintable() or c in _NOT_IN_AN_ADDRESS for c in text))


# A phone number as people write it: digits, perhaps grouped by spaces, dashes or brackets, perhaps after
# + or China's 0086; 6 to 15 digits (E.164's most). The portal's "my reports" reads numbers so.
_PHONE = re.compile(r"\+?[\d\s()-]{6,30}")


def looks_like_phone(text: str) -> bool:
    """A phone number, nothing else: no letters, no second number after a comma, no line break."""
    digits = sum(c.isdigit() for c in text)
    return _PHONE.fullmatch(text) is not None and 6 <= digits <= 15 and "\n" not in text and "\r" not in text


def follow(conn: Connection, case_id: int, *, follower_key: str, now: datetime, email: str | None = None,
           lang: str | None = None) -> bool:
    """关注 / +1: count this person once for the case (a repeat only adds an e-mail address they did not give
    before). Returns True when they were not counted yet."""
    # Only a case the public sees can be followed by its id (an enterprise's 诉求 is not one of them).
    from wecity.cases.queries import PUBLISHED  # queries reads this module's counts: imported when needed

    row = conn.execute(sa.select(cases.c.status, cases.c.merged_into_id).where(cases.c.id == case_id, PUBLISHED)
                       ).first()
    if row is None:
        raise NotFound("there is no such case", message_zh="没有该案件", code="case.not_found")
    target = row.merged_into_id or case_id
    if email is not None and (len(email) > 200 or not looks_like_email(email)):
        raise ValidationFailed("that is not an e-mail address", message_zh="请输入正确的电子邮箱",
                               code="follow.email")
    existing = conn.execute(sa.select(case_followers.c.id, case_followers.c.email).where(
        case_followers.c.case_id == target, case_followers.c.follower_key == follower_key)).first()
    if existing is not None:
        if email and not existing.email:
            conn.execute(case_followers.update().where(case_followers.c.id == existing.id)
                         .values(email=email, lang=lang))
        return False
    conn.execute(case_followers.insert().values(case_id=target, follower_key=follower_key, email=email, lang=lang,
                                                at=now))
    return True


def follower_count(conn: Connection, case_id: int) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(case_followers)
                            .where(case_followers.c.case_id == case_id)).scalar_one())
