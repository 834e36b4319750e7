"""好差评 of services: the applicant rates a finished application on the national five levels; a bad
rating opens a rectification (整改) the department must close within 15 working days, with a record of
its call back to the applicant (回访)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import inserted_id
from wecity.core.errors import AlreadyExists, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.geo.service import city_calendar
from wecity.govservice.applications import own_application
from wecity.govservice.clock import add_working_days, local_day
from wecity.govservice.models import application_ratings, rectifications
from wecity.govservice.steps import FINISHED, Status, log_event, tell_department
from wecity.identity.applicants import Applicant
from wecity.identity.audit import record_audit
from wecity.identity.service import StaffUser

# The national scale (GB/T 39735 好差评): 5 非常满意 ... 1 非常不满意.
LEVELS: dict[int, tuple[str, str]] = {5: ("非常满意", "very satisfied"), 4: ("满意", "satisfied"),
                                      3: ("基本满意", "fairly satisfied"), 2: ("不满意", "dissatisfied"),
                                      1: ("非常不满意", "very dissatisfied")}
BAD = 2  # this level and below is 差评
RECTIFY_DAYS = 15
TAGS: dict[str, tuple[str, str]] = {
    "fast": ("办理快", "fast"), "friendly": ("态度好", "friendly"), "once": ("一次办成", "done in one go"),
    "slow": ("办理慢", "slow"), "asked_again": ("重复提交材料", "asked for materials again"),
    "unclear": ("告知不清楚", "unclear guidance"), "attitude": ("态度差", "poor attitude"),
    "system": ("系统不好用", "system hard to use"),
}
MAX_COMMENT = 1000
MAX_RECTIFICATION_TEXT = 1000  # the call back and the measures of a closed rectification, each


def rate(conn: Connection, app_id: int, *, citizen: Applicant, level: int, tags: Sequence[str] = (),
         comment: str | None = None, now: datetime) -> int | None:
    """Record the rating; returns the rectification's id when the rating was bad."""
    row = own_application(conn, app_id, citizen, lock=True)
    if row.status not in FINISHED or row.submitted_at is None:
        raise InvalidTransition("an application can be rated once it is finished", message_zh="办结后方可评价",
                                code="govservice.not_finished")
    if row.status == Status.WITHDRAWN:  # the applicant ended it: no service of the department's to rate
        raise InvalidTransition("a withdrawn application is not rated", message_zh="已撤回的申请不能评价",
                                code="govservice.withdrawn")
    if level not in LEVELS:
        raise ValidationFailed("the level is 1 (very dissatisfied) to 5 (very satisfied)",
                               message_zh="评价等级应为 1（非常不满意）至 5（非常满意）", code="govservice.bad_level")
    unknown = [t for t in tags if t not in TAGS]
    if unknown:
        raise ValidationFailed(f"unknown tags: {', '.join(unknown)}", message_zh=f"未知标签：{'、'.join(unknown)}",
                               code="govservice.bad_tag")
    text = (comment or "").strip() or None
    if text is not None and len(text) > MAX_COMMENT:
        raise ValidationFailed(f"the comment is too long: at most {MAX_COMMENT:,} characters",
                               message_zh=f"评价内容过长：最多 {MAX_COMMENT} 字", code="govservice.comment_too_long")
    if conn.execute(sa.select(application_ratings.c.level).where(application_ratings.c.application_id == app_id)).first():
        raise AlreadyExists("this application was rated already", message_zh="该申请已评价")
    conn.execute(application_ratings.insert().values(application_id=app_id, level=level, tags=list(dict.fromkeys(tags)),
                                                     comment=text, rated_at=now))
    log_event(conn, app_id, "rated", actor=f"applicant:{citizen.id}", now=now, detail={"level": level, "tags": list(tags)})
    record_audit(conn, at=now, actor=f"applicant:{citizen.id}", action="application.rate",
                 target=f"application:{row.number}", detail={"level": level})
    if level > BAD:
        return None
    calendar = city_calendar(conn)
    rect_id = inserted_id(conn.execute(rectifications.insert().values(
        application_id=app_id, department_code=row.department_code, opened_at=now,
        due_on=add_working_days(calendar, local_day(now, calendar), RECTIFY_DAYS))))
    log_event(conn, app_id, "rectification_opened", actor="system", now=now, department_code=row.department_code)
    tell_department(conn, row.department_code, app_id, "bad_rating", now=now)
    return int(rect_id)


def close_rectification(conn: Connection, rect_id: int, *, staff: StaffUser, department_code: str | None,
                        callback_note: str, measures: str, now: datetime) -> None:
    """整改 done: what the department changed, and what the applicant said when called back."""
    row = conn.execute(sa.select(rectifications).where(rectifications.c.id == rect_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"no rectification {rect_id}", message_zh=f"整改任务 {rect_id} 不存在")
    if row.department_code != department_code and "admin" not in staff.roles:
        raise PermissionDenied("this rectification belongs to another department", message_zh="该整改任务不属于您的部门",
                               code="govservice.other_department")
    if row.closed_at is not None:
        raise InvalidTransition("this rectification is closed", message_zh="该整改任务已完成")
    callback, done = (callback_note or "").strip(), (measures or "").strip()
    if not callback or not done:
        raise ValidationFailed("record the call back and the measures taken", message_zh="请填写回访记录和整改措施",
                               code="govservice.reason_required")
    for text, what, what_zh in ((callback, "the call back", "回访记录"), (done, "the measures", "整改措施")):
        if len(text) > MAX_RECTIFICATION_TEXT:  # refused, never cut short: the record says what was written
            raise ValidationFailed(f"{what} is too long: at most {MAX_RECTIFICATION_TEXT:,} characters",
                                   message_zh=f"{what_zh}过长：最多 {MAX_RECTIFICATION_TEXT} 字",
                                   code="govservice.note_too_long")
    conn.execute(rectifications.update().where(rectifications.c.id == rect_id).values(
        callback_note=callback, measures=done, closed_at=now, closed_by=f"user:{staff.username}"))
    log_event(conn, row.application_id, "rectification_closed", actor=f"user:{staff.username}", now=now,
              department_code=row.department_code, note=done)
    record_audit(conn, at=now, actor=f"user:{staff.username}", action="rectification.close",
                 target=f"rectification:{rect_id}")
