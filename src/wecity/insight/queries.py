"""The operations centre's read model: KPIs for any filter with the previous period beside them, the next
level of the drill-down (city → district → department → category → the cases → one case), open and
overdue cases now, and tables for export.

Figures of the period come from the daily rollup, never from scanning cases: a sum over the days,
districts, departments, categories and channels the filter keeps, over the process's copy of the rollup in
memory (wecity.insight.frame) when the caller passes it. Open and overdue cases are
the state now, counted by the database over open cases only (an index on status).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.choices import ACK_CLOCK_STATES, OPEN_STATES, RESOLVE_CLOCK_STATES
from wecity.cases.models import cases, categories, timeline
from wecity.geo.models import areas
from wecity.geo.service import city_timezone
from wecity.identity.models import departments
from wecity.insight.frame import Frame, load
from wecity.insight.kpis import KPIS
from wecity.insight.models import COUNTERS
from wecity.insight.rollup import as_of

LEVELS = ("district", "department", "category")
CHANNELS = ("portal", "open311", "hotline", "sensor", "enterprise")
MAX_DAYS = 366
LIST_LIMIT = 500
EXPORT_LIMIT = 10_000  # cases in one export file; a longer list says so in its last row


@dataclass(frozen=True, slots=True)
class Filters:
    """What a view shows: a period of local days (inclusive) and, each optional, a district (area code),
    a department (code), a category (code) and an intake channel."""

    start: date
    end: date
    district: str | None = None
    department: str | None = None
    category: str | None = None
    channel: str | None = None

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Filters:
        """The same filter over the period of the same length just before."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    @property
    def level(self) -> str:
        """The level the drill-down shows next: districts, then departments, then categories, then cases."""
        if self.district is None:
            return "district"
        if self.department is None:
            return "department"
        if self.category is None:
            return "category"
        return "cases"

    def params(self) -> dict[str, str]:
        """As query parameters (what the page's URL holds)."""
        out = {"from": self.start.isoformat(), "to": self.end.isoformat()}
        for name in ("district", "department", "category", "channel"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


def default_filters(conn: Connection, now: datetime, days: int = 30) -> Filters:
    today = now.astimezone(city_timezone(conn)).date()
    return Filters(start=today - timedelta(days=days - 1), end=today)


@dataclass(frozen=True, slots=True)
class _Ids:
    area_id: int | None
    department_id: int | None


def _ids(conn: Connection, f: Filters) -> _Ids:
    area = conn.execute(sa.select(areas.c.id).where(areas.c.code == f.district)).scalar() if f.district else None
    department = (conn.execute(sa.select(departments.c.id).where(departments.c.code == f.department)).scalar()
                  if f.department else None)
    return _Ids(-1 if f.district and area is None else area, -1 if f.department and department is None else department)


def _selection(frame: Frame, f: Filters, ids: _Ids) -> tuple[slice, Any]:
    return frame.select(f.start, f.end, area=ids.area_id, department=ids.department_id, category=f.category,
                        channel=f.channel)


def _frame(conn: Connection, frame: Frame | None) -> Frame:
    """The rollup in memory: the process's copy when the caller has one, else read now."""
    return frame if frame is not None else Frame.from_rows(load(conn))


def _open_conditions(f: Filters, ids: _Ids) -> list[Any]:
    return [cases.c.status.in_([s.value for s in OPEN_STATES]), *_case_conditions(f, ids)]


def _case_conditions(f: Filters, ids: _Ids) -> list[Any]:
    """The filter's district, department, category and channel on cases (the period aside)."""
    where: list[Any] = []
    if ids.area_id is not None:
        where.append(cases.c.area_id == ids.area_id)
    if ids.department_id is not None:
        where.append(cases.c.department_id == ids.department_id)
    if f.category:
        # Wrapped, so that no planner reads every case of the category by its index (there is one, for
        # intake's merge) rather than the few open ones by the index on status.
        where.append(sa.func.coalesce(cases.c.category_code, "") == f.category)
    if f.channel:
        where.append(cases.c.channel == f.channel)
    return where


def _received_conditions(f: Filters, ids: _Ids) -> list[Any]:
    """The filter on the cases received, as the rollup counts them (wecity.insight.counting): under the
    category and department each case had when it was submitted — the category it left at its first
    re-filing, the department of its first dispatch — and merged ones too (a case later folded into
    another was received all the same)."""
    where: list[Any] = []
    if ids.area_id is not None:
        where.append(cases.c.area_id == ids.area_id)
    if ids.department_id is not None:
        first_dispatch = (sa.select(timeline.c.department_id)
                          .where(timeline.c.case_id == cases.c.id, timeline.c.event == "dispatched",
                                 timeline.c.department_id.is_not(None))
                          .order_by(timeline.c.id).limit(1).scalar_subquery())
        where.append(sa.func.coalesce(first_dispatch, cases.c.department_id) == ids.department_id)
    if f.category:
        first_refiling = (sa.select(timeline.c.detail["from"].as_string())
                          .where(timeline.c.case_id == cases.c.id, timeline.c.event == "recategorised")
                          .order_by(timeline.c.id).limit(1).scalar_subquery())
        where.append(sa.func.coalesce(first_refiling, cases.c.category_code, "") == f.category)
    if f.channel:
        where.append(cases.c.channel == f.channel)
    return where


def _overdue(now: datetime) -> Any:
    return sa.or_(
        sa.and_(cases.c.status.in_([s.value for s in ACK_CLOCK_STATES]), cases.c.ack_due_at < now),
        sa.and_(cases.c.status.in_([s.value for s in RESOLVE_CLOCK_STATES]), cases.c.resolve_due_at < now))


_GROUP_COLUMNS = {"district": cases.c.area_id, "department": cases.c.department_id, "category": cases.c.category_code}


def _open_counts(conn: Connection, f: Filters, ids: _Ids, now: datetime, by: str | None) -> dict[Any, tuple[int, int]]:
    """(open, overdue) cases now under the filter (the period aside), per district, department or category
    (`by`), or all under the key None; counted by the database over the open cases (the index on status)."""
    group = _GROUP_COLUMNS[by] if by else sa.literal(None)
    conditions = [cases.c.status.in_([s.value for s in OPEN_STATES]), *_case_conditions(f, ids)]
    out: dict[Any, tuple[int, int]] = {}
    for key, n, late in conn.execute(sa.select(group, sa.func.count(), sa.func.sum(
            sa.case((_overdue(now), 1), else_=0))).where(*conditions).group_by(group)):
        out[key if key is not None or by is None else 0] = (int(n), int(late or 0))  # 0: none yet, as the rollup
    return out


def _total(counts: dict[Any, tuple[int, int]]) -> tuple[int, int]:
    return sum(n for n, _ in counts.values()), sum(late for _, late in counts.values())


def _kpi_rows(sums: dict[str, int], before: dict[str, int]) -> list[dict[str, Any]]:
    out = []
    for k in KPIS:
        value, previous = k.value(sums), k.value(before)
        change = None if value is None or previous is None else round(value - previous, 2)
        trend = "flat" if not change else ("up" if change > 0 else "down")
        good = None if not change or not k.better else (change > 0) == (k.better > 0)
        out.append({"code": k.code, "name_zh": k.name_zh, "name_en": k.name_en, "unit": k.unit, "value": value,
                    "previous": previous, "change": change, "trend": trend, "good": good,
                    "definition_zh": k.definition_zh, "definition_en": k.definition_en,
                    "numerator": list(k.numerator), "denominator": list(k.denominator)})
    return out


def _names(conn: Connection, level: str) -> dict[Any, dict[str, Any]]:
    if level == "district":
        rows = conn.execute(sa.select(areas.c.id, areas.c.code, areas.c.name_zh, areas.c.name_en))
    elif level == "department":
        rows = conn.execute(sa.select(departments.c.id, departments.c.code, departments.c.name_zh,
                                      departments.c.name_en))
    else:
        rows = conn.execute(sa.select(categories.c.code.label("id"), categories.c.code, categories.c.name_zh,
                                      categories.c.name_en))
    return {r.id: {"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en} for r in rows}


_LEVEL_DIMENSION = {"district": "area", "department": "department", "category": "category"}


def breakdown(conn: Connection, f: Filters, now: datetime, level: str | None = None,
              frame: Frame | None = None, open_counts: dict[Any, tuple[int, int]] | None = None,
              ) -> list[dict[str, Any]]:
    """One row per district, department or category under the filter: the period's counts and rates, and
    the open and overdue cases now; busiest first."""
    level = level or f.level
    ids = _ids(conn, f)
    data = _frame(conn, frame)
    part, mask = _selection(data, f, ids)
    sums = data.grouped(part, mask, _LEVEL_DIMENSION[level])
    now_counts = open_counts if open_counts is not None else _open_counts(conn, f, ids, now, level)
    names = _names(conn, level)
    rows = []
    for key in set(sums) | set(now_counts):
        s = sums.get(key, dict.fromkeys(COUNTERS, 0))
        open_now, overdue_now = now_counts.get(key, (0, 0))
        name = names.get(key, {"code": None, "name_zh": "（未定）", "name_en": "(none)"})
        rows.append({"id": key, **name, "received": s["received"], "resolved": s["resolved"],
                     "on_time_rate": _rate(s["resolved_on_time"], s["resolved"]),
                     "solved_rate": _rate(s["solved"], s["rated"]), "returned": s["returned"],
                     "recategorised": s["recategorised"], "reopened": s["reopened"], "urged": s["urged"],
                     "open": open_now, "overdue": overdue_now})
    return sorted(rows, key=lambda r: (-r["received"], -r["open"], str(r["code"])))


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def figures(conn: Connection, f: Filters, now: datetime, frame: Frame | None = None) -> dict[str, Any]:
    """Everything the dashboard shows for a filter (the breakdown at the filter's next level)."""
    ids = _ids(conn, f)
    data = _frame(conn, frame)
    sums = data.sums(*_selection(data, f, ids))
    before = data.sums(*_selection(data, f.previous(), ids))
    level = f.level
    open_counts = _open_counts(conn, f, ids, now, level if level != "cases" else None)
    open_now, overdue_now = _total(open_counts)
    return {"filters": asdict(f) | {"start": f.start.isoformat(), "end": f.end.isoformat()},
            "previous": {"start": f.previous().start.isoformat(), "end": f.previous().end.isoformat()},
            "kpis": _kpi_rows(sums, before), "open": open_now, "overdue": overdue_now,
            "level": level, "breakdown": breakdown(conn, f, now, frame=data, open_counts=open_counts)
            if level != "cases" else [],
            "counters": sums, "as_of": as_of(conn)}


def case_list(conn: Connection, f: Filters, now: datetime, *, which: str = "received",
              limit: int = LIST_LIMIT) -> list[dict[str, Any]]:
    """The cases behind a figure: opened in the period (`received`), open now (`open`) or overdue now
    (`overdue`), under the filter; the most urgent first for open and overdue, the newest first else."""
    from wecity.cases.queries import RUNNING_DUE, next_deadline

    ids = _ids(conn, f)
    zone = city_timezone(conn)
    conditions: list[Any]
    if which in ("open", "overdue"):
        conditions = _open_conditions(f, ids) + ([_overdue(now)] if which == "overdue" else [])
    else:
        start = datetime.combine(f.start, datetime.min.time(), zone)
        end = datetime.combine(f.end + timedelta(days=1), datetime.min.time(), zone)
        conditions = [*_received_conditions(f, ids), cases.c.created_at >= start, cases.c.created_at < end]
    rows = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.category_code, cases.c.created_at,
                                  cases.c.ack_due_at, cases.c.resolve_due_at, cases.c.description,
                                  categories.c.name_zh.label("category_zh"), categories.c.name_en.label("category_en"),
                                  areas.c.name_zh.label("area_zh"), areas.c.name_en.label("area_en"),
                                  departments.c.name_zh.label("department_zh"),
                                  departments.c.name_en.label("department_en"))
                        .select_from(cases.join(categories, categories.c.code == cases.c.category_code)
                                     .outerjoin(areas, areas.c.id == cases.c.area_id)
                                     .outerjoin(departments, departments.c.id == cases.c.department_id))
                        .where(*conditions)
                        # Ordered before the cut: the most overdue are the ones a list of the first N must hold.
                        .order_by(*((RUNNING_DUE.is_(None), RUNNING_DUE, cases.c.id) if which in ("open", "overdue")
                                    else (cases.c.id.desc(),)))
                        .limit(limit)).all()
    out = [{"id": r.id, "status": r.status, "category_code": r.category_code, "category_zh": r.category_zh,
            "category_en": r.category_en, "area_zh": r.area_zh, "area_en": r.area_en,
            "department_zh": r.department_zh, "department_en": r.department_en, "created_at": r.created_at,
            "due_at": next_deadline(r), "overdue": bool((next_deadline(r) or now) < now),
            "description": (r.description or "")[:120]} for r in rows]
    return out
