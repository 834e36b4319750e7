"""Figures of the platform's other loops beside the cases': service applications (一网通办), data sharing,
enterprise policies and sensors, for the same period (and department, where the loop has one).

These volumes are a city's thousands, not its millions of cases, so each is counted from its domain's own
table with one indexed query per figure; every figure carries its definition, as the KPIs do.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import OPEN_STATES
from wecity.cases.models import cases
from wecity.context.models import entities
from wecity.datashare.models import data_requests
from wecity.enterprise.models import policy_matches
from wecity.geo.service import city_timezone
from wecity.govservice.models import application_ratings, applications, rectifications
from wecity.iot.models import devices

SILENT_AFTER = timedelta(hours=24)


def _figure(code: str, zh: str, en: str, value: float | None, definition_zh: str, definition_en: str,
            unit: str = "count") -> dict[str, Any]:
    return {"code": code, "name_zh": zh, "name_en": en, "value": value, "unit": unit,
            "definition_zh": definition_zh, "definition_en": definition_en}


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _bounds(conn: Connection, f: Any) -> tuple[datetime, datetime, ZoneInfo]:
    zone = city_timezone(conn)
    return (datetime.combine(f.start, datetime.min.time(), zone),
            datetime.combine(f.end + timedelta(days=1), datetime.min.time(), zone), zone)


def services(conn: Connection, f: Any) -> list[dict[str, Any]]:
    """一网通办: applications submitted and finished in the period, 按时办结率, 好差评, 整改."""
    start, end, zone = _bounds(conn, f)
    where = [applications.c.department_code == f.department] if f.department else []
    submitted = conn.execute(sa.select(sa.func.count()).select_from(applications).where(
        applications.c.submitted_at >= start, applications.c.submitted_at < end, *where)).scalar_one()
    finished = conn.execute(sa.select(applications.c.finished_at, applications.c.due_on).where(
        applications.c.finished_at >= start, applications.c.finished_at < end, *where)).all()
    timed = [r for r in finished if r.due_on is not None]
    on_time = sum(r.finished_at.astimezone(zone).date() <= r.due_on for r in timed)
    levels: dict[int, int] = dict(conn.execute(sa.select(application_ratings.c.level, sa.func.count())
                               .select_from(application_ratings.join(applications))
                               .where(application_ratings.c.rated_at >= start, application_ratings.c.rated_at < end,
                                      *where).group_by(application_ratings.c.level)).all())
    rated = sum(levels.values())
    rect_where = [rectifications.c.department_code == f.department] if f.department else []
    opened = conn.execute(sa.select(sa.func.count()).select_from(rectifications).where(
        rectifications.c.opened_at >= start, rectifications.c.opened_at < end, *rect_where)).scalar_one()
    return [
        _figure("applications_submitted", "申请受理", "Applications submitted", submitted,
                "期间内提交的办件数。", "Applications submitted in the period."),
        _figure("applications_finished", "办结件数", "Applications finished", len(finished),
                "期间内办结（批准、不予批准、不予受理、撤回）的办件数。",
                "Applications finished in the period (approved, refused, not accepted or withdrawn)."),
        _figure("applications_on_time", "按时办结率", "Finished on time", _rate(on_time, len(timed)),
                "期间内办结且有法定时限的办件中，在时限日（含暂停、延期）之内办结的比例。",
                "Of the applications finished in the period with a legal time limit, the share finished by their "
                "due day (pauses and extensions included).", "percent"),
        _figure("ratings_good", "好评率", "Rated good", _rate(levels.get(4, 0) + levels.get(5, 0), rated),
                f"期间内好差评中“满意”“非常满意”的比例（共 {rated} 条；1–5 级分别 "
                f"{'、'.join(str(levels.get(i, 0)) for i in range(1, 6))}）。",
                f"Of the ratings in the period, the share “satisfied” or “very satisfied” ({rated} in all; levels 1–5: "
                f"{', '.join(str(levels.get(i, 0)) for i in range(1, 6))}).", "percent"),
        _figure("rectifications_opened", "差评整改", "Rectifications opened", opened,
                "期间内因差评启动的整改数。", "Rectifications opened in the period after a poor rating."),
    ]


def sharing(conn: Connection, f: Any) -> list[dict[str, Any]]:
    """Data sharing: requests submitted and answered in the period, and answered by their due day."""
    start, end, zone = _bounds(conn, f)
    where = [data_requests.c.provider == f.department] if f.department else []
    submitted = conn.execute(sa.select(sa.func.count()).select_from(data_requests).where(
        data_requests.c.submitted_at >= start, data_requests.c.submitted_at < end, *where)).scalar_one()
    decided = conn.execute(sa.select(data_requests.c.decided_at, data_requests.c.due_on).where(
        data_requests.c.decided_at >= start, data_requests.c.decided_at < end,
        data_requests.c.state.in_(("granted", "refused")), *where)).all()
    on_time = sum(r.decided_at.astimezone(zone).date() <= r.due_on for r in decided)
    return [
        _figure("requests_submitted", "共享申请", "Data requests", submitted,
                "期间内提交的数据共享申请数。", "Data-sharing requests submitted in the period."),
        _figure("requests_answered", "已答复", "Requests answered", len(decided),
                "期间内提供方作出同意或拒绝的申请数。", "Requests the provider granted or refused in the period."),
        _figure("requests_on_time", "按时答复率", "Answered on time", _rate(on_time, len(decided)),
                "期间内答复的申请中，在答复时限日（工作日）之内答复的比例。",
                "Of the requests answered in the period, the share answered by their due working day.", "percent"),
    ]


def enterprise(conn: Connection, f: Any) -> list[dict[str, Any]]:
    """Enterprise policies: benefits granted without an application (免申即享) or applied for (快申快享) in
    the period, against the enterprises eligible now."""
    start, end, _ = _bounds(conn, f)
    eligible = conn.execute(sa.select(sa.func.count()).select_from(policy_matches).where(
        policy_matches.c.outcome == "eligible")).scalar_one()
    granted = conn.execute(sa.select(sa.func.count()).select_from(policy_matches).where(
        policy_matches.c.granted_at >= start, policy_matches.c.granted_at < end)).scalar_one()
    applied = conn.execute(sa.select(sa.func.count()).select_from(policy_matches.join(
        applications, applications.c.id == policy_matches.c.application_id)).where(
        policy_matches.c.granted_at.is_(None),  # a grant is an application too, submitted and decided at once
        applications.c.submitted_at >= start, applications.c.submitted_at < end)).scalar_one()
    return [
        _figure("policy_eligible", "符合条件（当前）", "Eligible now", eligible,
                "当前符合条件的企业 × 政策对数。", "Enterprise × policy pairs eligible now."),
        _figure("policy_granted", "免申即享兑现", "Granted without applying", granted,
                "期间内免申即享直接兑现的数量。", "Benefits granted in the period without an application (免申即享)."),
        _figure("policy_applied", "快申快享申请", "Applied for", applied,
                "期间内企业经预填申请（快申快享）提交的数量。",
                "Benefits applied for in the period through a pre-filled application (快申快享)."),
        _figure("policy_no_application_share", "免申即享占比", "Share without applying",
                _rate(granted, granted + applied),
                "期间内兑现途径中免申即享所占比例。",
                "Of the benefits granted or applied for in the period, the share granted without applying.",
                "percent"),
    ]


def sensors(conn: Connection, f: Any, now: datetime) -> list[dict[str, Any]]:
    """Sensors: devices provisioned, heard from in the last day or silent, and the cases they opened."""
    start, end, _ = _bounds(conn, f)
    provisioned = conn.execute(sa.select(sa.func.count()).select_from(devices)).scalar_one()
    heard = conn.execute(sa.select(sa.func.count()).select_from(devices.join(
        entities, sa.and_(entities.c.tenant == devices.c.tenant, entities.c.entity_id == devices.c.entity_id)))
        .where(entities.c.modified_at >= now - SILENT_AFTER)).scalar_one()
    opened = conn.execute(sa.select(sa.func.count()).select_from(cases).where(
        cases.c.source == "sensor", cases.c.created_at >= start, cases.c.created_at < end)).scalar_one()
    open_now = conn.execute(sa.select(sa.func.count()).select_from(cases).where(
        cases.c.source == "sensor", cases.c.status.in_([s.value for s in OPEN_STATES]))).scalar_one()
    return [
        _figure("devices", "接入设备", "Devices", provisioned, "已登记的传感设备数。", "Sensor devices provisioned."),
        _figure("devices_online", "在线设备", "Heard from today", heard,
                "24 小时内有读数的设备数。", "Devices whose entity changed in the last 24 hours."),
        _figure("devices_silent", "静默设备（疑似故障）", "Silent (possibly faulty)", provisioned - heard,
                "24 小时内没有读数的设备数：可能离线或故障。",
                "Devices with no reading in the last 24 hours: offline or faulty."),
        _figure("sensor_cases", "传感立案", "Cases opened by sensors", opened,
                "期间内由传感规则开立的案件数。", "Cases opened by sensor rules in the period."),
        _figure("sensor_cases_open", "传感案件在办", "Sensor cases open now", open_now,
                "当前在办的传感案件数。", "Cases opened by sensors that are open now."),
    ]


def loop_figures(conn: Connection, f: Any, now: datetime) -> list[dict[str, Any]]:
    """The four loops, each with its figures (the department filter applies where the loop has one)."""
    return [
        {"code": "services", "name_zh": "一网通办", "name_en": "Service applications", "figures": services(conn, f)},
        {"code": "sharing", "name_zh": "数据共享", "name_en": "Data sharing", "figures": sharing(conn, f)},
        {"code": "enterprise", "name_zh": "惠企政策", "name_en": "Enterprise policies", "figures": enterprise(conn, f)},
        {"code": "sensors", "name_zh": "物联感知", "name_en": "Sensors", "figures": sensors(conn, f, now)},
    ]
