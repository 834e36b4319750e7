"""Read side of the case engine, the one read model of cases: queues by SLA urgency, case detail, public and
tracking views, nearby cases, a citizen's own reports. The staff API and the portal both call these."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import (
    ACK_CLOCK_STATES,
    CENTRE_HOLDS,
    DEPARTMENT_WORK,
    DISPATCH_WORK,
    MERGEABLE,
    OPEN_STATES,
    RESOLVE_CLOCK_STATES,
    UNPUBLISHED_CHANNELS,
    CaseStatus,
    Priority,
    running_clock,
)
from wecity.cases.citizen_voice import follower_count, urge_state
from wecity.cases.models import cases, categories, ratings, reports, timeline
from wecity.core.errors import NotFound, ValidationFailed
from wecity.geo.coords import distance_m, metres_box
from wecity.geo.models import areas
from wecity.geo.service import city_timezone
from wecity.identity.choices import Role
from wecity.identity.models import departments, users
from wecity.identity.service import StaffUser, mask_phone

QUEUES = ("department", "dispatch", "overdue", "all", "followup", "mine")
SORTS = ("due", "priority")

# What a neighbour may see of a timeline event (no actor, no department, nothing internal).
PUBLIC_EVENT_FIELDS = ("at", "event", "to_status", "note", "reason", "media_id", "channel")


def _case_select() -> sa.Select[Any]:
    return sa.select(
        cases, categories.c.name_zh.label("category_zh"), categories.c.name_en.label("category_en"),
        departments.c.name_zh.label("department_zh"), departments.c.name_en.label("department_en"),
        areas.c.name_zh.label("area_zh"), areas.c.name_en.label("area_en"),
    ).select_from(
        cases.join(categories, categories.c.code == cases.c.category_code)
        .outerjoin(departments, departments.c.id == cases.c.department_id)
        .outerjoin(areas, areas.c.id == cases.c.area_id))


def next_deadline(row: Any) -> datetime | None:
    return running_clock(row)[1]


# The same rule in SQL, so that queues are ordered (and cut) by the database.
RUNNING_DUE = sa.case(
    (cases.c.status.in_([s.value for s in ACK_CLOCK_STATES]), cases.c.ack_due_at),
    (cases.c.status.in_([s.value for s in RESOLVE_CLOCK_STATES]), cases.c.resolve_due_at),
    else_=None)
# Escalated by the SLA clock that still runs: the acknowledge clock's while waiting for 签收, the resolve
# clock's while the department works on it.
_ESCALATED_OPEN = sa.or_(
    sa.and_(cases.c.ack_escalated.is_(True), cases.c.status.in_([s.value for s in ACK_CLOCK_STATES])),
    sa.and_(cases.c.resolve_escalated.is_(True),
            cases.c.status.in_([s.value for s in (*ACK_CLOCK_STATES, *RESOLVE_CLOCK_STATES)])))
# A citizen's 催办 not yet answered, on a case still open.
_URGED_OPEN = sa.and_(cases.c.urged_at.is_not(None), cases.c.status.in_([s.value for s in OPEN_STATES]))
# Highest priority first when a queue is sorted on it.
_PRIORITY_RANK = sa.case({p.value: -p.rank for p in Priority}, value=cases.c.priority, else_=0)
_DISPATCH_RANK = sa.case({s.value: i for i, s in enumerate(DISPATCH_WORK)}, value=cases.c.status,
                         else_=len(DISPATCH_WORK))


def case_summary(row: Any, now: datetime) -> dict[str, Any]:
    clock, due = running_clock(row)
    return {
        "id": row.id, "status": row.status, "category_code": row.category_code,
        "category_zh": row.category_zh, "category_en": row.category_en,
        "department_id": row.department_id, "department_zh": row.department_zh, "department_en": row.department_en,
        "area_id": row.area_id, "area_zh": row.area_zh, "area_en": row.area_en,
        "lat": row.lat, "long": row.long, "address": row.address, "description": row.description,
        "source": row.source, "created_at": row.created_at, "updated_at": row.updated_at,
        "ack_due_at": row.ack_due_at, "resolve_due_at": row.resolve_due_at, "clock": clock, "next_due_at": due,
        "seconds_left": None if due is None else int((due - now).total_seconds()),
        "overdue": due is not None and due < now, "ack_escalated": row.ack_escalated,
        "resolve_escalated": row.resolve_escalated, "followup_open": row.followup_open,
        "reopen_count": row.reopen_count, "merged_into_id": row.merged_into_id,
        "priority": row.priority, "assignee_id": row.assignee_id,
        "urged_at": row.urged_at, "urge_count": row.urge_count,
    }


def queue(conn: Connection, user: StaffUser, now: datetime, *, name: str = "department",
          status: str | None = None, limit: int = 200, sort: str = "due") -> list[dict[str, Any]]:
    """Cases for this user, most urgent first: the running clock nearest to running out (overdue ones at
    the top), then the dispatch centre's order of work, then the longest waiting. Ordered and cut by the
    database, so a long queue never loses its most urgent cases.

    department: the user's department's work (dispatched to resolved); dispatch: what the dispatch centre
    must act on (returned, not yet dispatched, waiting for 核查 or 结案, follow-ups); overdue: running clocks
    past their deadline; followup: open follow-ups; all: every open case; mine: the department's work
    assigned to the user. Users who are neither dispatchers nor supervisors only ever see their own
    department's cases. `sort="priority"` puts the highest priority first, then the order above.
    """
    if sort not in SORTS:
        raise ValidationFailed(f"no sort {sort!r}; one of {', '.join(SORTS)}", message_zh=f"没有排序方式 {sort}",
                               code="case.sort")
    if name not in QUEUES:
        raise ValidationFailed(f"no queue {name!r}; one of {', '.join(QUEUES)}", message_zh=f"没有队列 {name}",
                               code="case.queue")
    query = _case_select()
    sees_all = user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)
    if name in ("department", "mine") or not sees_all:
        query = query.where(cases.c.department_id == user.department_id)
    if name in ("department", "mine"):
        query = query.where(cases.c.status.in_([s.value for s in DEPARTMENT_WORK]))
        if name == "mine":
            query = query.where(cases.c.assignee_id == user.id)
    elif name == "dispatch":
        query = query.where(sa.or_(
            cases.c.status.in_([s.value for s in DISPATCH_WORK]),
            sa.and_(cases.c.department_id.is_(None), cases.c.status.in_([s.value for s in OPEN_STATES])),
            cases.c.followup_open.is_(True)))
    elif name == "overdue":
        query = query.where(RUNNING_DUE < now)
    elif name == "followup":
        query = query.where(cases.c.followup_open.is_(True))
    else:
        query = query.where(cases.c.status.in_([s.value for s in OPEN_STATES]))
    if status:
        query = query.where(cases.c.status == status)
    order = [RUNNING_DUE.is_(None), RUNNING_DUE, _DISPATCH_RANK, cases.c.updated_at, cases.c.id]
    if sort == "priority":
        order.insert(0, _PRIORITY_RANK)
    query = query.order_by(*order).limit(limit)
    return [case_summary(r, now) for r in conn.execute(query)]


def _inbox_parts(user: StaffUser) -> dict[str, list[Any]]:
    """The conditions of each part of the inbox, for `inbox` and `inbox_counts` alike: the user's
    department's cases (urged ones while it holds them), or every department's for supervisors and
    dispatchers."""
    sees_all = user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)
    mine = [] if sees_all else [cases.c.department_id == user.department_id]
    held = [] if sees_all else [cases.c.status.not_in([s.value for s in CENTRE_HOLDS])]
    return {"escalated": [*mine, _ESCALATED_OPEN], "urged": [*mine, *held, _URGED_OPEN],
            "followups": [*mine, cases.c.followup_open.is_(True)]}


def inbox(conn: Connection, user: StaffUser, now: datetime, *, limit: int = 200) -> dict[str, list[dict[str, Any]]]:
    """What waits for an answer: open cases escalated (催办) by the SLA clock, open cases a reporter urged
    (市民催办) that nobody has moved or answered in public since, and low ratings awaiting a follow-up; the
    user's department's, or every department's for supervisors and dispatchers."""
    parts = _inbox_parts(user)
    escalated = _case_select().where(*parts["escalated"])
    followups = _case_select().where(*parts["followups"])
    urged = _case_select().where(*parts["urged"]).order_by(cases.c.urged_at, cases.c.id).limit(limit)
    order = (RUNNING_DUE.is_(None), RUNNING_DUE, cases.c.updated_at, cases.c.id)
    return {"escalated": [case_summary(r, now) for r in conn.execute(escalated.order_by(*order).limit(limit))],
            "urged": [case_summary(r, now) for r in conn.execute(urged)],
            "followups": [case_summary(r, now) for r in conn.execute(followups.order_by(cases.c.updated_at.desc(),
                                                                                       cases.c.id).limit(limit))]}


def inbox_counts(conn: Connection, user: StaffUser) -> dict[str, int]:
    """How many cases `inbox` lists in each part (for the staff menu)."""
    count = sa.select(sa.func.count()).select_from(cases)
    return {name: int(conn.execute(count.where(*conditions)).scalar_one())
            for name, conditions in _inbox_parts(user).items()}


def case_departments(conn: Connection, case_ids: list[int]) -> dict[int, int | None]:
    """The responsible department of each case."""
    if not case_ids:
        return {}
    return {int(r.id): r.department_id for r in conn.execute(
        sa.select(cases.c.id, cases.c.department_id).where(cases.c.id.in_(case_ids)))}


def first_photos(conn: Connection, case_ids: list[int]) -> dict[int, str]:
    """The first photo sent with each case's reports, for thumbnails in lists."""
    found: dict[int, str] = {}
    if not case_ids:
        return found
    for case_id, media in conn.execute(sa.select(reports.c.case_id, reports.c.media_ids)
                                       .where(reports.c.case_id.in_(case_ids)).order_by(reports.c.id)):
        if media and case_id not in found:
            found[int(case_id)] = str(media[0])
    return found


def _get_case(conn: Connection, case_id: int) -> Any:
    row = conn.execute(_case_select().where(cases.c.id == case_id)).first()
    if row is None:
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    return row


def case_detail(conn: Connection, case_id: int, now: datetime, *, reveal_contacts: bool = False) -> dict[str, Any]:
    """Everything staff see on a case: its reports (contacts masked unless revealed), photos, the whole
    timeline with each step's department, ratings, the assignee."""
    row = _get_case(conn, case_id)
    detail = case_summary(row, now)
    detail["status_notes"] = row.status_notes
    detail["evidence_media_id"] = row.evidence_media_id
    detail["followers"] = follower_count(conn, case_id)
    detail["evidence_media_ids"] = evidence_photos(row)
    detail["reports"] = [_staff_report(r, reveal_contacts) for r in conn.execute(
        sa.select(reports).where(reports.c.case_id == case_id).order_by(reports.c.id))]
    detail["photos"] = [m for r in detail["reports"] for m in r["media_ids"]]
    given: dict[str, Any] = {}
    for r in detail["reports"]:
        for code, value in (r["attributes"] or {}).items():
            given.setdefault(code, value)
    detail["answers"] = labelled_answers(conn, row.category_code, given)
    detail["timeline"] = [dict(r._mapping) for r in conn.execute(
        sa.select(timeline, departments.c.name_zh.label("department_zh"), departments.c.name_en.label("department_en"))
        .select_from(timeline.outerjoin(departments, departments.c.id == timeline.c.department_id))
        .where(timeline.c.case_id == case_id).order_by(timeline.c.at, timeline.c.id))]
    rating = conn.execute(sa.select(ratings).where(ratings.c.case_id == case_id).order_by(ratings.c.id)).all()
    detail["ratings"] = [{"stars": x.stars, "tags": x.tags or [], "comment": x.comment, "at": x.at} for x in rating]
    detail["assignee"] = None if row.assignee_id is None else conn.execute(
        sa.select(users.c.display_name).where(users.c.id == row.assignee_id)).scalar()
    return detail


def evidence_photos(row: Any) -> list[str]:
    """Every evidence photo of the resolution (cases resolved before several were kept have one)."""
    if row.evidence_media_ids:
        return [str(m) for m in row.evidence_media_ids]
    return [row.evidence_media_id] if row.evidence_media_id else []


def _staff_report(r: Any, reveal_contacts: bool) -> dict[str, Any]:
    # Never the tracking code: it is the reporter's key to rate, reopen and urge as the citizen, and a
    # handler holding it could confirm their own fix (核查) past the separation of duties.
    name = _full_name(r.first_name, r.last_name)
    return {
        "id": r.id, "channel": r.channel, "description": r.description, "lat": r.lat,
        "long": r.long, "address": r.address, "attributes": r.attributes, "media_ids": r.media_ids or [],
        "requested_at": r.requested_at,
        "name": name if reveal_contacts else (name[0] + "*" * (len(name) - 1) if name else None),
        "phone": r.phone if reveal_contacts else mask_phone(r.phone),
        "email": r.email if reveal_contacts else _mask_email(r.email),
    }


def _full_name(first: str | None, last: str | None) -> str | None:
    parts = [p for p in (last, first) if p]
    if not parts:
        return None
    # Chinese names are written family name first, without a space; Western ones given name first.
    if all(ord(ch) > 0x2E80 for p in parts for ch in p):
        return "".join(parts)
    return " ".join(reversed(parts))


def _mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return email
    local, domain = email.split("@", 1)
    return f"{local[:1]}***@{domain}"


def _public_events(conn: Connection, case_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(timeline).where(timeline.c.case_id == case_id, timeline.c.public.is_(True))
                        .order_by(timeline.c.at, timeline.c.id))
    events = []
    for r in rows:
        event = {k: getattr(r, k) for k in PUBLIC_EVENT_FIELDS}
        stars = (r.detail or {}).get("stars") if isinstance(r.detail, dict) else None
        event["detail"] = {"stars": stars} if stars else None
        events.append(event)
    return events


def tracking_view(conn: Connection, token: str, now: datetime) -> dict[str, Any]:
    """What a citizen sees with a tracking code: the case's public fields and public timeline, no one's data."""
    found = report_by_token(conn, token)
    report, case = found["report"], found["case"]
    status = CaseStatus(case["status"])
    return {
        "token": token, "service_request_id": str(report["id"]), "case_id": case["id"], "status": status.value,
        "status_zh": status.label_zh, "status_en": status.label_en,
        "category_zh": case["category_zh"], "category_en": case["category_en"],
        "department_zh": case["department_zh"], "department_en": case["department_en"],
        "area_zh": case["area_zh"], "area_en": case["area_en"], "description": report["description"],
        "lat": report["lat"], "long": report["long"], "requested_at": report["requested_at"],
        "expected_at": case["resolve_due_at"], "media_ids": report["media_ids"] or [],
        "evidence_media_id": case["evidence_media_id"], "evidence_media_ids": case["evidence_media_ids"],
        "timeline": [{k: e[k] for k in ("at", "event", "to_status", "note", "media_id", "channel")}
                     for e in case["timeline"]],
        "can_rate": found["rating"] is None and status in (CaseStatus.RESOLVED, CaseStatus.VERIFIED,
                                                           CaseStatus.CLOSED),
        "rating": found["rating"]["stars"] if found["rating"] else None,
        "can_reopen": can_say_not_fixed(case, now),
        "urge": urge_state(conn, case["id"], now),
    }


def can_say_not_fixed(case: dict[str, Any], now: datetime) -> bool:
    """Whether the reporter may still say "still not fixed" (重办): within 7 days of its being resolved or
    closed (the engine's REOPEN_WINDOW decides; this only spares them a form that would be refused)."""
    status = CaseStatus(case["status"])
    if status not in (CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED):
        return False
    since = case.get("closed_at") or case.get("resolved_at")
    return since is None or (now - since).days < 7


def report_by_token(conn: Connection, token: str) -> dict[str, Any]:
    """The reporter's view: their report, its case (the public view) and their rating, if any."""
    row = conn.execute(sa.select(reports.c.id, reports.c.case_id, reports.c.token, reports.c.requested_at,
                                 reports.c.description, reports.c.media_ids, reports.c.lat, reports.c.long,
                                 reports.c.service_code, reports.c.attributes)
                       .where(reports.c.token == token)).first()
    if row is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求",
                       code="report.not_found")
    rating = conn.execute(sa.select(ratings.c.stars, ratings.c.tags, ratings.c.comment, ratings.c.at)
                          .where(ratings.c.report_id == row.id)).first()
    return {"report": dict(row._mapping), "case": _public_view(conn, _get_case(conn, row.case_id)),
            "rating": dict(rating._mapping) if rating else None}


def public_view(conn: Connection, case_id: int) -> dict[str, Any]:
    """A case as anyone may see it (a neighbour following a problem already reported): no personal data;
    none at all of a case not published (an enterprise's 诉求, which its reporter follows by tracking code)."""
    row = _get_case(conn, case_id)
    if (row.status == CaseStatus.MERGED and row.merged_into_id is None) or not _is_published(row):
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    return _public_view(conn, row)


def public_case(conn: Connection, case_id: int) -> dict[str, Any]:
    """The public view in the staff API's words: `case_id`, and `reports` as their number."""
    view = public_view(conn, case_id)
    return {"case_id": view.pop("id"), "reports": view.pop("report_count"), **view}


# Cases anyone may see: those of channels the public is shown (NULL: opened before cases kept one).
PUBLISHED = sa.or_(cases.c.channel.is_(None), cases.c.channel.not_in([str(c) for c in UNPUBLISHED_CHANNELS]))


def _is_published(row: Any) -> bool:
    return row.channel not in {str(c) for c in UNPUBLISHED_CHANNELS}


def _public_view(conn: Connection, row: Any) -> dict[str, Any]:
    status = CaseStatus(row.status)
    given = conn.execute(sa.select(reports.c.media_ids, reports.c.attributes).where(reports.c.case_id == row.id)
                         .order_by(reports.c.id)).all()
    photos = [g.media_ids for g in given]
    # The details the reporters gave (the category's questions, e.g. 井盖情况), the first answer to each.
    answers: dict[str, Any] = {}
    for g in given:
        for code, value in (g.attributes or {}).items():
            if code != "media_url":
                answers.setdefault(code, value)
    return {
        "id": row.id, "status": row.status, "status_zh": status.label_zh, "status_en": status.label_en,
        "merged_into_id": row.merged_into_id, "category_zh": row.category_zh, "category_en": row.category_en,
        "department_zh": row.department_zh, "department_en": row.department_en, "area_zh": row.area_zh,
        "area_en": row.area_en, "address": row.address, "lat": row.lat, "long": row.long,
        "created_at": row.created_at, "closed_at": row.closed_at, "expected_at": row.resolve_due_at,
        "resolve_due_at": row.resolve_due_at, "description": row.description, "report_count": len(photos),
        "photos": [m for ids in photos for m in (ids or [])], "evidence_media_id": row.evidence_media_id,
        "evidence_media_ids": evidence_photos(row),
        "timeline": _public_events(conn, row.id), "resolved_at": row.resolved_at,
        "attributes": labelled_answers(conn, row.category_code, answers), "followers": follower_count(conn, row.id),
    }


def labelled_answers(conn: Connection, category_code: str, answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The reporter's answers to the category's questions, each with its question and its chosen value in
    both languages (a value the definitions do not list is shown as given)."""
    if not answers:
        return []
    questions = conn.execute(sa.select(categories.c.attributes).where(categories.c.code == category_code)
                             ).scalar() or []
    out = []
    for q in questions:
        if q.get("code") not in answers:
            continue
        given = answers[q["code"]]
        picked = [given] if not isinstance(given, list) else given
        names = {v.get("key"): v for v in q.get("values") or []}
        out.append({
            "code": q["code"], "question_zh": q.get("description_zh") or q.get("description") or q["code"],
            "question_en": q.get("description_en") or q.get("description") or q["code"],
            "answer_zh": "、".join(str(names[p].get("name_zh") or names[p].get("name") or p) if p in names else str(p)
                                  for p in picked),
            "answer_en": ", ".join(str(names[p].get("name_en") or names[p].get("name") or p) if p in names else str(p)
                                   for p in picked)})
    return out


def nearby_open_cases(conn: Connection, *, lat: float, lon: float, category_code: str | None, now: datetime,
                      radius_m: float = 200.0, limit: int = 10, published_only: bool = True) -> list[dict[str, Any]]:
    """Open cases near a point (public fields only; published cases only unless staff ask, for merging),
    nearest first: "already reported — follow it"."""
    south, west, north, east = metres_box(lat, lon, radius_m)
    query = _case_select().where(cases.c.status.in_([s.value for s in MERGEABLE]),
                                 cases.c.lat.between(south, north), cases.c.long.between(west, east))
    if published_only:
        query = query.where(PUBLISHED)
    if category_code:
        query = query.where(cases.c.category_code == category_code)
    found = []
    for row in conn.execute(query):  # the box holds few cases: every one is measured, none cut unmeasured
        d = distance_m(lat, lon, row.lat, row.long)
        if d <= radius_m:
            status = CaseStatus(row.status)
            found.append({"case_id": row.id, "distance_m": round(d), "category_code": row.category_code,
                          "category_zh": row.category_zh, "category_en": row.category_en,
                          "status": row.status, "status_zh": status.label_zh, "status_en": status.label_en,
                          "created_at": row.created_at, "lat": row.lat, "long": row.long,
                          "description": row.description})
    found.sort(key=lambda c: (c["distance_m"], c["case_id"]))
    return found[:limit]


def reports_for_phone(conn: Connection, phones: list[str], *, limit: int = 100) -> list[dict[str, Any]]:
    """A citizen's own reports (by the phone numbers they proved they hold), newest first."""
    rows = conn.execute(sa.select(reports.c.token, reports.c.requested_at, reports.c.case_id, cases.c.status,
                                  categories.c.name_zh.label("category_zh"), categories.c.name_en.label("category_en"))
                        .select_from(reports.join(cases, cases.c.id == reports.c.case_id)
                                     .join(categories, categories.c.code == reports.c.service_code))
                        .where(reports.c.phone.in_(phones)).order_by(reports.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]


# -- cases as rows of the data platform ---------------------------------------------------------------

def _first_reporter_phone() -> Any:
    return (sa.select(reports.c.phone).where(reports.c.case_id == cases.c.id).order_by(reports.c.id).limit(1)
            .correlate(cases).scalar_subquery())


def case_record_columns() -> dict[str, Any]:
    """What a case offers the data platform, by the name a dataset's field uses for it."""
    return {"case_id": cases.c.id, "category": cases.c.category_code, "district": areas.c.code,
            "department": departments.c.code, "status": cases.c.status, "source": cases.c.source,
            "created_at": cases.c.created_at, "closed_at": cases.c.closed_at, "lat": cases.c.lat,
            "long": cases.c.long, "address": cases.c.address, "description": cases.c.description,
            "reporter_phone": _first_reporter_phone()}


def iso_utc(conn: Connection, column: Any) -> Any:
    """A timestamp column as ISO 8601 text in UTC to the millisecond (`2026-12-04T07:30:00.000Z`), made by
    the database: a page of a thousand rows then needs no per-value work in Python."""
    if conn.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
    return sa.func.strftime("%Y-%m-%dT%H:%M:%fZ", column)  # SQLite keeps naive UTC text


@dataclass
class RecordPage:
    """One page of records for the data platform: the rows as tuples of JSON-ready values in `columns`
    order, what each row is (`records`, "case:<id>"), and how many rows pass the filters in all (None when
    not counted). Tuples rather than dicts: a page may be ten thousand rows, and a bulk reader takes them
    as lists."""

    total: int | None
    columns: list[str]
    rows: list[Any]
    records: list[str]


def case_records(conn: Connection, columns: list[str], where: dict[str, list[Any]], *, limit: int, offset: int,
                 with_total: bool = True, row_of: Callable[[tuple[Any, ...]], Any] | None = None,
                 ) -> RecordPage:
    """Cases (merged ones excepted) that pass `where` ({column: allowed values}), one page of them oldest
    first, with the `columns` asked for; timestamps as ISO 8601 UTC text. Without `with_total` the total is
    None: a client paging through the rows asks for it once. `row_of` makes each row from the database's
    (the columns, then the case id), in the one pass over the page (the data platform masks so)."""
    # One row more than the page: when it does not come, this page is the last and the total is known
    # without counting (a reader taking a dataset in one call, the usual bulk read, never pays for a count).
    raw = _driver_rows(conn, case_records_query(conn, columns, where, limit=limit + 1, offset=offset))
    total: int | None = None
    if len(raw) > limit:
        del raw[limit:]
    elif raw or offset == 0:
        total = offset + len(raw)
    if not with_total:
        total = None
    elif total is None:
        joined, conditions = _records_from(where)
        total = int(conn.execute(sa.select(sa.func.count()).select_from(joined).where(*conditions)).scalar_one())
    return RecordPage(total, list(columns), [r[:-1] for r in raw] if row_of is None else [row_of(r) for r in raw],
                      [f"case:{r[-1]}" for r in raw])


def _records_from(where: dict[str, list[Any]]) -> tuple[Any, list[Any]]:
    """The cases (with their district and department) and the conditions `where` puts on them."""
    known = case_record_columns()
    joined = (cases.outerjoin(areas, areas.c.id == cases.c.area_id)
              .outerjoin(departments, departments.c.id == cases.c.department_id))
    return joined, [cases.c.merged_into_id.is_(None), *(known[name].in_(values) for name, values in where.items())]


def case_records_query(conn: Connection, columns: list[str], where: dict[str, list[Any]], *, limit: int,
                       offset: int) -> sa.Select[Any]:
    """The page's SELECT: the columns asked for (times formatted by the database), then the case id."""
    known = case_record_columns()
    joined, conditions = _records_from(where)
    times = ("created_at", "closed_at")
    chosen = [(iso_utc(conn, known[name]) if name in times else known[name]).label(name) for name in columns]
    # The id last, so that each row is the tuple up to it.
    return (sa.select(*chosen, cases.c.id.label("_id")).select_from(joined).where(*conditions)
            .order_by(cases.c.id).limit(limit).offset(offset))


def driver_statement(conn: Connection, query: sa.Select[Any]) -> tuple[str, Any]:
    """`query` as the driver takes it: its SQL text and parameters (a list for SQLite, names for psycopg).
    Only for queries whose parameters are text and numbers: no bind processing is applied."""
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.construct_params()
    if compiled.positiontup is not None:
        params = [params[name] for name in compiled.positiontup]
    return str(compiled), params


def _driver_rows(conn: Connection, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """The rows of `query` as the database driver's own tuples, in the connection's transaction: a page of
    ten thousand rows spends a quarter of its time in SQLAlchemy's Row objects otherwise. For queries whose
    columns need no result processing (timestamps come formatted by the database)."""
    statement, params = driver_statement(conn, query)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(statement, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def reporter_phones(conn: Connection, case_ids: list[int]) -> dict[int, str]:
    """The phone number of the person whose report opened each case (the person a case record is about),
    where one was given."""
    first = (sa.select(reports.c.case_id, sa.func.min(reports.c.id).label("first_id"))
             .where(reports.c.case_id.in_(case_ids)).group_by(reports.c.case_id).subquery())
    rows = conn.execute(sa.select(reports.c.case_id, reports.c.phone)
                        .join(first, first.c.first_id == reports.c.id).where(reports.c.phone.is_not(None)))
    return {int(r.case_id): r.phone for r in rows}


def daily_case_counts(conn: Connection, *, now: datetime, zone: str | None = None) -> list[dict[str, Any]]:
    """Cases by the local day they were opened (in `zone`, else the city's own), district and category: how
    many were received, how many of them are closed, and how many overran their resolve deadline (closed
    late, or open past it). Merged cases are counted once, in the case they joined. Oldest day first."""
    from zoneinfo import ZoneInfo

    zone = zone or city_timezone(conn).key
    day: sa.ColumnElement[Any]
    if conn.dialect.name == "postgresql":
        day = sa.cast(sa.func.timezone(zone, cases.c.created_at), sa.Date)
    else:  # SQLite keeps naive UTC text: shift by the zone's offset now (the city's zones keep no summer time)
        offset = int((now.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)).total_seconds())
        day = sa.func.date(cases.c.created_at, f"{offset:+d} seconds")
    late = sa.case((sa.func.coalesce(cases.c.closed_at, now) > cases.c.resolve_due_at, 1), else_=0)
    query = (sa.select(day.label("day"), areas.c.code.label("district"), cases.c.category_code.label("category"),
                       sa.func.count().label("received"), sa.func.count(cases.c.closed_at).label("closed"),
                       sa.func.sum(late).label("overdue"))
             .select_from(cases.outerjoin(areas, areas.c.id == cases.c.area_id))
             .where(cases.c.merged_into_id.is_(None)).group_by(day, areas.c.code, cases.c.category_code)
             .order_by(day, areas.c.code, cases.c.category_code))
    return [{"day": str(r.day), "district": r.district, "category": r.category, "received": int(r.received),
             "closed": int(r.closed), "overdue": int(r.overdue or 0)} for r in conn.execute(query)]


# -- the public map of reports ------------------------------------------------------------------------

PUBLIC_MAP_RECENT_DAYS = 30
PUBLIC_MAP_LIMIT = 3000


def public_map(conn: Connection, now: datetime, *, category_code: str | None = None, state: str = "all",
               limit: int = PUBLIC_MAP_LIMIT) -> list[dict[str, Any]]:
    """The cases anyone may see on the city's map: open ones, and those fixed in the last 30 days; where,
    what, how far along, and a photo. No description, address or anything about who reported; no case that is
    not published (PUBLISHED)."""
    fixed = [CaseStatus.RESOLVED.value, CaseStatus.VERIFIED.value, CaseStatus.CLOSED.value]
    open_ = [s.value for s in OPEN_STATES if s.value not in fixed and s != CaseStatus.MERGED]
    recent = cases.c.updated_at >= now - timedelta(days=PUBLIC_MAP_RECENT_DAYS)
    which: sa.ColumnElement[bool]
    if state == "open":
        which = cases.c.status.in_(open_)
    elif state == "fixed":
        which = sa.and_(cases.c.status.in_(fixed), recent)
    else:
        which = sa.or_(cases.c.status.in_(open_), sa.and_(cases.c.status.in_(fixed), recent))
    first_photo = (sa.select(reports.c.media_ids).where(reports.c.case_id == cases.c.id).order_by(reports.c.id)
                   .limit(1).correlate(cases).scalar_subquery())
    query = (sa.select(cases.c.id, cases.c.status, cases.c.category_code, cases.c.lat, cases.c.long,
                       cases.c.created_at, categories.c.name_zh, categories.c.name_en,
                       first_photo.label("media_ids"))
             .select_from(cases.join(categories, categories.c.code == cases.c.category_code))
             .where(which, PUBLISHED, cases.c.lat.is_not(None), cases.c.long.is_not(None))
             .order_by(cases.c.id.desc()).limit(limit))
    if category_code:
        query = query.where(cases.c.category_code == category_code)
    return [{"case_id": r.id, "status": r.status, "category_code": r.category_code, "category_zh": r.name_zh,
             "category_en": r.name_en, "lat": r.lat, "long": r.long, "created_at": r.created_at,
             "photo": (r.media_ids or [None])[0]} for r in conn.execute(query)]
