"""What a citizen can still say about a case after reporting it: an update or a photo (by tracking code),
and "me too" (关注 / +1) by anyone who has the same problem, without filing a report of their own.

"Still not fixed" is the engine's `citizen_reopen` (重办): it changes the case's state, these do not.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import notifications
from wecity.cases.choices import CaseStatus, Channel
from wecity.cases.models import case_followers, cases, reports
from wecity.cases.timeline import add_event
from wecity.core.errors import InvalidTransition, NotFound, ValidationFailed

MAX_UPDATE = 1000
# Done as far as the department is concerned: what the reporter can say now is "still not fixed".
FINISHED = (CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED, CaseStatus.MERGED)
CITIZEN = ("citizen", "市民 / citizen")


def _open_case_of_token(conn: Connection, token: str) -> sa.Row:
    row = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.merged_into_id)
                       .select_from(reports.join(cases, cases.c.id == reports.c.case_id))
                       .where(reports.c.token == token)).first()
    if row is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求", code="report.not_found")
    return row


def add_update(conn: Connection, token: str, now: datetime, note: str, *, media_id: str | None = None) -> int:
    """The reporter adds what they have seen since (text, a photo or both) to an open case: a public entry
    on its timeline, and the department is told. Returns the event id."""
    row = _open_case_of_token(conn, token)
    case_id = row.merged_into_id or row.id  # a merged report's words belong on the case it joined
    status = conn.execute(sa.select(cases.c.status).where(cases.c.id == case_id)).scalar_one()
    if CaseStatus(status) in FINISHED:
        raise InvalidTransition("the case is finished; say \"still not fixed\" instead",
                                message_zh="该诉求已办结；如问题仍在，请选择“问题仍未解决”", code="case.update_closed")
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


def looks_like_email(text: str) -> bool:
    """One @ with something on each side and a dot after it, no spaces: what a typo usually breaks."""
    local, at, domain = text.partition("@")
    return bool(at and local and "." in domain.strip(".") and "@" not in domain
                and not any(c.isspace() for c in text))


def follow(conn: Connection, case_id: int, *, follower_key: str, now: datetime, email: str | None = None,
           lang: str | None = None) -> bool:
    """关注 / +1: count this person once for the case (a repeat only adds an e-mail address they did not give
    before). Returns True when they were not counted yet."""
    row = conn.execute(sa.select(cases.c.status, cases.c.merged_into_id).where(cases.c.id == case_id)).first()
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
