"""The read model of digital government: what the portal, the API and other domains read of it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.errors import NotFound
from wecity.geo.service import city_calendar, city_today
from wecity.govservice.catalogue import CATALOGUE_CACHE
from wecity.govservice.clock import ClockReading, WorkingDays, local_day, read_clock
from wecity.govservice.models import (
    application_events,
    application_extensions,
    application_pauses,
    application_ratings,
    application_reviews,
    applications,
    certificates,
    matter_versions,
    matters,
    rectifications,
)
from wecity.govservice.steps import FINISHED, STATUS_LABELS, Status
from wecity.identity.models import applicants, departments, users

MAX_PAGE = 200


def catalogue_summaries(conn: Connection) -> list[dict[str, Any]]:
    """The active catalogue as search lists it, in department and code order. Kept per process for a few
    seconds and dropped when this process imports or withdraws a matter (wecity.core.cache): searched on
    every keystroke of the portal's search box, it changes a few times a year."""
    def load() -> list[dict[str, Any]]:
        rows = conn.execute(
            sa.select(matters.c.code, matters.c.name_zh, matters.c.name_en, matters.c.department_code,
                      matters.c.applicants, matters.c.online_level, matters.c.definition,
                      departments.c.name_zh.label("department_zh"), departments.c.name_en.label("department_en"))
            .join(departments, departments.c.code == matters.c.department_code).where(matters.c.active)
            .order_by(matters.c.department_code, matters.c.code))
        return [{"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en, "department": r.department_code,
                 "department_zh": r.department_zh, "department_en": r.department_en,
                 "applicants": r.applicants.split(), "online_level": r.online_level,
                 "legal_limit_days": r.definition["legal_limit_days"],
                 "promised_limit_days": r.definition["promised_limit_days"]} for r in rows]

    return cache.cached(conn, (CATALOGUE_CACHE,), load)


def search_matters(conn: Connection, *, text: str | None = None, department: str | None = None,
                   applicant_kind: str | None = None, online_level: str | None = None, limit: int = 50,
                   offset: int = 0) -> list[dict[str, Any]]:
    """The active catalogue, filtered; a name (Chinese or English, any case) or code containing `text`."""
    needle = (text or "").strip()[:100].casefold()
    found = [m for m in catalogue_summaries(conn)
             if (not needle or needle in m["name_zh"].casefold() or needle in m["name_en"].casefold()
                 or needle in m["code"].casefold())
             and (not department or m["department"] == department)
             and (not applicant_kind or applicant_kind in m["applicants"])
             and (not online_level or m["online_level"] == online_level)]
    start = max(offset, 0)
    return [dict(m) for m in found[start:start + min(max(limit, 1), MAX_PAGE)]]


def departments_with_matters(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en,
                                  sa.func.count().label("matters"))
                        .join(matters, matters.c.department_code == departments.c.code).where(matters.c.active)
                        .group_by(departments.c.code, departments.c.name_zh, departments.c.name_en)
                        .order_by(departments.c.code))
    return [dict(r._mapping) for r in rows]


def matter_detail(conn: Connection, code: str) -> dict[str, Any]:
    row = conn.execute(sa.select(matters, departments.c.name_zh.label("department_zh"),
                                 departments.c.name_en.label("department_en"))
                       .join(departments, departments.c.code == matters.c.department_code)
                       .where(matters.c.code == code, matters.c.active)).first()
    if row is None:
        raise NotFound(f"no matter {code} in the catalogue", message_zh=f"事项目录中没有事项 {code}")
    names = dict(conn.execute(sa.select(departments.c.code, departments.c.name_zh)).all())
    return {**row.definition, "version": row.version, "department_zh": row.department_zh,
            "department_en": row.department_en,
            "reviewer_names": [{"code": c, "name_zh": names.get(c, c)} for c in row.definition.get("reviewers", [])]}


def clock(row: Any, calendar: WorkingDays, today: date) -> ClockReading | None:
    """The clock of an accepted, unfinished application (None before acceptance and once finished)."""
    if row.accepted_at is None or row.limit_days is None or row.status in FINISHED:
        return None
    return read_clock(calendar, accepted=local_day(row.accepted_at, calendar), today=today, limit=row.limit_days,
                      paused_days=row.paused_days, extended_days=row.extended_days,
                      paused_since=local_day(row.paused_since, calendar) if row.paused_since else None)


def _summary(row: Any, calendar: WorkingDays, today: date) -> dict[str, Any]:
    reading = clock(row, calendar, today)
    zh, en = STATUS_LABELS[row.status]
    return {"id": row.id, "number": row.number, "matter_code": row.matter_code, "matter_zh": row.name_zh,
            "matter_en": row.name_en, "department": row.department_code, "status": row.status,
            "status_zh": zh, "status_en": en, "created_at": row.created_at, "submitted_at": row.submitted_at,
            "accepted_at": row.accepted_at, "finished_at": row.finished_at, "due_on": row.due_on,
            "clock": None if reading is None else {
                "used": reading.used, "allowed": reading.allowed, "remaining": reading.remaining,
                "paused": reading.paused, "warning": reading.warning, "overdue": reading.overdue}}


def _listing() -> sa.Select[Any]:
    return sa.select(applications, matters.c.name_zh, matters.c.name_en).join(
        matters, matters.c.code == applications.c.matter_code)


def applications_of(conn: Connection, applicant_ids: list[int], *, today: date) -> list[dict[str, Any]]:
    """An applicant's applications (and those of the enterprises they act for), newest first."""
    calendar = city_calendar(conn)
    rows = conn.execute(_listing().where(applications.c.applicant_id.in_(applicant_ids))
                        .order_by(applications.c.id.desc()).limit(MAX_PAGE))
    return [_summary(r, calendar, today) for r in rows]


QUEUES = ("open", "accept", "review", "decide", "supplement", "finished")


def department_queue(conn: Connection, department: str, *, which: str = "open", today: date,
                     limit: int = 100) -> list[dict[str, Any]]:
    """A department's applications: open ones by due date (nearest first), those waiting for its review,
    or the finished ones, newest first."""
    calendar = city_calendar(conn)
    query = _listing()
    if which == "review":
        pending = sa.select(application_reviews.c.application_id).where(
            application_reviews.c.department_code == department, application_reviews.c.outcome.is_(None))
        query = query.where(applications.c.id.in_(pending))
    else:
        query = query.where(applications.c.department_code == department)
    if which == "finished":
        query = query.where(applications.c.status.in_([str(s) for s in FINISHED]),
                            applications.c.submitted_at.is_not(None)).order_by(applications.c.finished_at.desc())
    else:
        wanted = {"accept": [Status.SUBMITTED], "decide": [Status.DECIDING], "supplement": [Status.SUPPLEMENT],
                  "review": [Status.IN_REVIEW]}.get(which, [Status.SUBMITTED, Status.SUPPLEMENT, Status.IN_REVIEW,
                                                           Status.DECIDING])
        query = query.where(applications.c.status.in_([str(s) for s in wanted])).order_by(
            applications.c.due_on.is_(None), applications.c.due_on, applications.c.submitted_at)
    rows = conn.execute(query.limit(min(max(limit, 1), MAX_PAGE)))
    return [_summary(r, calendar, today) for r in rows]


def applicant_view(conn: Connection, app_id: int, *, now: datetime) -> dict[str, Any]:
    """`application_view` as its applicant sees it: officers by name and department, never by their sign-in
    names (`user:<username>` would let an unhappy applicant lock the officer's account with bad passwords)."""
    view = _without_sign_in_names(application_view(conn, app_id, today=city_today(conn, now)))
    if view["status"] == "draft":
        # A certificate that spared a material may have been revoked or have expired since the draft began:
        # the page then asks for the material (submission would refuse it as it stands).
        from wecity.govservice.certificates import verify_number

        for state in view["materials"].values():
            by = state.get("by")
            if state.get("state") == "replaced" and by and by != "profile":
                state["lapsed"] = verify_number(conn, by, now).status != "valid"
    return view


def _without_sign_in_names(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("user:"):
        return "staff"
    if isinstance(value, dict):
        return {k: _without_sign_in_names(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_sign_in_names(v) for v in value]
    return value


def application_view(conn: Connection, app_id: int, *, today: date) -> dict[str, Any]:
    """Everything about one application: its form and where each value came from, materials, timeline,
    pauses, extensions, the parallel reviews, the certificate, the rating and any rectification."""
    row = conn.execute(_listing().where(applications.c.id == app_id)).first()
    if row is None:
        raise NotFound(f"no application {app_id}", message_zh=f"申请 {app_id} 不存在")
    calendar = city_calendar(conn)
    definition = conn.execute(sa.select(matter_versions.c.definition).where(
        matter_versions.c.code == row.matter_code, matter_versions.c.version == row.matter_version)).scalar_one()
    holder = conn.execute(sa.select(applicants.c.kind, applicants.c.display_name)
                          .where(applicants.c.id == row.applicant_id)).one()

    def rows_of(table: sa.Table, order: sa.Column[Any]) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(table).where(table.c.application_id == app_id).order_by(order))]

    names = {r.code: (r.name_zh, r.name_en) for r in conn.execute(
        sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en))}
    events = rows_of(application_events, application_events.c.id)
    staff_names = dict(conn.execute(sa.select(users.c.username, users.c.display_name).where(
        users.c.username.in_({e["actor"][5:] for e in events if e["actor"].startswith("user:")}))).all())
    for event in events:
        event["actor_name"] = _actor_name(event["actor"], staff_names)
        event["department_zh"], event["department_en"] = names.get(event["department_code"] or "", (None, None))
    reviews = rows_of(application_reviews, application_reviews.c.id)
    for review in reviews:
        review["department_zh"], review["department_en"] = names.get(review["department_code"],
                                                                     (review["department_code"],) * 2)
    rating = conn.execute(sa.select(application_ratings).where(application_ratings.c.application_id == app_id)).first()
    rect = conn.execute(sa.select(rectifications).where(rectifications.c.application_id == app_id)).first()
    issued = conn.execute(sa.select(certificates.c.number, certificates.c.type, certificates.c.issued_at,
                                    certificates.c.revoked_at).where(certificates.c.application_id == app_id)).all()
    return {**_summary(row, calendar, today), "applicant_id": row.applicant_id, "filed_by": row.filed_by,
            "applicant_kind": holder.kind, "applicant_name": holder.display_name,
            "matter": definition, "matter_version": row.matter_version, "form_data": row.form_data,
            "prefill": row.prefill, "materials": row.materials, "documents_spared": row.documents_spared,
            "limit_days": row.limit_days, "paused_days": row.paused_days, "extended_days": row.extended_days,
            "outcome": row.outcome,
            "department_zh": names.get(row.department_code, (row.department_code,) * 2)[0],
            "department_en": names.get(row.department_code, (row.department_code,) * 2)[1],
            "events": events,
            "pauses": rows_of(application_pauses, application_pauses.c.id),
            "extensions": rows_of(application_extensions, application_extensions.c.id),
            "reviews": reviews,
            "certificates": [dict(c._mapping) for c in issued],
            "rating": None if rating is None else dict(rating._mapping),
            "rectification": None if rect is None else dict(rect._mapping)}


def _actor_name(actor: str, staff_names: dict[str, str]) -> dict[str, str]:
    """Who took a step, as the timeline names them: the staff member, the applicant, or the platform."""
    if actor.startswith("user:"):
        name = staff_names.get(actor[5:], actor[5:])
        return {"zh": name, "en": name}
    if actor.startswith("applicant:"):
        return {"zh": "申请人", "en": "the applicant"}
    return {"zh": "系统", "en": "the platform"}


def open_rectifications(conn: Connection, department: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(rectifications, applications.c.number, application_ratings.c.level,
                                  application_ratings.c.comment)
                        .join(applications, applications.c.id == rectifications.c.application_id)
                        .join(application_ratings, application_ratings.c.application_id == rectifications.c.application_id)
                        .where(rectifications.c.department_code == department, rectifications.c.closed_at.is_(None))
                        .order_by(rectifications.c.due_on))
    return [dict(r._mapping) for r in rows]


def running_clocks(conn: Connection) -> list[Any]:
    """Accepted applications whose clock runs (not paused, not finished): what the clock check reads."""
    return list(conn.execute(sa.select(applications).where(
        applications.c.accepted_at.is_not(None), applications.c.finished_at.is_(None),
        applications.c.paused_since.is_(None), applications.c.due_on.is_not(None),
        sa.or_(applications.c.warned_at.is_(None), applications.c.escalated_at.is_(None)))))


def certificates_of_type(conn: Connection, kind: str, *, now: Any, limit: int, offset: int
                         ) -> tuple[int, list[dict[str, Any]]]:
    """Valid (issued, not revoked, not expired) certificates of one type, oldest first: what the data
    platform serves of them. Each row: number, issued_at, valid_until, and the certificate's fields."""
    valid = sa.and_(certificates.c.type == kind, certificates.c.revoked_at.is_(None),
                    sa.or_(certificates.c.valid_until.is_(None), certificates.c.valid_until > now))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(certificates).where(valid)).scalar_one())
    # `_record` lets the data platform tell the holder who read it (holder_phones).
    rows = conn.execute(sa.select(certificates.c.number, certificates.c.issued_at, certificates.c.valid_until,
                                  certificates.c.document).where(valid).order_by(certificates.c.id)
                        .limit(limit).offset(offset))
    return total, [{"number": r.number, "issued_at": r.issued_at, "valid_until": r.valid_until,
                    **dict((r.document or {}).get("fields") or {}), "_record": f"certificate:{r.number}"}
                   for r in rows]


def application_records(conn: Connection, matter_code: str | None, *, calendar: WorkingDays,
                        limit: int) -> list[dict[str, Any]]:
    """Submitted applications (of one matter, or all) as rows of the data platform, oldest first: number,
    matter, department, when submitted and finished, whether on time, the outcome (`decision`), the rating,
    the applicant's name and ID number, and every answer of the form by its field name. Each row carries
    `_record` ("application:<number>"), by which the data platform tells the filer who read it (filer_phones)."""
    query = (sa.select(applications, applicants.c.display_name, applicants.c.profile, application_ratings.c.level)
             .select_from(applications.join(applicants, applicants.c.id == applications.c.applicant_id)
                          .outerjoin(application_ratings, application_ratings.c.application_id == applications.c.id))
             .where(applications.c.submitted_at.is_not(None)).order_by(applications.c.id).limit(limit))
    if matter_code:
        query = query.where(applications.c.matter_code == matter_code)
    out = []
    for r in conn.execute(query):
        finished = local_day(r.finished_at, calendar) if r.finished_at else None
        out.append({**dict(r.form_data or {}), "number": r.number, "matter_code": r.matter_code,
                    "department": r.department_code, "submitted_at": r.submitted_at, "finished_at": r.finished_at,
                    "on_time": None if finished is None or r.due_on is None else finished <= r.due_on,
                    "decision": r.outcome, "rating": r.level, "applicant_name": r.display_name,
                    "applicant_id_number": (r.profile or {}).get("id_number"),
                    "_record": f"application:{r.number}"})
    return out


def filer_phones(conn: Connection, numbers: list[str]) -> dict[str, str]:
    """The phone number of the citizen who filed each application (by number), the person it is about."""
    rows = conn.execute(sa.select(applications.c.number, applicants.c.phone)
                        .join(applicants, applicants.c.id == applications.c.filed_by)
                        .where(applications.c.number.in_(numbers), applicants.c.phone.is_not(None)))
    return {r.number: r.phone for r in rows}


def holder_phones(conn: Connection, numbers: list[str]) -> dict[str, str]:
    """The phone number of each certificate's holder (by number), where the holder is a citizen."""
    rows = conn.execute(sa.select(certificates.c.number, applicants.c.phone)
                        .join(applicants, applicants.c.id == certificates.c.holder_id)
                        .where(certificates.c.number.in_(numbers), applicants.c.phone.is_not(None)))
    return {r.number: r.phone for r in rows}
