"""Open311 views of the case engine: services, requests, tokens and request updates as the spec shapes them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import Category, get_category, list_categories
from wecity.cases.choices import UNPUBLISHED_CHANNELS, CaseStatus, Channel
from wecity.cases.models import cases, categories, reports, timeline
from wecity.core.clock import isoformat
from wecity.identity.models import departments

DEFAULT_WINDOW = timedelta(days=90)
DEFAULT_LIMIT = 1000
MAX_PAGE_SIZE = 1000

# mySociety's extended statuses for request updates, from the case's own.
EXTENDED_STATUS = {
    CaseStatus.SUBMITTED: "OPEN", CaseStatus.DISPATCHED: "OPEN", CaseStatus.ACKNOWLEDGED: "INVESTIGATING",
    CaseStatus.RETURNED: "INTERNAL_REFERRAL", CaseStatus.IN_PROGRESS: "IN_PROGRESS", CaseStatus.RESOLVED: "FIXED",
    CaseStatus.VERIFIED: "FIXED", CaseStatus.CLOSED: "CLOSED", CaseStatus.MERGED: "DUPLICATE",
}


def open311_status(case_status: str) -> str:
    return "closed" if case_status == CaseStatus.CLOSED else "open"


def _l(locale: str, zh: str | None, en: str | None) -> str | None:
    return zh if locale.startswith("zh") else en


def service_entry(category: Category, locale: str) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name(locale),
        "description": _l(locale, category.description_zh, category.description_en) or category.name(locale),
        "metadata": bool(category.attributes),
        "type": "realtime",
        "keywords": ", ".join(category.keywords.split()),
        "group": _l(locale, category.group_zh, category.group_en),
    }


def services(conn: Connection, locale: str) -> list[dict[str, Any]]:
    return [service_entry(c, locale) for c in list_categories(conn, channel=Channel.OPEN311)]


def service_definition(conn: Connection, code: str, locale: str) -> dict[str, Any]:
    category = get_category(conn, code)
    attributes = []
    for order, a in enumerate(category.attributes or [], start=1):
        entry: dict[str, Any] = {
            "variable": a.get("variable", True),
            "code": a["code"],
            "datatype": a.get("datatype", "string"),
            "required": bool(a.get("required", False)),
            "datatype_description": _l(locale, a.get("datatype_description_zh"), a.get("datatype_description_en")),
            "order": a.get("order", order),
            "description": _l(locale, a.get("description_zh"), a.get("description_en")) or a["code"],
        }
        if a.get("values"):
            entry["values"] = [{"key": str(v["key"]), "name": _l(locale, v.get("name_zh"), v.get("name_en"))}
                               for v in a["values"]]
        attributes.append(entry)
    return {"service_code": category.code, "attributes": attributes}


@dataclass(frozen=True, slots=True)
class RequestQuery:
    ids: list[int] | None = None
    service_codes: list[str] | None = None
    start: datetime | None = None
    end: datetime | None = None
    statuses: list[str] | None = None          # open, closed
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    page: int = 1
    page_size: int | None = None


def _request_select() -> sa.Select[Any]:
    return sa.select(
        reports.c.id, reports.c.token, reports.c.service_code, reports.c.description, reports.c.lat, reports.c.long,
        reports.c.address, reports.c.address_id, reports.c.media_ids, reports.c.requested_at, reports.c.updated_at,
        reports.c.case_id, cases.c.status, cases.c.status_notes, cases.c.resolve_due_at, cases.c.closed_at,
        cases.c.evidence_media_id, departments.c.name_zh.label("dept_zh"), departments.c.name_en.label("dept_en"),
        categories.c.name_zh.label("service_zh"), categories.c.name_en.label("service_en"),
    ).select_from(
        reports.join(cases, cases.c.id == reports.c.case_id)
        .join(categories, categories.c.code == reports.c.service_code)
        .outerjoin(departments, departments.c.id == cases.c.department_id))


def _published(conn: Connection) -> list[Any]:
    """What GeoReport publishes: reports in the categories offered here (services.json; retired ones too,
    for the requests filed in them), sent through a public channel."""
    codes = [c.code for c in list_categories(conn, active_only=False, channel=Channel.OPEN311)]
    return [reports.c.service_code.in_(codes), reports.c.channel.not_in([str(c) for c in UNPUBLISHED_CHANNELS])]


def find_requests(conn: Connection, q: RequestQuery, now: datetime) -> list[sa.Row[Any]]:
    query = _request_select().where(*_published(conn))
    if q.ids:
        query = query.where(reports.c.id.in_(q.ids))
    else:
        # The spec's defaults: the last 90 days, at most 1,000 — unless dates say otherwise.
        end = q.end
        start = q.start
        if start is None and end is None and q.updated_after is None and q.updated_before is None:
            start = now - DEFAULT_WINDOW
        if start is not None:
            query = query.where(reports.c.requested_at >= start)
        if end is not None:
            query = query.where(reports.c.requested_at <= end)
    if q.service_codes:
        query = query.where(reports.c.service_code.in_(q.service_codes))
    if q.statuses:
        wants_open, wants_closed = "open" in q.statuses, "closed" in q.statuses
        if wants_open and not wants_closed:
            query = query.where(cases.c.status != CaseStatus.CLOSED)
        elif wants_closed and not wants_open:
            query = query.where(cases.c.status == CaseStatus.CLOSED)
    if q.updated_after is not None:
        query = query.where(reports.c.updated_at > q.updated_after)
    if q.updated_before is not None:
        query = query.where(reports.c.updated_at < q.updated_before)
    size = min(q.page_size or DEFAULT_LIMIT, MAX_PAGE_SIZE)
    query = query.order_by(reports.c.requested_at.desc(), reports.c.id.desc()).limit(size)
    query = query.offset((max(q.page, 1) - 1) * size)
    return list(conn.execute(query).all())


def request_entry(row: Any, locale: str, media_base: str, *, extensions: bool = False,
                  notes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    status = CaseStatus(row.status)
    media_ids = row.media_ids or []
    entry: dict[str, Any] = {
        "service_request_id": str(row.id),
        "status": open311_status(row.status),
        "status_notes": row.status_notes or f"{status.label_zh} / {status.label_en}",
        "service_name": _l(locale, row.service_zh, row.service_en),
        "service_code": row.service_code,
        "description": row.description or None,
        "agency_responsible": _l(locale, row.dept_zh, row.dept_en),
        "service_notice": None,
        "requested_datetime": isoformat(row.requested_at),
        "updated_datetime": isoformat(row.closed_at if row.status == CaseStatus.CLOSED and row.closed_at
                                      else row.updated_at),
        "expected_datetime": isoformat(row.resolve_due_at),
        "address": row.address,
        "address_id": row.address_id,
        "zipcode": None,
        "lat": row.lat,
        "long": row.long,
        "media_url": f"{media_base}/media/{media_ids[0]}" if media_ids else None,
    }
    if extensions:
        entry["extended_attributes"] = {
            "case_id": str(row.case_id),
            "detailed_status": EXTENDED_STATUS[status],
            "status_label": {"zh_CN": status.label_zh, "en": status.label_en},
            "photos": [{"media_url": f"{media_base}/media/{m}", "thumbnail_url": f"{media_base}/media/{m}/thumbnail"}
                       for m in media_ids],
            "notes": notes or [],
        }
        if row.evidence_media_id:
            entry["extended_attributes"]["photos"].append(
                {"media_url": f"{media_base}/media/{row.evidence_media_id}", "kind": "evidence",
                 "thumbnail_url": f"{media_base}/media/{row.evidence_media_id}/thumbnail"})
    return entry


def public_notes(conn: Connection, case_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Public timeline events per case, for `extensions=true` (no personal data, no internal notes)."""
    out: dict[int, list[dict[str, Any]]] = {cid: [] for cid in case_ids}
    if not case_ids:
        return out
    rows = conn.execute(sa.select(timeline.c.case_id, timeline.c.at, timeline.c.event, timeline.c.to_status,
                                  timeline.c.note)
                        .where(timeline.c.case_id.in_(case_ids), timeline.c.public.is_(True))
                        .order_by(timeline.c.at, timeline.c.id)).all()
    for r in rows:
        out[r.case_id].append({"datetime": isoformat(r.at), "event": r.event, "status": r.to_status,
                               "note": r.note})
    return out


def request_by_token(conn: Connection, token: str) -> Any:
    return conn.execute(sa.select(reports.c.id, reports.c.token).where(reports.c.token == token)).first()


def request_updates(conn: Connection, *, start: datetime | None, end: datetime | None, now: datetime,
                    limit: int = DEFAULT_LIMIT) -> list[dict[str, Any]]:
    """mySociety servicerequestupdates: each public status event of a case, once per report it concerns."""
    start = start or (now - DEFAULT_WINDOW)
    query = (sa.select(timeline.c.id, timeline.c.at, timeline.c.note, timeline.c.to_status, timeline.c.media_id,
                       reports.c.id.label("report_id"))
             .select_from(timeline.join(reports, reports.c.case_id == timeline.c.case_id))
             .where(timeline.c.public.is_(True), timeline.c.to_status.is_not(None), timeline.c.at >= start,
                    timeline.c.at >= reports.c.requested_at, *_published(conn))
             .order_by(timeline.c.at, timeline.c.id).limit(limit))
    if end is not None:
        query = query.where(timeline.c.at <= end)
    out = []
    for r in conn.execute(query):
        status = CaseStatus(r.to_status)
        out.append({
            "update_id": f"{r.id}-{r.report_id}",
            "service_request_id": str(r.report_id),
            "status": EXTENDED_STATUS[status],
            "updated_datetime": isoformat(r.at),
            "description": r.note or f"{status.label_zh} / {status.label_en}",
            "media_url": None,
        })
    return out
