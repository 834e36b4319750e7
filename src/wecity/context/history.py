"""Attribute history for the temporal API: every change stored as an instance; queries by time and
aggregation per period done in SQL (one GROUP BY over an index range)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import transient
from wecity.context.bulk import driver, dumps_document, insert_many, run, sqlite_timestamp
from wecity.context.entity import VALUE_MEMBER, now_text, parse_time
from wecity.context.env import Env
from wecity.context.errors import bad_request_data
from wecity.context.models import attribute_history as h

AGGREGATES = ("totalCount", "distinctCount", "sum", "avg", "min", "max")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def epoch(value: datetime) -> float:
    return (value - _EPOCH).total_seconds()


def from_epoch(value: float) -> datetime:
    return _EPOCH + timedelta(seconds=value)


# The aggregation periods a temporal query may ask for (besides PT0S, the whole time range): timestamps are
# kept to the millisecond, and a period's end must still be a date (a number too big for one is no period).
MIN_PERIOD = 0.001
MAX_PERIOD = 1000 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in an ISO 8601 duration; a year counts 365 days and a month 30 (fixed-length buckets)."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise bad_request_data(f"invalid ISO 8601 duration {text!r}", f"ISO 8601 时长无效：{text!r}")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return (parts.get("y", 0) * 365 * 86400 + parts.get("mo", 0) * 30 * 86400 + parts.get("w", 0) * 7 * 86400
            + parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("mi", 0) * 60 + parts.get("s", 0))


def _instance_time(attr: dict[str, Any], fallback: float) -> float:
    observed = attr.get("observedAt")
    if isinstance(observed, str):
        try:
            parsed = datetime.fromisoformat(observed.replace("Z", "+00:00"))
            return epoch(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))
        except ValueError:
            return fallback
    return fallback


def _rows(env: Env, entity_id: str, entity_type: str, changed: dict[str, Any]) -> list[dict[str, Any]]:
    fallback = epoch(env.now)
    out = []
    for iri, attr in changed.items():
        for inst in attr if type(attr) is list else (attr,):  # a multi-attribute: one row per instance
            out.append(dict(tenant=env.tenant, entity_id=entity_id, entity_type=entity_type, attr=iri,
                            ts=_instance_time(inst, fallback), number=_number(inst), instance=inst,
                            recorded_at=env.now))
    return out


def _number(attr: dict[str, Any]) -> float | None:
    value = attr.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record(conn: Connection, env: Env, entity_id: str, entity_type: str, changed: dict[str, Any]) -> None:
    rows = _rows(env, entity_id, entity_type, changed)
    if rows:
        insert_many(conn, h, rows)


_RAW_INSERT = ("INSERT INTO ngsild_attribute_history (tenant, entity_id, entity_type, attr, ts, number, instance,"
               " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")


def record_many(conn: Connection, env: Env, items: list[tuple[str, str, dict[str, Any]]]) -> None:
    raw = driver(conn)
    if raw is not None:
        # SQLite: the rows as the driver takes them, without a dict per row (a batch has thousands).
        fallback, stamp, tenant = epoch(env.now), sqlite_timestamp(env.now), env.tenant
        values = [(tenant, entity_id, entity_type, iri, _instance_time(inst, fallback), _number(inst),
                   dumps_document(inst), stamp)
                  for entity_id, entity_type, changed in items for iri, attr in changed.items()
                  for inst in (attr if type(attr) is list else (attr,))]  # a multi-attribute: a row each
        if values:
            run(raw, _RAW_INSERT, values, many=True)
        return
    rows = [r for entity_id, entity_type, changed in items for r in _rows(env, entity_id, entity_type, changed)]
    if rows:
        insert_many(conn, h, rows)


# -- queries --------------------------------------------------------------------------------------

@dataclass
class TimeFilter:
    timerel: str | None = None
    time_at: float | None = None
    end_time_at: float | None = None

    @classmethod
    def parse(cls, timerel: str | None, time_at: str | None, end_time_at: str | None) -> TimeFilter:
        if timerel is None:
            if time_at or end_time_at:
                raise bad_request_data("timeAt needs timerel", "timeAt 需要 timerel")
            return cls()
        if timerel not in ("before", "after", "between"):
            raise bad_request_data(f"unknown timerel {timerel!r}", f"未知的 timerel：{timerel!r}")
        if not time_at:
            raise bad_request_data("timerel needs timeAt", "timerel 需要 timeAt")
        start = epoch(parse_time(time_at, "timeAt"))
        end = None
        if timerel == "between":
            if not end_time_at:
                raise bad_request_data("timerel=between needs endTimeAt", "timerel=between 需要 endTimeAt")
            end = epoch(parse_time(end_time_at, "endTimeAt"))
            if end <= start:
                raise bad_request_data("endTimeAt must be after timeAt", "endTimeAt 必须晚于 timeAt")
        return cls(timerel, start, end)

    def where(self) -> list[Any]:
        if self.timerel == "before":
            return [h.c.ts < self.time_at]
        if self.timerel == "after":
            return [h.c.ts >= self.time_at]
        if self.timerel == "between":
            return [h.c.ts >= self.time_at, h.c.ts < self.end_time_at]
        return []


def entities_with_history(conn: Connection, tenant: str, *, types: list[str] | None, ids: list[str] | None,
                          limit: int, offset: int) -> list[tuple[str, str]]:
    stmt = sa.select(h.c.entity_id, h.c.entity_type).where(h.c.tenant == tenant).distinct()
    if types is not None:
        stmt = stmt.where(h.c.entity_type.in_(types))
    if ids is not None:
        stmt = stmt.where(h.c.entity_id.in_(ids))
    stmt = stmt.order_by(h.c.entity_id).limit(limit).offset(offset)
    return [(r.entity_id, r.entity_type) for r in conn.execute(stmt)]


def entity_type_of(conn: Connection, tenant: str, entity_id: str) -> str | None:
    return conn.execute(sa.select(h.c.entity_type).where(h.c.tenant == tenant, h.c.entity_id == entity_id)
                        .limit(1)).scalar_one_or_none()


def instances(conn: Connection, tenant: str, entity_id: str, attrs: list[str] | None, when: TimeFilter, *,
              last_n: int | None = None) -> dict[str, list[tuple[int, float, dict[str, Any]]]]:
    """Attribute IRI -> [(pk, ts, instance)] in time order (the last `last_n` of each when given). The
    instances of a transient attribute are left out once their expiresAt has passed (clause 4.22); an
    expired entity's own history stays."""
    stmt = sa.select(h.c.pk, h.c.attr, h.c.ts, h.c.instance).where(
        h.c.tenant == tenant, h.c.entity_id == entity_id, *when.where())
    if attrs is not None:
        stmt = stmt.where(h.c.attr.in_(attrs))
    out: dict[str, list[tuple[int, float, dict[str, Any]]]] = {}
    now: datetime | None = None
    for row in conn.execute(stmt.order_by(h.c.attr, h.c.ts, h.c.pk)):
        if "expiresAt" in row.instance:
            now = now or datetime.now(UTC)
            if not transient.alive(row.instance, now):
                continue
        out.setdefault(row.attr, []).append((row.pk, row.ts, row.instance))
    if last_n:
        out = {k: v[-last_n:] for k, v in out.items()}
    return out


def aggregate(conn: Connection, tenant: str, entity_id: str, attrs: list[str] | None, when: TimeFilter,
              methods: list[str], period: float | None) -> dict[str, dict[str, list[list[Any]]]]:
    """Attribute IRI -> method -> [[value, startAt, endAt], ...], one entry per period with data."""
    base = [h.c.tenant == tenant, h.c.entity_id == entity_id, *when.where()]
    if attrs is not None:
        base.append(h.c.attr.in_(attrs))
    start = when.time_at if when.timerel in ("after", "between") else None
    if start is None:
        start = conn.execute(sa.select(sa.func.min(h.c.ts)).where(*base)).scalar_one_or_none()
        if start is None:
            return {}
    offset = h.c.ts - start
    number: Any = sa.literal(0)
    if period:
        raw = offset / period
        number = sa.func.floor(raw) if conn.dialect.name == "postgresql" else sa.cast(raw, sa.Integer)
    bucket = number.label("bucket")
    # Only the aggregates asked for: a distinct count sorts every group's values, the dearest of them.
    columns = {"n": sa.func.count(), "dn": sa.func.count(sa.distinct(h.c.number)), "s": sa.func.sum(h.c.number),
               "a": sa.func.avg(h.c.number), "lo": sa.func.min(h.c.number), "hi": sa.func.max(h.c.number)}
    pick = {"totalCount": "n", "distinctCount": "dn", "sum": "s", "avg": "a", "min": "lo", "max": "hi"}
    wanted = {pick[m] for m in methods}
    stmt = sa.select(h.c.attr, bucket, *[c.label(k) for k, c in columns.items() if k in wanted],
                     sa.func.max(h.c.ts).label("last")
                     ).where(*base).group_by(h.c.attr, bucket).order_by(h.c.attr, bucket)
    out: dict[str, dict[str, list[list[Any]]]] = {}
    for row in conn.execute(stmt):
        b = int(row.bucket)
        if period:
            lo, hi = start + b * period, start + (b + 1) * period
        else:
            lo, hi = start, (when.end_time_at if when.timerel == "between" else row.last)
        span = [now_text(from_epoch(lo)), now_text(from_epoch(hi))]
        per_attr = out.setdefault(row.attr, {})
        for method in methods:
            value = getattr(row, pick[method])
            if value is not None and method in ("sum", "avg", "min", "max"):
                value = float(value)
            per_attr.setdefault(method, []).append([value, *span])
    return out


def delete_entity(conn: Connection, tenant: str, entity_id: str) -> int:
    return int(conn.execute(h.delete().where(h.c.tenant == tenant, h.c.entity_id == entity_id)).rowcount or 0)


def delete_attribute(conn: Connection, tenant: str, entity_id: str, attr: str) -> int:
    return int(conn.execute(h.delete().where(h.c.tenant == tenant, h.c.entity_id == entity_id,
                                             h.c.attr == attr)).rowcount or 0)


def value_of(instance: dict[str, Any]) -> Any:
    return instance.get(VALUE_MEMBER.get(instance.get("type", "Property"), "value"))


def recent_readings(conn: Connection, tenant: str, entity_id: str, attr: str, limit: int) -> list[tuple[float, float]]:
    """The last `limit` numeric readings of an attribute as (epoch seconds, value), oldest first (by observedAt,
    then as they arrived): a sensor judged against its own past. One index range, read from its end.
    Instances with a datasetId are another series and left out (in SQL, so that `limit` counts readings of
    the default instance, and no row's document is decoded here)."""
    rows = conn.execute(sa.select(h.c.ts, h.c.number).where(
        h.c.tenant == tenant, h.c.entity_id == entity_id, h.c.attr == attr, h.c.number.is_not(None),
        h.c.instance["datasetId"].as_string().is_(None))
        .order_by(h.c.ts.desc(), h.c.pk.desc()).limit(limit)).all()
    return [(float(r.ts), float(r.number)) for r in reversed(rows)]
