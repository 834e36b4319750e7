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
from wecity.context.entity import NULL, VALUE_MEMBER, parse_time
from wecity.context.env import Env
from wecity.context.errors import bad_request_data, too_many_results
from wecity.context.ldcontext import NGSI_LD
from wecity.context.models import attribute_history as h

AGGREGATES = ("totalCount", "distinctCount", "sum", "avg", "min", "max")
# Rows that are no attribute: the types a temporal representation was given (one row per type, so the type
# filter stays one indexed IN), kept apart from the attributes under a name no IRI can have.
TYPES = "@type"
# The most instances one temporal query reads to build its answer (the one-entity retrieval by observedAt
# reads only its page: `earliest_rows`, `newest_rows`).
MAX_ROWS_READ = 100_000
# The entity's scope, a temporal property of its own (4.18): each value valid from its time to the next.
SCOPE = NGSI_LD + "scope"
TIME_PROPERTIES = ("observedAt", "createdAt", "modifiedAt", "deletedAt")
INSTANCE_PREFIX = "urn:ngsi-ld:attribute:instance:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(
    r"^P(?:(?P<y>\d+(?:\.\d+)?)Y)?(?:(?P<mo>\d+(?:\.\d+)?)M)?(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<mi>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$")


def epoch(value: datetime) -> float:
    return (value - _EPOCH).total_seconds()


def from_epoch(value: float) -> datetime:
    return _EPOCH + timedelta(seconds=value)


def time_text(value: float) -> str:
    """An instant as NGSI-LD writes a DateTime: UTC with Z, milliseconds only when there are some
    (4.6.3; "12:03:00Z", "12:03:00.250Z")."""
    moment = from_epoch(round(value, 3))
    millis = moment.microsecond // 1000
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{millis:03d}Z" if millis else "Z")


def instance_id(pk: int) -> str:
    return f"{INSTANCE_PREFIX}{pk}"


def instance_pk(text: str) -> int | None:
    """The row an instanceId names, None when it names none the broker made."""
    tail = text[len(INSTANCE_PREFIX):] if text.startswith(INSTANCE_PREFIX) else ""
    return int(tail) if tail.isdigit() and len(tail) < 19 else None


# The aggregation periods a temporal query may ask for (besides PT0S, the whole time range): timestamps are
# kept to the millisecond, and a period's end must still be a date (a number too big for one is no period).
MIN_PERIOD = 0.001
MAX_PERIOD = 1000 * 365 * 86400.0


def parse_duration(text: str, what: str = "aggrPeriodDuration") -> float:
    """Seconds in an ISO 8601 duration; a year counts 365 days and a month 30 (fixed-length buckets)."""
    m = _DURATION.match(text or "")
    if not m or text in ("P", "PT") or text.endswith("T"):
        raise bad_request_data(f"{what} {text!r} is no ISO 8601 duration", f"{what} {text!r} 不是 ISO 8601 时长")
    parts = {k: float(v) for k, v in m.groupdict().items() if v}
    return (parts.get("y", 0) * 365 * 86400 + parts.get("mo", 0) * 30 * 86400 + parts.get("w", 0) * 7 * 86400
            + parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600 + parts.get("mi", 0) * 60 + parts.get("s", 0))


def instance_time(attr: dict[str, Any], fallback: float) -> float:
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
                            ts=instance_time(inst, fallback), number=_number(inst), instance=inst,
                            recorded_at=env.now))
    return out


def _number(attr: dict[str, Any]) -> float | None:
    value = attr.get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def record_deleted(conn: Connection, env: Env, entity_id: str, entity_type: str,
                   removed: dict[str, list[dict[str, Any]]]) -> None:
    """The instances an attribute deletion removed, as instances whose value is the NGSI-LD Null with
    the time they were deleted (`deletedAt`, 4.5.7): the temporal evolution shows the attribute ended."""
    stamp = _stamp(env)
    changed: dict[str, Any] = {}
    for iri, gone in removed.items():
        marks = []
        for inst in gone:
            kind = inst.get("type", "Property")
            mark: dict[str, Any] = {"type": kind, VALUE_MEMBER.get(kind, "value"):
                                    {"@none": NULL} if kind == "LanguageProperty" else NULL}
            if "datasetId" in inst:
                mark["datasetId"] = inst["datasetId"]
            mark["deletedAt"] = stamp
            marks.append(mark)
        changed[iri] = marks
    record(conn, env, entity_id, entity_type, changed)


def record_scope(conn: Connection, env: Env, entity_id: str, entity_type: str, scope: Any) -> None:
    """A change of the entity's scope as an instance of its temporal scope (4.5.6): a Property observed
    when it was made; a removed scope is an empty one, deleted then."""
    stamp = _stamp(env)
    inst: dict[str, Any] = {"type": "Property", "value": scope if scope is not None else []}
    if scope is None:
        inst["deletedAt"] = stamp
    else:
        inst.update(observedAt=stamp, createdAt=stamp, modifiedAt=stamp)
    record(conn, env, entity_id, entity_type, {SCOPE: inst})


def _stamp(env: Env) -> str:
    return time_text(epoch(env.now))


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
        values = [(tenant, entity_id, entity_type, iri, instance_time(inst, fallback), _number(inst),
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
    def parse(cls, timerel: Any, time_at: Any, end_time_at: Any) -> TimeFilter:
        if timerel is None or timerel == "":
            if time_at or end_time_at:
                raise bad_request_data("timeAt needs timerel", "timeAt 需要 timerel")
            return cls()
        if timerel not in ("before", "after", "between"):
            raise bad_request_data(f"unknown timerel {timerel!r}", f"未知的 timerel：{timerel!r}")
        if not time_at:
            raise bad_request_data("timerel needs timeAt", "timerel 需要 timeAt")
        start = epoch(_date_time(time_at, "timeAt"))
        end = None
        if timerel == "between":
            if not end_time_at:
                raise bad_request_data("timerel=between needs endTimeAt", "timerel=between 需要 endTimeAt")
            end = epoch(_date_time(end_time_at, "endTimeAt"))
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

    def holds(self, ts: float) -> bool:
        if self.timerel == "before":
            return ts < self.time_at  # type: ignore[operator]
        if self.timerel == "after":
            return ts >= self.time_at  # type: ignore[operator]
        if self.timerel == "between":
            return self.time_at <= ts < self.end_time_at  # type: ignore[operator]
        return True


def _date_time(value: Any, what: str) -> datetime:
    """A DateTime (4.6.3), not a Date alone: "2020-08-01" names a day, not an instant."""
    if not isinstance(value, str) or "T" not in value:
        raise bad_request_data(f"{what} must be a date-time, got {value!r}", f"{what} 必须是日期时间：{value!r}")
    return parse_time(value, what)


def entity_ids(conn: Connection, tenant: str, *, types: list[str] | None, ids: list[str] | None) -> list[str]:
    """The entities with a temporal representation, of one of `types` and among `ids` when given."""
    stmt = sa.select(h.c.entity_id).where(h.c.tenant == tenant).distinct()
    if types is not None:
        stmt = stmt.where(h.c.entity_type.in_(types))
    if ids is not None:
        stmt = stmt.where(h.c.entity_id.in_(ids))
    return [r.entity_id for r in conn.execute(stmt)]


def types_of(conn: Connection, tenant: str, ids: list[str]) -> dict[str, list[str]]:
    """Entity id -> its types, the first it was given first: the type rows of a temporal representation,
    else the type its first instance was recorded with (one index seek each, whatever the history's size)."""
    out: dict[str, list[str]] = {}
    stmt = (sa.select(h.c.entity_id, h.c.entity_type).where(h.c.tenant == tenant, h.c.entity_id.in_(ids),
                                                            h.c.attr == TYPES).order_by(h.c.pk))
    for row in conn.execute(stmt):
        if row.entity_type not in out.setdefault(row.entity_id, []):
            out[row.entity_id].append(row.entity_type)
    for entity_id in ids:
        if entity_id not in out:
            first = entity_type_of(conn, tenant, entity_id)
            if first is not None:
                out[entity_id] = [first]
    return out


def entity_type_of(conn: Connection, tenant: str, entity_id: str) -> str | None:
    return conn.execute(sa.select(h.c.entity_type).where(h.c.tenant == tenant, h.c.entity_id == entity_id)
                        .limit(1)).scalar_one_or_none()


Row = tuple[int, str, float, dict[str, Any]]  # pk, attribute IRI, epoch seconds, instance


def rows_of(conn: Connection, tenant: str, ids: list[str], *, attrs: list[str] | None,
            where: list[Any]) -> dict[str, list[Row]]:
    """Entity id -> its attribute instances (no type rows) in time order, those `where` keeps; more than
    MAX_ROWS_READ rows is TooManyResults (the answer is built in memory: a type's whole history would not fit)."""
    stmt = sa.select(h.c.pk, h.c.entity_id, h.c.attr, h.c.ts, h.c.instance).where(
        h.c.tenant == tenant, h.c.entity_id.in_(ids), h.c.attr != TYPES, *where)
    if attrs is not None:
        stmt = stmt.where(h.c.attr.in_(attrs))
    out: dict[str, list[Row]] = {}
    now: datetime | None = None
    read = 0
    ordered = stmt.order_by(h.c.entity_id, h.c.ts, h.c.pk).execution_options(yield_per=1000)
    with conn.execute(ordered) as result:  # streamed: the bound below is reached before the memory is filled
        for row in result:
            read += 1
            if read > MAX_ROWS_READ:
                raise too_many_results(
                    f"the request would read more than {MAX_ROWS_READ} attribute instances: narrow it by a time "
                    "interval (timerel, timeAt) or by entity types or ids",
                    f"该请求将读取超过 {MAX_ROWS_READ} 个属性实例：请用时间区间（timerel、timeAt）或实体类型、标识缩小范围")
            # The instances of a transient attribute are left out once their expiresAt has passed (clause
            # 4.22); an expired entity's own history stays.
            if "expiresAt" in row.instance:
                now = now or datetime.now(UTC)
                if not transient.alive(row.instance, now):
                    continue
            out.setdefault(row.entity_id, []).append((row.pk, row.attr, row.ts, row.instance))
    return out


def newest_rows(conn: Connection, tenant: str, entity_id: str, *, attrs: list[str] | None, where: list[Any],
                last_n: int, keep: Any = None) -> list[Row]:
    """The newest `last_n` instances of each attribute of one entity that `where` and `keep(instance)`
    keep (transient ones past their expiresAt left out, as `rows_of` does), in time order: what lastN
    shows, read newest first along the history's index and stopped there, not the whole history (a
    sensor's year of readings is half a million rows)."""
    def enough(found: list[Row], row: Any) -> bool:
        return len(found) == last_n

    return _each_attribute(conn, tenant, entity_id, attrs, where, keep, newest_first=True,
                           chunk=max(last_n, 16), stop_before=None, stop_after=enough)


def earliest_rows(conn: Connection, tenant: str, entity_id: str, *, attrs: list[str] | None, where: list[Any],
                  page: int, keep: Any = None) -> list[Row]:
    """Enough of one entity's oldest instances to answer a page of `page` instances as the whole history
    would (`temporal.boundary` and `cut`): of each attribute its oldest `page` + 1 that `where` and
    `keep(instance)` keep, and those at the same time as its `page`-th, in time order. The page-th
    oldest of all attributes together is among them, and so is every instance no later than it (one of an
    attribute past its own page-th can only be at that same time); the one past it says there are more.
    Read oldest first along the history's index and stopped there, not the whole history."""
    def past_the_page(found: list[Row], row: Any) -> bool:  # one past the page-th is read, and its ties
        return len(found) > page and row.ts != found[page - 1][2]

    return _each_attribute(conn, tenant, entity_id, attrs, where, keep, newest_first=False,
                           chunk=min(page + 1, 1000), stop_before=past_the_page, stop_after=None)


def _each_attribute(conn: Connection, tenant: str, entity_id: str, attrs: list[str] | None, where: list[Any],
                    keep: Any, *, newest_first: bool, chunk: int, stop_before: Any, stop_after: Any) -> list[Row]:
    """Each attribute's instances read along the history's index (newest or oldest first), those `where`
    and `keep(instance)` keep and transient ones not past their expiresAt (as `rows_of`), until
    `stop_before(found, row)` (the row not taken) or `stop_after(found, row)` (taken) says enough; all of
    them in time order."""
    names = sorted(attribute_names(conn, tenant, entity_id) if attrs is None else set(attrs))
    order = (h.c.ts.desc(), h.c.pk.desc()) if newest_first else (h.c.ts, h.c.pk)
    out: list[Row] = []
    now: datetime | None = None
    for attr in names:
        stmt = (sa.select(h.c.pk, h.c.attr, h.c.ts, h.c.instance)
                .where(h.c.tenant == tenant, h.c.entity_id == entity_id, h.c.attr == attr, *where)
                .order_by(*order).execution_options(yield_per=chunk))
        found: list[Row] = []
        with conn.execute(stmt) as result:  # closed when left early (on PostgreSQL a server-side cursor)
            for row in result:
                if "expiresAt" in row.instance:
                    now = now or datetime.now(UTC)
                    if not transient.alive(row.instance, now):
                        continue
                if keep is not None and not keep(row.instance):
                    continue
                if stop_before is not None and stop_before(found, row):
                    break
                found.append((row.pk, row.attr, row.ts, row.instance))
                if stop_after is not None and stop_after(found, row):
                    break
        out.extend(found)
    out.sort(key=lambda r: (r[2], r[0]))
    return out


def attribute_names(conn: Connection, tenant: str, entity_id: str) -> set[str]:
    return {r.attr for r in conn.execute(sa.select(h.c.attr).where(
        h.c.tenant == tenant, h.c.entity_id == entity_id, h.c.attr != TYPES).distinct())}


def instances(conn: Connection, tenant: str, entity_id: str, attrs: list[str] | None, when: TimeFilter, *,
              last_n: int | None = None) -> dict[str, list[tuple[int, float, dict[str, Any]]]]:
    """Attribute IRI -> [(pk, ts, instance)] in time order (the last `last_n` of each when given)."""
    out: dict[str, list[tuple[int, float, dict[str, Any]]]] = {}
    for pk, attr, ts, inst in rows_of(conn, tenant, [entity_id], attrs=attrs, where=when.where()).get(entity_id, []):
        out.setdefault(attr, []).append((pk, ts, inst))
    if last_n:
        out = {k: v[-last_n:] for k, v in out.items()}
    return out


def aggregate(conn: Connection, tenant: str, entity_id: str, attrs: list[str] | None, when: TimeFilter,
              methods: list[str], period: float | None) -> dict[str, dict[str, list[list[Any]]]]:
    """Attribute IRI -> method -> [[value, startAt, endAt], ...], one entry per period with data. Periods
    start at the first instance in the time range."""
    base = [h.c.tenant == tenant, h.c.entity_id == entity_id, *when.where()]
    base.append(h.c.attr.in_(attrs) if attrs is not None else h.c.attr != TYPES)
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
        span = [time_text(lo), time_text(hi)]
        per_attr = out.setdefault(row.attr, {})
        for method in methods:
            value = getattr(row, pick[method])
            if value is not None and method in ("sum", "avg", "min", "max"):
                value = float(value)
            per_attr.setdefault(method, []).append([value, *span])
    return out


# -- changes to the temporal representation ---------------------------------------------------------

def type_rows(env: Env, entity_id: str, types: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """The rows that give an entity its types in the history (one per type), for `record_many`."""
    return [(entity_id, t, {TYPES: {"type": "Types"}}) for t in types]


def delete_entity(conn: Connection, tenant: str, entity_id: str) -> int:
    return int(conn.execute(h.delete().where(h.c.tenant == tenant, h.c.entity_id == entity_id)).rowcount or 0)


def delete_attribute(conn: Connection, tenant: str, entity_id: str, attr: str, *, dataset: str | None = None,
                     every: bool = False) -> int:
    """Remove an attribute's instances: those of one datasetId (None: the default instances), or all."""
    cond = [h.c.tenant == tenant, h.c.entity_id == entity_id, h.c.attr == attr]
    if not every:
        pks = [r.pk for r in conn.execute(sa.select(h.c.pk, h.c.instance).where(*cond))
               if r.instance.get("datasetId") == dataset]
        if not pks:
            return 0
        cond.append(h.c.pk.in_(pks))
    return int(conn.execute(h.delete().where(*cond)).rowcount or 0)


def drop_same_instants(conn: Connection, env: Env, entity_id: str,
                       items: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Remove the stored instances the new ones take the place of: an attribute's instance of the same
    datasetId at the same time is the same observation given again (an upsert corrects it, 5.6.11)."""
    fallback = epoch(env.now)
    fresh = {(iri, instance_time(inst, fallback), inst.get("datasetId"))
             for _, _, changed in items for iri, inst in changed.items() if iri != TYPES and "observedAt" in inst}
    if not fresh:
        return
    stmt = sa.select(h.c.pk, h.c.attr, h.c.ts, h.c.instance).where(
        h.c.tenant == env.tenant, h.c.entity_id == entity_id, h.c.attr.in_({f[0] for f in fresh}),
        h.c.ts.in_({f[1] for f in fresh}))
    gone = [r.pk for r in conn.execute(stmt) if (r.attr, r.ts, r.instance.get("datasetId")) in fresh]
    if gone:
        conn.execute(h.delete().where(h.c.pk.in_(gone)))


def instance_row(conn: Connection, tenant: str, entity_id: str, attr: str, pk: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(h.c.instance).where(h.c.tenant == tenant, h.c.entity_id == entity_id,
                                                     h.c.attr == attr, h.c.pk == pk)).first()
    return dict(row.instance) if row is not None else None


def delete_instance(conn: Connection, pk: int) -> None:
    conn.execute(h.delete().where(h.c.pk == pk))


def replace_instance(conn: Connection, pk: int, instance: dict[str, Any], fallback: float) -> None:
    conn.execute(h.update().where(h.c.pk == pk).values(instance=instance, ts=instance_time(instance, fallback),
                                                       number=_number(instance)))


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
