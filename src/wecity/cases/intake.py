"""The one intake used by every channel (Open311, the portal, sensors, the hotline).

Validate, convert coordinates to WGS-84, find the area, choose the department from category x area,
merge with an open case of the same category nearby (并单) or open a new one with its SLA clocks, and
record everything on the timeline, all in the caller's one transaction.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import notifications, sla
from wecity.cases.categories import Category, get_category, offered, responsible_department
from wecity.cases.choices import MERGEABLE, CaseStatus, Channel, Source
from wecity.cases.models import cases, reports
from wecity.cases.timeline import add_event, add_events
from wecity.core.db import inserted_id
from wecity.core.errors import NotFound, ValidationFailed
from wecity.geo.coords import CoordSystem, distance_m, metres_box, to_wgs84
from wecity.geo.index import AreaIndex

MAX_DESCRIPTION = 4000


@dataclass(slots=True)
class NewReport:
    service_code: str
    channel: str = Channel.OPEN311
    source: str = Source.CITIZEN
    lat: float | None = None
    long: float | None = None
    coord_system: str = CoordSystem.WGS84
    address: str | None = None
    address_id: str | None = None
    description: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    media_ids: list[str] = field(default_factory=list)
    # A photo hosted elsewhere (Open311's media_url): kept with the attributes as given, never fetched.
    media_url: str | None = None
    # lat/long are the gazetteer's match for `address` (no pin): the case is dispatched by that place but
    # never merged with another by it, since every report naming one road gets the same point.
    place_from_address: bool = False
    # A location read from a photo's EXIF GPS (WGS-84), used only when the report has neither coordinates nor
    # an address; it is then the report's (and its case's) location, published as any other.
    photo_location: tuple[float, float] | None = None
    email: str | None = None
    phone: str | None = None
    # The reporter's language (zh_CN, en), so that what they are told is in it; None: both.
    lang: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    device_id: str | None = None
    account_id: str | None = None
    # Sensors: "<entity id>|<rule id>"; one open case per source_ref.
    source_ref: str | None = None
    # When the category was not chosen by the reporter but by the city's model: its version, the
    # probability and the route (automatic, or to the dispatch centre); kept on the timeline, counted.
    routing: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MergePolicy:
    radius_m: float = 50.0
    window: timedelta = timedelta(hours=72)


@dataclass(frozen=True, slots=True)
class IntakeResult:
    report_id: int
    token: str
    case_id: int
    merged: bool
    status: str
    department_id: int | None
    area_id: int | None
    expected_at: datetime | None
    lat: float | None
    long: float | None


def _validated_location(report: NewReport) -> tuple[float | None, float | None]:
    if (report.lat is None) != (report.long is None):
        raise ValidationFailed("lat and long must be given together", code="request.location",
                               message_zh="纬度 lat 和经度 long 必须同时提供")
    if report.lat is not None and report.long is not None:
        if not (-90 <= report.lat <= 90 and -180 <= report.long <= 180) or not (
                math.isfinite(report.lat) and math.isfinite(report.long)):
            raise ValidationFailed("lat must be within -90..90 and long within -180..180", code="request.location",
                                   message_zh="纬度须在 -90 到 90 之间，经度须在 -180 到 180 之间")
        try:
            system = CoordSystem(report.coord_system or "wgs84")
        except ValueError:
            raise ValidationFailed("coord_system must be wgs84, gcj02 or bd09", code="request.coord_system",
                                   message_zh="coord_system 必须是 wgs84、gcj02 或 bd09") from None
        return to_wgs84(report.lat, report.long, system)
    if not (report.address or report.address_id):
        # The photo's position only when the reporter said nowhere: where a photo was taken is not always
        # where the problem is, and an address they wrote is their word on it.
        if report.photo_location is not None:
            return report.photo_location
        raise ValidationFailed("a location is required: lat and long, address_string or address_id",
                               code="request.location",
                               message_zh="必须提供位置：经纬度、地址 address_string 或 address_id")
    return None, None


def _validated_attributes(category: Category, given: dict[str, Any], *, source: str) -> dict[str, Any]:
    definitions = {a["code"]: a for a in (category.attributes or [])}
    for code, definition in definitions.items():
        # Required attributes are questions for people; a sensor's reading is its own answer.
        if source == Source.CITIZEN and definition.get("required") and definition.get("variable", True) and not given.get(code):
            raise ValidationFailed(f"attribute[{code}] is required for service {category.code}",
                                   code="request.attribute",
                                   message_zh=f"服务 {category.code} 需要填写 attribute[{code}]")
    for code, value in given.items():
        found = definitions.get(code)
        if found is None:
            raise ValidationFailed(f"service {category.code} has no attribute {code!r}", code="request.attribute",
                                   message_zh=f"服务 {category.code} 没有属性 {code}")
        allowed = {str(v["key"]) for v in found.get("values", [])}
        values = value if isinstance(value, list) else [value]
        if allowed and any(str(v) not in allowed for v in values):
            raise ValidationFailed(f"attribute[{code}] must be one of {sorted(allowed)}", code="request.attribute",
                                   message_zh=f"attribute[{code}] 必须是 {sorted(allowed)} 之一")
        if found.get("datatype") == "number":
            try:
                [float(v) for v in values]
            except (TypeError, ValueError):
                raise ValidationFailed(f"attribute[{code}] must be a number", code="request.attribute",
                                       message_zh=f"attribute[{code}] 必须是数字") from None
    return given


# Statements built once: building `.values(**row)` and `.where(...)` per call costs more than running them.
_MERGE_CANDIDATES = sa.select(cases.c.id, cases.c.lat, cases.c.long).where(
    cases.c.category_code == sa.bindparam("code"),
    cases.c.status.in_([s.value for s in MERGEABLE]),
    cases.c.created_at >= sa.bindparam("since", type_=cases.c.created_at.type),
    cases.c.lat.between(sa.bindparam("lat_min"), sa.bindparam("lat_max")),
    cases.c.long.between(sa.bindparam("lon_min"), sa.bindparam("lon_max")),
    cases.c.place_from_address.is_(False),
)
_INSERT_CASE = cases.insert()
_INSERT_REPORT = reports.insert()


def _mergeable_case(conn: Connection, category_code: str, lat: float, lon: float, now: datetime,
                    policy: MergePolicy) -> int | None:
    """The nearest open case of the category within the radius and window, if any."""
    south, west, north, east = metres_box(lat, lon, policy.radius_m)
    rows = conn.execute(_MERGE_CANDIDATES, {
        "code": category_code, "since": now - policy.window, "lat_min": south, "lat_max": north,
        "lon_min": west, "lon_max": east}).all()
    best: tuple[float, int] | None = None
    for row in rows:
        d = distance_m(lat, lon, row.lat, row.long)
        if d <= policy.radius_m and (best is None or d < best[0]):
            best = (d, row.id)
    return best[1] if best else None


def _still_mergeable(conn: Connection, case_id: int) -> bool:
    """The candidate locked and read again. The candidates were read without a lock, and under PostgreSQL a
    merge or a closure of the case may commit meanwhile: the lock waits for it, and the status read after
    is the one it left. (SQLite has one writer: nothing commits between the read and the join.)"""
    if conn.dialect.name != "postgresql":
        return True
    status = conn.execute(sa.select(cases.c.status).where(cases.c.id == case_id).with_for_update()).scalar()
    return status in _MERGEABLE_VALUES


_MERGEABLE_VALUES = frozenset(s.value for s in MERGEABLE)


def _open_case_for_source(conn: Connection, source_ref: str) -> int | None:
    row = conn.execute(sa.select(cases.c.id).where(
        cases.c.source_ref == source_ref, cases.c.status.in_([s.value for s in MERGEABLE])
    ).order_by(cases.c.id.desc()).limit(1)).first()
    return row.id if row else None


@dataclass(frozen=True, slots=True)
class _Checked:
    """A report as intake accepted it: its category, cleaned text and attributes, WGS-84 place and area."""

    category: Category
    description: str
    attributes: dict[str, Any]
    lat: float | None
    lon: float | None
    area_id: int | None


def _checked(conn: Connection, report: NewReport, area_index: AreaIndex) -> _Checked:
    try:
        category = get_category(conn, report.service_code)
    except NotFound:
        # On submission an unknown code is a bad parameter (400), not a missing resource.
        raise ValidationFailed(f"unknown service_code {report.service_code!r}", code="request.service_code",
                               message_zh=f"未知的服务代码 service_code：{report.service_code}") from None
    if not category.active:
        raise ValidationFailed(f"service {category.code} is not accepting requests", code="request.service_code",
                               message_zh=f"服务 {category.code} 暂停受理")
    if not offered(category, report.channel):
        raise ValidationFailed(f"service {category.code} is not offered through this channel",
                               code="request.service_code", message_zh=f"服务 {category.code} 不通过此渠道受理")
    description = (report.description or "").strip()
    if len(description) > MAX_DESCRIPTION:
        raise ValidationFailed(f"description is longer than {MAX_DESCRIPTION} characters",
                               code="request.description", message_zh=f"描述不能超过 {MAX_DESCRIPTION} 个字符")
    if category.description_required and not description and report.source == Source.CITIZEN:
        raise ValidationFailed(f"service {category.code} needs a description of the problem",
                               code="request.description_required",
                               message_zh=f"服务 {category.code} 需要填写问题描述")
    attributes = _validated_attributes(category, report.attributes, source=report.source)
    lat, lon = _validated_location(report)
    area = area_index.locate(lat, lon) if lat is not None and lon is not None else None
    if lat is not None and area is None and len(area_index):
        raise ValidationFailed("the location is outside the city's area", code="request.outside_city",
                               message_zh="该位置不在本市辖区内")
    return _Checked(category, description, attributes, lat, lon, area.id if area else None)


def submit_report(conn: Connection, report: NewReport, *, area_index: AreaIndex, now: datetime,
                  policy: MergePolicy = MergePolicy()) -> IntakeResult:
    """Accept one report: join an open case nearby or open a new one dispatched to its department."""
    checked = _checked(conn, report, area_index)
    case_id: int | None = None
    if report.source_ref:
        case_id = _open_case_for_source(conn, report.source_ref)
    if case_id is None and checked.lat is not None and checked.lon is not None and not report.place_from_address:
        case_id = _mergeable_case(conn, checked.category.code, checked.lat, checked.lon, now, policy)
    if case_id is not None and not _still_mergeable(conn, case_id):
        case_id = None  # merged, resolved or closed a moment ago: the report opens a case of its own
    token = secrets.token_urlsafe(12)
    if case_id is not None:
        return _join_case(conn, report, checked, case_id, token, now)
    return _open_case(conn, report, checked, token, now)


def _actor(report: NewReport) -> str:
    return "sensor" if report.source == Source.SENSOR else "citizen"


def _join_case(conn: Connection, report: NewReport, checked: _Checked, case_id: int, token: str,
               now: datetime) -> IntakeResult:
    """并单: the report joins the open case (locked and found still open: `_still_mergeable`); its reporter
    follows that case's progress."""
    conn.execute(cases.update().where(cases.c.id == case_id).values(updated_at=now))
    report_id = _insert_report(conn, report, case_id, token, checked, now)
    add_event(conn, case_id, at=now, event="report_merged", actor=_actor(report), channel=report.channel,
              note=checked.description or None, media_id=_first(report.media_ids),
              detail={"report_id": report_id, **({"routing": report.routing} if report.routing else {})})
    row = conn.execute(sa.select(cases.c.status, cases.c.department_id, cases.c.area_id, cases.c.resolve_due_at)
                       .where(cases.c.id == case_id)).one()
    return IntakeResult(report_id=report_id, token=token, case_id=case_id, merged=True, status=row.status,
                        department_id=row.department_id, area_id=row.area_id, expected_at=row.resolve_due_at,
                        lat=checked.lat, long=checked.lon)


def _open_case(conn: Connection, report: NewReport, checked: _Checked, token: str, now: datetime) -> IntakeResult:
    """A new case, dispatched to the department of its category and area, with its SLA clocks running."""
    category, area_id = checked.category, checked.area_id
    department_id = responsible_department(conn, category, area_id)
    clocks = sla.clocks(conn, category, now)
    case_id = inserted_id(conn.execute(_INSERT_CASE, dict(
        category_code=category.code, status=CaseStatus.DISPATCHED.value, department_id=department_id,
        area_id=area_id, lat=checked.lat, long=checked.lon, address=report.address,
        place_from_address=report.place_from_address and checked.lat is not None,
        description=checked.description, source=str(report.source), channel=str(report.channel),
        source_ref=report.source_ref, created_at=now,
        updated_at=now, dispatched_at=now, **clocks.values(), ack_warned=False, ack_escalated=False,
        resolve_warned=False, resolve_escalated=False, reopen_count=0, followup_open=False,
        notice_seq=1,  # the dispatch notice below is the case's first
    )))
    report_id = _insert_report(conn, report, case_id, token, checked, now)
    actor = _actor(report)
    add_events(conn, [
        dict(case_id=case_id, at=now, event="submitted", actor=actor, channel=report.channel,
             to_status=CaseStatus.SUBMITTED,
             detail={"area_id": area_id, **({"routing": report.routing} if report.routing else {})}),
        dict(case_id=case_id, at=now, event="dispatched", actor="system", actor_name="自动派遣 / auto-dispatch",
             channel=Channel.SYSTEM, from_status=CaseStatus.SUBMITTED, to_status=CaseStatus.DISPATCHED,
             department_id=department_id,
             detail={"rule": "category x area", "ack_due_at": clocks.ack_due_at.isoformat(),
                     "resolve_due_at": clocks.resolve_due_at.isoformat()}),
        dict(case_id=case_id, at=now, event="report_added", actor=actor, channel=report.channel,
             note=checked.description or None, detail={"report_id": report_id}, media_id=_first(report.media_ids)),
    ])
    # The department and the reporter are told, in this transaction, through the outbox.
    notifications.new_case_dispatched(conn, case_id=case_id, status=CaseStatus.DISPATCHED,
                                      category_code=category.code, department_id=department_id, token=token,
                                      email=report.email, phone=report.phone, now=now, lang=report.lang)
    return IntakeResult(report_id=report_id, token=token, case_id=case_id, merged=False,
                        status=CaseStatus.DISPATCHED, department_id=department_id, area_id=area_id,
                        expected_at=clocks.resolve_due_at, lat=checked.lat, long=checked.lon)


def _insert_report(conn: Connection, report: NewReport, case_id: int, token: str, checked: _Checked,
                   now: datetime) -> int:
    attributes = checked.attributes
    return inserted_id(conn.execute(_INSERT_REPORT, dict(
        case_id=case_id, token=token, service_code=checked.category.code, description=checked.description,
        lat=checked.lat, long=checked.lon, address=report.address, address_id=report.address_id,
        attributes={**attributes, "media_url": report.media_url} if report.media_url else attributes or None,
        media_ids=report.media_ids or None, channel=str(report.channel), email=report.email, phone=report.phone,
        lang=report.lang, first_name=report.first_name, last_name=report.last_name, device_id=report.device_id,
        account_id=report.account_id, requested_at=now, updated_at=now,
    )))


def _first(items: list[str]) -> str | None:
    return items[0] if items else None
