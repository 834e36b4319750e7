"""Read-only views of cases that the portal's pages show; every change goes through wecity.cases.engine."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import MERGEABLE, CaseStatus
from wecity.cases.models import cases, categories, ratings, reports, timeline
from wecity.geo.coords import distance_m
from wecity.geo.models import areas
from wecity.identity.models import departments, users
from wecity.identity.service import mask_phone

OPEN_STATES = [s.value for s in CaseStatus if s.is_open]


def _case_select() -> sa.Select[Any]:
    return (sa.select(cases, categories.c.name_zh.label("category_zh"), categories.c.name_en.label("category_en"),
                      departments.c.name_zh.label("department_zh"), departments.c.name_en.label("department_en"),
                      areas.c.name_zh.label("area_zh"), areas.c.name_en.label("area_en"))
            .select_from(cases.join(categories, categories.c.code == cases.c.category_code)
                         .outerjoin(departments, departments.c.id == cases.c.department_id)
                         .outerjoin(areas, areas.c.id == cases.c.area_id)))


def nearby_open_cases(conn: Connection, category_code: str, lat: float, lon: float, *, radius_m: float,
                      limit: int = 5) -> list[dict[str, Any]]:
    """Open cases of the category near a point, nearest first: "already reported — follow it instead"."""
    dlat = radius_m / 111_320
    dlon = radius_m / (111_320 * max(math.cos(math.radians(lat)), 0.01))
    rows = conn.execute(_case_select().where(
        cases.c.category_code == category_code, cases.c.status.in_([s.value for s in MERGEABLE]),
        cases.c.lat.between(lat - dlat, lat + dlat), cases.c.long.between(lon - dlon, lon + dlon))).all()
    found = []
    for row in rows:
        d = distance_m(lat, lon, row.lat, row.long)
        if d <= radius_m:
            found.append({**row._mapping, "distance_m": round(d)})
    found.sort(key=lambda c: c["distance_m"])
    return found[:limit]


def public_case(conn: Connection, case_id: int) -> dict[str, Any] | None:
    """A case as anyone may see it: no personal data, public timeline events only."""
    row = conn.execute(_case_select().where(cases.c.id == case_id)).first()
    if row is None:
        return None
    case = dict(row._mapping)
    if case["status"] == CaseStatus.MERGED and case["merged_into_id"]:
        case["merged_into"] = case["merged_into_id"]
    case["events"] = [dict(r._mapping) for r in conn.execute(
        sa.select(timeline).where(timeline.c.case_id == case_id, timeline.c.public.is_(True))
        .order_by(timeline.c.at, timeline.c.id))]
    photos = conn.execute(sa.select(reports.c.media_ids).where(reports.c.case_id == case_id)
                          .order_by(reports.c.id)).scalars().all()
    case["photos"] = [m for ids in photos for m in (ids or [])]
    case["report_count"] = len(photos)
    return case


def report_for_token(conn: Connection, token: str) -> dict[str, Any] | None:
    """The reporter's view: their report, its case (public view) and their rating, if any."""
    row = conn.execute(sa.select(reports.c.id, reports.c.case_id, reports.c.token, reports.c.requested_at,
                                 reports.c.description, reports.c.media_ids)
                       .where(reports.c.token == token)).first()
    if row is None:
        return None
    case = public_case(conn, row.case_id)
    rating = conn.execute(sa.select(ratings.c.stars, ratings.c.tags, ratings.c.comment, ratings.c.at)
                          .where(ratings.c.report_id == row.id)).first()
    return {"report": dict(row._mapping), "case": case, "rating": dict(rating._mapping) if rating else None}


def _urgency(case: dict[str, Any], now: datetime) -> tuple[str, datetime | None]:
    """Which SLA clock is running and when it runs out: acknowledge until 签收, then resolve."""
    status = case["status"]
    if status == CaseStatus.DISPATCHED:
        return "acknowledge", case["ack_due_at"]
    if status in (CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS, CaseStatus.RETURNED, CaseStatus.SUBMITTED):
        return "resolve", case["resolve_due_at"]
    return "none", None


def _with_urgency(row: Any, now: datetime) -> dict[str, Any]:
    case = dict(row._mapping)
    clock, due = _urgency(case, now)
    case["clock"], case["due_at"] = clock, due
    case["seconds_left"] = int((due - now).total_seconds()) if due else None
    return case


def department_queue(conn: Connection, department_id: int | None, now: datetime, *,
                     statuses: list[str] | None = None) -> list[dict[str, Any]]:
    """A department's open cases, most urgent first (the running clock nearest to running out)."""
    query = _case_select().where(cases.c.status.in_(statuses or [
        CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED]))
    if department_id is not None:
        query = query.where(cases.c.department_id == department_id)
    found = [_with_urgency(r, now) for r in conn.execute(query.limit(500))]
    far = now + timedelta(days=3650)
    found.sort(key=lambda c: (c["status"] == CaseStatus.RESOLVED, c["due_at"] or far))
    return found


def dispatch_queue(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """The dispatch centre's work: returned and unassigned cases, and resolved ones waiting for 核查."""
    query = _case_select().where(sa.or_(
        cases.c.status.in_([CaseStatus.RETURNED, CaseStatus.SUBMITTED, CaseStatus.RESOLVED]),
        cases.c.department_id.is_(None) & cases.c.status.in_(OPEN_STATES),
        cases.c.followup_open.is_(True)))
    found = [_with_urgency(r, now) for r in conn.execute(query.limit(500))]
    order = {CaseStatus.RETURNED: 0, CaseStatus.SUBMITTED: 1, CaseStatus.RESOLVED: 2}
    found.sort(key=lambda c: (order.get(c["status"], 3), c["updated_at"]))
    return found


def staff_case(conn: Connection, case_id: int, now: datetime) -> dict[str, Any] | None:
    """Everything staff see on a case page: the case, its reports (phones masked), the whole timeline."""
    row = conn.execute(_case_select().where(cases.c.id == case_id)).first()
    if row is None:
        return None
    case = _with_urgency(row, now)
    case["reports"] = [
        {**r._mapping, "phone": mask_phone(r.phone)}
        for r in conn.execute(sa.select(reports.c.id, reports.c.token, reports.c.requested_at, reports.c.description,
                                        reports.c.media_ids, reports.c.channel, reports.c.phone)
                              .where(reports.c.case_id == case_id).order_by(reports.c.id))]
    case["photos"] = [m for r in case["reports"] for m in (r["media_ids"] or [])]
    case["events"] = [dict(r._mapping) for r in conn.execute(
        sa.select(timeline, departments.c.name_zh.label("department_zh"), departments.c.name_en.label("department_en"))
        .select_from(timeline.outerjoin(departments, departments.c.id == timeline.c.department_id))
        .where(timeline.c.case_id == case_id).order_by(timeline.c.at, timeline.c.id))]
    case["ratings"] = [dict(r._mapping) for r in conn.execute(
        sa.select(ratings.c.stars, ratings.c.tags, ratings.c.comment, ratings.c.at).where(ratings.c.case_id == case_id))]
    if case["assignee_id"]:
        case["assignee"] = conn.execute(sa.select(users.c.display_name).where(users.c.id == case["assignee_id"])).scalar()
    return case


def department_choices(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(
        sa.select(departments.c.id, departments.c.code, departments.c.name_zh, departments.c.name_en,
                  departments.c.is_dispatch_centre).order_by(departments.c.id))]


def reports_for_phone(conn: Connection, phones: list[str], *, limit: int = 100) -> list[dict[str, Any]]:
    """A citizen's own reports (by the phone number they proved they hold), newest first."""
    rows = conn.execute(sa.select(reports.c.token, reports.c.requested_at, reports.c.case_id, cases.c.status,
                                  categories.c.name_zh.label("category_zh"), categories.c.name_en.label("category_en"))
                        .select_from(reports.join(cases, cases.c.id == reports.c.case_id)
                                     .join(categories, categories.c.code == reports.c.service_code))
                        .where(reports.c.phone.in_(phones)).order_by(reports.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]
