"""Read side of the case engine: queues by SLA urgency, case detail, public tracking views, nearby cases."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import MERGEABLE, CaseStatus
from wecity.cases.models import cases, categories, ratings, reports
from wecity.cases.timeline import case_events
from wecity.core.errors import NotFound
from wecity.geo.coords import distance_m
from wecity.geo.models import areas
from wecity.identity.choices import Role
from wecity.identity.models import departments
from wecity.identity.service import StaffUser, mask_phone

QUEUES = ("department", "dispatch", "overdue", "all", "followup")


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
    """The clock that matters now: acknowledge while waiting for 签收, then resolve."""
    if row.status == CaseStatus.DISPATCHED:
        return row.ack_due_at
    if row.status in (CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS):
        return row.resolve_due_at
    return None


def case_summary(row: Any, now: datetime) -> dict[str, Any]:
    due = next_deadline(row)
    return {
        "id": row.id, "status": row.status, "category_code": row.category_code,
        "category_zh": row.category_zh, "category_en": row.category_en,
        "department_id": row.department_id, "department_zh": row.department_zh, "department_en": row.department_en,
        "area_id": row.area_id, "area_zh": row.area_zh, "area_en": row.area_en,
        "lat": row.lat, "long": row.long, "address": row.address, "description": row.description,
        "source": row.source, "created_at": row.created_at, "updated_at": row.updated_at,
        "ack_due_at": row.ack_due_at, "resolve_due_at": row.resolve_due_at, "next_due_at": due,
        "seconds_left": None if due is None else int((due - now).total_seconds()),
        "overdue": due is not None and due < now, "ack_escalated": row.ack_escalated,
        "resolve_escalated": row.resolve_escalated, "followup_open": row.followup_open,
        "reopen_count": row.reopen_count, "merged_into_id": row.merged_into_id,
    }


def queue(conn: Connection, user: StaffUser, now: datetime, *, name: str = "department",
          status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Cases for this user, most urgent first (the nearest deadline, overdue ones at the top)."""
    query = _case_select()
    sees_all = user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)
    if name == "department" or not sees_all:
        query = query.where(cases.c.department_id == user.department_id)
    if name == "dispatch":
        query = query.where(cases.c.status.in_([CaseStatus.RETURNED, CaseStatus.SUBMITTED, CaseStatus.RESOLVED]))
    elif name == "overdue":
        query = query.where(sa.or_(
            sa.and_(cases.c.status == CaseStatus.DISPATCHED, cases.c.ack_due_at < now),
            sa.and_(cases.c.status.in_([CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS]),
                    cases.c.resolve_due_at < now)))
    elif name == "followup":
        query = query.where(cases.c.followup_open.is_(True))
    if status:
        query = query.where(cases.c.status == status)
    elif name in ("department", "all"):
        query = query.where(cases.c.status.in_([s.value for s in MERGEABLE] + [CaseStatus.RESOLVED,
                                                                                 CaseStatus.VERIFIED]))
    urgency = sa.case(
        (cases.c.status == CaseStatus.DISPATCHED, cases.c.ack_due_at),
        (cases.c.status.in_([CaseStatus.ACKNOWLEDGED, CaseStatus.IN_PROGRESS]), cases.c.resolve_due_at),
        else_=None)
    query = query.order_by(urgency.is_(None), urgency, cases.c.updated_at.desc()).limit(limit)
    return [case_summary(r, now) for r in conn.execute(query)]


def case_detail(conn: Connection, case_id: int, now: datetime, *, reveal_contacts: bool = False) -> dict[str, Any]:
    row = conn.execute(_case_select().where(cases.c.id == case_id)).first()
    if row is None:
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    detail = case_summary(row, now)
    detail["status_notes"] = row.status_notes
    detail["evidence_media_id"] = row.evidence_media_id
    detail["reports"] = []
    for r in conn.execute(sa.select(reports).where(reports.c.case_id == case_id).order_by(reports.c.id)):
        name = _full_name(r.first_name, r.last_name)
        detail["reports"].append({
            "id": r.id, "channel": r.channel, "description": r.description, "lat": r.lat, "long": r.long,
            "address": r.address, "attributes": r.attributes, "media_ids": r.media_ids or [],
            "requested_at": r.requested_at,
            "name": name if reveal_contacts else (name[0] + "*" * (len(name) - 1) if name else None),
            "phone": r.phone if reveal_contacts else mask_phone(r.phone),
            "email": r.email if reveal_contacts else _mask_email(r.email),
        })
    detail["timeline"] = case_events(conn, case_id)
    rating = conn.execute(sa.select(ratings).where(ratings.c.case_id == case_id).order_by(ratings.c.id)).all()
    detail["ratings"] = [{"stars": x.stars, "tags": x.tags or [], "comment": x.comment, "at": x.at} for x in rating]
    return detail


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


def tracking_view(conn: Connection, token: str, now: datetime) -> dict[str, Any]:
    """What a citizen sees with a tracking code: the case's public fields and public timeline, no one's data."""
    report = conn.execute(sa.select(reports).where(reports.c.token == token)).first()
    if report is None:
        raise NotFound("no report with that tracking code", message_zh="没有该查询码对应的诉求",
                       code="report.not_found")
    row = conn.execute(_case_select().where(cases.c.id == report.case_id)).one()
    events = [{k: e[k] for k in ("at", "event", "to_status", "note", "media_id", "channel")}
              for e in case_events(conn, report.case_id, public_only=True)]
    rated = conn.execute(sa.select(ratings.c.stars).where(ratings.c.report_id == report.id)).first()
    status = CaseStatus(row.status)
    closed_at = row.closed_at
    return {
        "token": token, "service_request_id": str(report.id), "case_id": row.id, "status": row.status,
        "status_zh": status.label_zh, "status_en": status.label_en,
        "category_zh": row.category_zh, "category_en": row.category_en,
        "department_zh": row.department_zh, "department_en": row.department_en,
        "area_zh": row.area_zh, "area_en": row.area_en, "description": report.description,
        "lat": report.lat, "long": report.long, "requested_at": report.requested_at,
        "expected_at": row.resolve_due_at, "media_ids": report.media_ids or [],
        "evidence_media_id": row.evidence_media_id, "timeline": events,
        "can_rate": rated is None and status in (CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED),
        "rating": rated.stars if rated else None,
        "can_reopen": status in (CaseStatus.CLOSED, CaseStatus.VERIFIED) and (
            closed_at is None or (now - closed_at).days < 7),
    }


def public_case(conn: Connection, case_id: int) -> dict[str, Any]:
    """A case as anyone may see it (a neighbour following a problem already reported): no personal data."""
    row = conn.execute(_case_select().where(cases.c.id == case_id)).first()
    if row is None or row.status == CaseStatus.MERGED and row.merged_into_id is None:
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    status = CaseStatus(row.status)
    return {
        "case_id": row.id, "status": row.status, "status_zh": status.label_zh, "status_en": status.label_en,
        "merged_into_id": row.merged_into_id, "category_zh": row.category_zh, "category_en": row.category_en,
        "department_zh": row.department_zh, "department_en": row.department_en, "area_zh": row.area_zh,
        "area_en": row.area_en, "lat": row.lat, "long": row.long, "created_at": row.created_at,
        "expected_at": row.resolve_due_at, "description": row.description,
        "reports": conn.execute(sa.select(sa.func.count()).select_from(reports)
                                .where(reports.c.case_id == case_id)).scalar_one(),
        "timeline": [{k: e[k] for k in ("at", "event", "to_status", "note")}
                     for e in case_events(conn, case_id, public_only=True)],
    }


def nearby_open_cases(conn: Connection, *, lat: float, lon: float, category_code: str | None, now: datetime,
                      radius_m: float = 200.0, limit: int = 10) -> list[dict[str, Any]]:
    """Open cases near a point (public fields only), nearest first: "already reported — follow it"."""
    dlat = radius_m / 111_320
    dlon = radius_m / (111_320 * max(math.cos(math.radians(lat)), 0.01))
    query = _case_select().where(cases.c.status.in_([s.value for s in MERGEABLE]),
                                 cases.c.lat.between(lat - dlat, lat + dlat),
                                 cases.c.long.between(lon - dlon, lon + dlon))
    if category_code:
        query = query.where(cases.c.category_code == category_code)
    found = []
    for row in conn.execute(query.limit(200)):
        d = distance_m(lat, lon, row.lat, row.long)
        if d <= radius_m:
            status = CaseStatus(row.status)
            found.append({"case_id": row.id, "distance_m": round(d), "category_code": row.category_code,
                          "category_zh": row.category_zh, "category_en": row.category_en,
                          "status": row.status, "status_zh": status.label_zh, "status_en": status.label_en,
                          "created_at": row.created_at, "lat": row.lat, "long": row.long,
                          "description": row.description})
    found.sort(key=lambda c: c["distance_m"])
    return found[:limit]
