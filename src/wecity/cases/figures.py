"""Figures of the case engine for the operations centre: today's counts, closure rates, satisfaction, trend,
by department and district, open cases on a map. Days are the city's own (its time zone)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import OPEN_STATES, CaseStatus
from wecity.cases.models import cases, categories, ratings
from wecity.cases.queries import next_deadline
from wecity.geo.models import areas
from wecity.geo.service import city_timezone
from wecity.identity.models import departments

WINDOW_DAYS = 30
CLOSED = (CaseStatus.CLOSED.value,)
NOT_COUNTED = (CaseStatus.MERGED.value,)  # a merged case is a duplicate, not a case of its own


def _on_time(row: Any) -> bool:
    finished = row.resolved_at or row.closed_at
    return bool(finished and row.resolve_due_at and finished <= row.resolve_due_at)


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def overview(conn: Connection, now: datetime) -> dict[str, Any]:
    city_time = city_timezone(conn)
    local_today = now.astimezone(city_time).date()
    start_of_today = datetime.combine(local_today, time(), city_time)
    since = datetime.combine(local_today - timedelta(days=WINDOW_DAYS - 1), time(), city_time)
    open_states = [s.value for s in OPEN_STATES]
    rows = conn.execute(sa.select(
        cases.c.id, cases.c.status, cases.c.department_id, cases.c.area_id, cases.c.created_at, cases.c.closed_at,
        cases.c.resolved_at, cases.c.ack_due_at, cases.c.resolve_due_at, cases.c.lat, cases.c.long,
        cases.c.category_code, cases.c.urged_at,
    ).where(cases.c.status.not_in(NOT_COUNTED), sa.or_(
        cases.c.created_at >= since, cases.c.closed_at >= since, cases.c.status.in_(open_states)))).all()

    received_today = sum(1 for r in rows if r.created_at >= start_of_today)
    open_rows = [r for r in rows if r.status in open_states]
    overdue = [r for r in open_rows if (next_deadline(r) or now) < now]
    window = [r for r in rows if r.created_at >= since]
    closed_in_window = [r for r in rows if r.status in CLOSED and r.closed_at and r.closed_at >= since]
    stars = conn.execute(sa.select(sa.func.avg(ratings.c.stars), sa.func.count())
                         .where(ratings.c.at >= since)).one()

    days = [local_today - timedelta(days=WINDOW_DAYS - 1 - i) for i in range(WINDOW_DAYS)]
    received_by_day: dict[date, int] = defaultdict(int)
    closed_by_day: dict[date, int] = defaultdict(int)
    for r in window:
        received_by_day[r.created_at.astimezone(city_time).date()] += 1
    for r in closed_in_window:
        closed_by_day[r.closed_at.astimezone(city_time).date()] += 1

    names = {
        "department": {r.id: {"zh_CN": r.name_zh, "en": r.name_en}
                       for r in conn.execute(sa.select(departments.c.id, departments.c.name_zh, departments.c.name_en))},
        "area": {r.id: {"zh_CN": r.name_zh, "en": r.name_en}
                 for r in conn.execute(sa.select(areas.c.id, areas.c.name_zh, areas.c.name_en))},
    }

    def table(key: str) -> list[dict[str, Any]]:
        out: dict[Any, dict[str, Any]] = {}

        def entry(k: Any) -> dict[str, Any]:
            return out.setdefault(k, {"id": k, "names": names[key].get(k, {"zh_CN": "—", "en": "—"}), "received": 0,
                                      "open": 0, "overdue": 0, "closed": 0, "on_time": 0})

        attribute = "department_id" if key == "department" else "area_id"
        for r in window:
            entry(getattr(r, attribute))["received"] += 1
        for r in open_rows:
            entry(getattr(r, attribute))["open"] += 1
        for r in overdue:
            entry(getattr(r, attribute))["overdue"] += 1
        for r in closed_in_window:
            e = entry(getattr(r, attribute))
            e["closed"] += 1
            e["on_time"] += _on_time(r)
        for e in out.values():
            e["on_time_rate"] = _rate(e["on_time"], e["closed"])
        return sorted(out.values(), key=lambda e: (-e["received"], str(e["id"])))

    return {
        "received_today": received_today,
        "open": len(open_rows),
        "overdue": len(overdue),
        # 市民催办 not yet answered by a step of the work or a public reply.
        "urged": sum(1 for r in open_rows if r.urged_at is not None),
        "received_30d": len(window),
        "closed_30d": len(closed_in_window),
        # 按期结案率: of the cases closed in the window, the share resolved by the resolve deadline.
        "on_time_rate": _rate(sum(_on_time(r) for r in closed_in_window), len(closed_in_window)),
        # 结案率: of the cases received in the window, the share closed by now.
        "closure_rate": _rate(sum(1 for r in window if r.status in CLOSED), len(window)),
        "satisfaction": round(float(stars[0]), 2) if stars[0] is not None else None,
        "ratings": int(stars[1]),
        "trend": {"days": [d.isoformat() for d in days], "received": [received_by_day[d] for d in days],
                  "closed": [closed_by_day[d] for d in days]},
        "by_department": table("department"),
        "by_area": table("area"),
    }


def open_cases_geojson(conn: Connection, now: datetime) -> dict[str, Any]:
    """Open cases with a location, as GeoJSON points carrying their status (for the operations map)."""
    open_states = [s.value for s in OPEN_STATES]
    rows = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.lat, cases.c.long, cases.c.ack_due_at,
                                  cases.c.resolve_due_at, categories.c.name_zh, categories.c.name_en)
                        .select_from(cases.join(categories, categories.c.code == cases.c.category_code))
                        .where(cases.c.status.in_(open_states), cases.c.lat.is_not(None))).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": r.id, "geometry": {"type": "Point", "coordinates": [r.long, r.lat]},
         "properties": {"status": r.status, "name_zh": r.name_zh, "name_en": r.name_en,
                        "overdue": bool((next_deadline(r) or now) < now)}}
        for r in rows]}
