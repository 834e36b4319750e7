"""What a temporal retrieval or query asks for (`Ask`, from a query string or a Query body), which entities
it finds, and their temporal representation: normalized instances, simplified values (`temporalValues`) or
aggregated values (clauses 4.5.7 to 4.5.9, 4.5.19, 5.7.3, 5.7.4).

A temporal query judges each entity on the attribute instances inside its time interval alone (5.7.4.4):
`q` on those instances (an attribute holds when one of its instances does), a geo-query on the GeoProperty
instances, `scopeQ` on the scope values valid during the interval, and only the instances observed while a
matching scope was valid are shown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from wecity.context import history, projection
from wecity.context.entity import EXPIRES_AT, NULL, VALUE_MEMBER, Entity, check_name, is_null, parse_time
from wecity.context.env import Stored
from wecity.context.errors import bad_request_data, invalid_request
from wecity.context.history import SCOPE, Row
from wecity.context.ldcontext import TermMap
from wecity.context.projection import Projection
from wecity.context.search import Query, compile_pattern
from wecity.core.errors import ValidationFailed

# Instances one answer carries per entity by default (WECITY_NGSILD_TEMPORAL_INSTANCES): past it the answer
# is partial (206) and its Content-Range tells the time range it covers, so a client asks for the rest from
# there (6.3.10). Aggregates are not paged.
INSTANCE_PAGE = 1000
FORMATS = {"normalized": "normalized", "temporalValues": "simplified", "aggregatedValues": "aggregated"}
OPTIONS = frozenset({"normalized", "temporalValues", "aggregatedValues", "sysAttrs"})
# The member the simplified representation lists an attribute's values under (4.5.9).
SIMPLIFIED_MEMBER = {
    "Property": "values", "GeoProperty": "values", "Relationship": "objects", "LanguageProperty": "languageMaps",
    "JsonProperty": "jsons", "VocabProperty": "vocabs", "ListProperty": "valueLists",
    "ListRelationship": "objectLists"}
_SYSTEM = ("createdAt", "modifiedAt", "expiresAt")


@dataclass
class Ask:
    """How a temporal request wants its instances chosen and shown."""

    terms: TermMap
    when: history.TimeFilter = field(default_factory=history.TimeFilter)
    timeproperty: str = "observedAt"
    attrs: list[str] | None = None  # expanded IRIs
    datasets: frozenset[str] | None = None  # datasetIds to show, "@none" for the default instances
    form: str = "normalized"  # normalized, simplified or aggregated
    methods: list[str] = field(default_factory=list)
    period: float | None = None
    sys_attrs: bool = False
    last_n: int | None = None
    pick: Projection | None = None
    omit: Projection | None = None
    page: int = INSTANCE_PAGE  # instances per entity in one answer


def _names(value: Any, what: str) -> list[str] | None:
    """A comma-separated string or a list of strings (a Query body may give either)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise bad_request_data(f"{what} must be a list of strings", f"{what} 必须是字符串列表")
    if not items:
        raise bad_request_data(f"{what} is empty", f"{what} 为空")
    return items


def _last_n(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request_data("lastN must be a positive integer", "lastN 必须是正整数")
    return value


def _form(fmt: Any, options: list[str], methods: list[str]) -> str:
    """The representation asked for: `format` wins over `options` (6.3.7); an unknown value of either is
    an InvalidRequest. `aggrMethods` alone asks for aggregates too."""
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise invalid_request(f"unknown options {', '.join(unknown)}", f"未知的 options：{'、'.join(unknown)}")
    if fmt is not None and fmt != "":
        if fmt not in FORMATS:
            raise invalid_request(f"unknown format {fmt!r}", f"未知的 format：{fmt!r}")
        return FORMATS[fmt]
    if "aggregatedValues" in options:
        return "aggregated"
    if "temporalValues" in options:
        return "simplified"
    return "aggregated" if methods else "normalized"


def parse_ask(values: Mapping[str, Any], terms: TermMap, *, page: int = INSTANCE_PAGE) -> Ask:
    """An `Ask` from the query string or a Query body's members (temporalQ and aggrParams merged in)."""
    ask = Ask(terms, page=page)
    ask.when = history.TimeFilter.parse(values.get("timerel"), values.get("timeAt"), values.get("endTimeAt"))
    prop = values.get("timeproperty") or "observedAt"
    if prop not in history.TIME_PROPERTIES:
        raise bad_request_data(f"timeproperty must be one of {', '.join(history.TIME_PROPERTIES)}",
                               f"timeproperty 必须是 {'、'.join(history.TIME_PROPERTIES)} 之一")
    ask.timeproperty = prop
    attrs = _names(values.get("attrs"), "attrs")
    for name in attrs or ():
        check_name(name)
    ask.attrs = [terms.expand(a) for a in attrs] if attrs else None
    datasets = _names(values.get("datasetId"), "datasetId")
    ask.datasets = frozenset(datasets) if datasets else None
    options = _names(values.get("options"), "options") or []
    methods = _names(values.get("aggrMethods"), "aggrMethods") or []
    ask.form = _form(values.get("format"), options, methods)
    ask.sys_attrs = "sysAttrs" in options
    ask.last_n = _last_n(values.get("lastN"))
    unknown = sorted(set(methods) - set(history.AGGREGATES))
    if unknown:
        raise bad_request_data(f"unsupported aggrMethods {', '.join(unknown)}", f"不支持的 aggrMethods：{'、'.join(unknown)}")
    duration = values.get("aggrPeriodDuration")
    if duration is not None and duration != "":
        if not isinstance(duration, str):
            raise bad_request_data("aggrPeriodDuration must be a duration", "aggrPeriodDuration 必须是时长")
        seconds = history.parse_duration(duration)
        if seconds and not history.MIN_PERIOD <= seconds <= history.MAX_PERIOD:
            raise bad_request_data(f"aggrPeriodDuration {duration!r} must be PT0S or from PT0.001S to P1000Y",
                                   f"aggrPeriodDuration {duration!r} 必须为 PT0S 或在 PT0.001S 到 P1000Y 之间")
        ask.period = seconds or None  # PT0S: the whole time range is one period
    if ask.form == "aggregated":
        if not methods:
            raise bad_request_data("aggregatedValues needs aggrMethods", "聚合查询需要 aggrMethods")
        ask.methods = methods
    ask.pick = projection.parse(values.get("pick"), terms, "pick")
    ask.omit = projection.parse(values.get("omit"), terms, "omit")
    projection.check(ask.pick, ask.omit, attrs=bool(attrs), join=None, join_level=0)
    return ask


def check_order(order_by: Any) -> bool:
    """Whether a temporal query is to be ordered by id descending; only `id` may order one (5.7.4.4)."""
    if order_by is None or order_by == "":
        return False
    keys = order_by.split(",") if isinstance(order_by, str) else None
    if not keys or len(keys) != 1 or keys[0] not in ("id", "id;asc", "id;desc"):
        raise bad_request_data("a temporal query can be ordered by id only", "时间演变查询只能按 id 排序")
    return keys[0] == "id;desc"


# -- choosing instances -------------------------------------------------------------------------------

def moment_of(inst: dict[str, Any], prop: str) -> float | None:
    text = inst.get(prop)
    if not isinstance(text, str):
        return None
    try:
        return history.epoch(parse_time(text, prop))
    except (ValueError, ValidationFailed):  # a stored time that does not parse is no time to select by
        return None


def windowed(rows: list[Row], ask: Ask) -> list[Row]:
    """The instances inside the time interval by the time property asked for (observedAt, the rows' own
    time, is already filtered in SQL); with another one, instances without it are not in any interval."""
    if ask.timeproperty == "observedAt":
        return rows
    out: list[Row] = []
    for pk, attr, _, inst in rows:
        moment = moment_of(inst, ask.timeproperty)
        if moment is not None and ask.when.holds(moment):
            out.append((pk, attr, moment, inst))
    out.sort(key=lambda r: (r[2], r[0]))
    return out


def _scope_intervals(scope_rows: list[Row]) -> list[tuple[float, float, Any]]:
    """Each scope value with the time it was valid: from its own time to the next value's."""
    ordered = sorted(scope_rows, key=lambda r: (r[2], r[0]))
    out = []
    for n, (_, _, ts, inst) in enumerate(ordered):
        end = ordered[n + 1][2] if n + 1 < len(ordered) else math.inf
        out.append((ts, end, inst.get("value")))
    return out


def _overlaps(start: float, end: float, when: history.TimeFilter) -> bool:
    lo = when.time_at if when.timerel in ("after", "between") else -math.inf
    hi = when.end_time_at if when.timerel == "between" else when.time_at if when.timerel == "before" else math.inf
    return start < hi and end > lo  # type: ignore[operator]


def scoped(rows: list[Row], scope_rows: list[Row], ask: Ask, scope_q: Any) -> list[Row] | None:
    """The instances observed while a scope matching `scopeQ` was valid, with the scope instances that
    were; None when no matching scope was valid during the time interval (4.18, 5.7.4.4)."""
    matching = [(lo, hi) for lo, hi, value in _scope_intervals(scope_rows)
                if value not in (None, NULL) and _overlaps(lo, hi, ask.when) and scope_q(value)]
    if not matching:
        return None
    kept = [r for r in rows if r[1] != SCOPE and any(lo <= r[2] < hi for lo, hi in matching)]
    shown = [r for r in scope_rows if any(lo == r[2] for lo, _ in matching)]
    return sorted(kept + shown, key=lambda r: (r[2], r[0]))


def virtual_attrs(rows: list[Row]) -> dict[str, Any]:
    """The instances as an entity's attributes for `q` and geo-queries: an attribute with several
    instances is a list of them (a term holds when one instance satisfies it)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for _, attr, _, inst in rows:
        if not (inst.get(VALUE_MEMBER.get(inst.get("type", "Property"), "value")) == NULL):
            grouped.setdefault(attr, []).append(inst)
    return {k: v[0] if len(v) == 1 else v for k, v in grouped.items()}


def matches(entity_id: str, types: list[str], rows: list[Row], spec: Query) -> bool:
    """Whether an entity's windowed instances satisfy the query's filters on values, places and ids."""
    if spec.type_test is not None and not spec.type_test(types):
        return False
    attrs = virtual_attrs(rows)
    if spec.entity_test is not None and not spec.entity_test(Stored(0, entity_id, types, attrs, _EPOCH, _EPOCH)):
        return False
    if spec.q is not None and not spec.q(attrs):
        return False
    if spec.geo is not None:
        geo = spec.geo
        if not any(geo.matches(i.get("value")) for _, attr, _, i in rows if attr == geo.geoproperty):
            return False
    return True


_EPOCH = history.from_epoch(0)


def select_instances(rows: list[Row], ask: Ask) -> list[Row]:
    """The instances to show: the attributes and datasets asked for, the last N of each attribute."""
    out = rows
    if ask.attrs is not None:
        wanted = set(ask.attrs)
        out = [r for r in out if r[1] in wanted]
    if ask.datasets is not None:
        out = [r for r in out if r[3].get("datasetId", "@none") in ask.datasets]
    if ask.last_n:
        counts: dict[str, int] = {}
        kept: list[Row] = []
        for r in reversed(out):
            counts[r[1]] = counts.get(r[1], 0) + 1
            if counts[r[1]] <= ask.last_n:
                kept.append(r)
        out = kept[::-1]
    return out


@dataclass
class Page:
    """The time range a partial answer covers (Content-Range: date-time start-end/size)."""

    start: float
    end: float
    size: str

    def header(self) -> str:
        return f"date-time {history.time_text(self.start)}-{history.time_text(self.end)}/{self.size}"


def boundary(rows: list[Row], ask: Ask) -> float | None:
    """Where an entity's instances are cut when there are more than a page: the time of the last one
    shown, counting from the oldest (from the newest with lastN)."""
    if len(rows) <= ask.page:
        return None
    times = sorted((r[2] for r in rows), reverse=bool(ask.last_n))
    return times[ask.page - 1]


def cut(rows: list[Row], edge: float, ask: Ask) -> list[Row]:
    return [r for r in rows if (r[2] >= edge if ask.last_n else r[2] <= edge)]


def page_of(edge: float, rows: list[Row], ask: Ask) -> Page:
    when = ask.when
    if ask.last_n:
        start = when.end_time_at if when.timerel == "between" else when.time_at if when.timerel == "before" else None
        first = max((r[2] for r in rows), default=edge)
    else:
        start = when.time_at if when.timerel in ("after", "between") else None
        first = min((r[2] for r in rows), default=edge)
    return Page(start if start is not None else first, edge, str(ask.last_n) if ask.last_n else "*")


# -- the representation --------------------------------------------------------------------------------

def _instance(pk: int, inst: dict[str, Any], ask: Ask) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in inst.items():
        if key in _SYSTEM and not ask.sys_attrs:
            continue
        if ":" in key:
            out[ask.terms.compact(key)] = value
        elif key in ("valueType", "objectType") and isinstance(value, str):
            out[key] = ask.terms.compact(value)
        else:
            out[key] = value
    out["instanceId"] = history.instance_id(pk)
    return out


def _pair_value(kind: str, inst: dict[str, Any]) -> Any:
    member = VALUE_MEMBER.get(kind, "value")
    value = inst.get(member)
    if kind in ("LanguageProperty", "JsonProperty", "VocabProperty"):
        return {member: value}  # bare, these would read as another kind's value (4.5.9)
    if kind == "ListRelationship" and isinstance(value, list):
        return [v.get("object") if isinstance(v, dict) else v for v in value]
    return value


def _time_of(inst: dict[str, Any], ts: float, ask: Ask) -> str:
    given = inst.get(ask.timeproperty)
    return given if isinstance(given, str) else history.time_text(ts)


def _simplified(items: list[tuple[int, float, dict[str, Any]]], ask: Ask, kind: str) -> Any:
    """The values of one attribute as [value, time] pairs, one object per datasetId (4.5.9)."""
    by_dataset: dict[Any, list[tuple[int, float, dict[str, Any]]]] = {}
    for item in items:
        by_dataset.setdefault(item[2].get("datasetId"), []).append(item)
    out = []
    for dataset, group in (by_dataset.items() if by_dataset else [(None, [])]):
        first_kind = group[0][2].get("type", kind) if group else kind
        member = SIMPLIFIED_MEMBER.get(first_kind, "values")
        shown: dict[str, Any] = {"type": first_kind}
        if dataset is not None:
            shown["datasetId"] = dataset
        shown[member] = [[_pair_value(i.get("type", first_kind), i), _time_of(i, ts, ask)] for _, ts, i in group]
        out.append(shown)
    return out[0] if len(out) == 1 else out


def represent(entity_id: str, types: list[str], rows: list[Row], ask: Ask, *,
              emptied: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    """The temporal representation of one entity from its chosen instances; `emptied` names attributes
    a partial answer cut all instances of (shown empty, so the client knows to ask for more)."""
    compacted = [ask.terms.compact(t) for t in types]
    out: dict[str, Any] = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    grouped: dict[str, list[tuple[int, float, dict[str, Any]]]] = {a: [] for a in sorted(emptied)}
    for pk, attr, ts, inst in rows:
        if attr == EXPIRES_AT and not ask.sys_attrs:
            continue  # the entity's own expiry is a system attribute (6.3.11)
        grouped.setdefault(attr, []).append((pk, ts, inst))
    for attr, items in grouped.items():
        name = ask.terms.compact(attr)
        if ask.form == "simplified":
            kind = items[0][2].get("type", "Property") if items else "Property"
            out[name] = _simplified(items, ask, kind)
        else:
            out[name] = [_instance(pk, inst, ask) for pk, _, inst in items]
    return projection.project(out, ask.pick, ask.omit)


def aggregated(conn: Connection, tenant: str, entity_id: str, types: list[str], ask: Ask) -> dict[str, Any]:
    compacted = [ask.terms.compact(t) for t in types]
    out: dict[str, Any] = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    for iri, methods in history.aggregate(conn, tenant, entity_id, ask.attrs, ask.when, ask.methods,
                                          ask.period).items():
        if iri in (SCOPE, EXPIRES_AT):
            continue
        out[ask.terms.compact(iri)] = {"type": "Property", **methods}
    return projection.project(out, ask.pick, ask.omit)


def current_state(entity: Entity, rows: list[tuple[str, str, dict[str, Any]]], fallback: float) -> Entity:
    """The entity as its temporal representation leaves it now: the newest instance of each attribute
    (per datasetId) and the newest scope, attributes whose newest instance deletes them left out."""
    newest: dict[tuple[str, Any], tuple[float, dict[str, Any]]] = {}
    for _, _, changed in rows:
        for iri, inst in changed.items():
            if iri == history.TYPES:
                continue
            moment = history.instance_time(inst, fallback)
            key = (iri, inst.get("datasetId"))
            if key not in newest or moment >= newest[key][0]:
                newest[key] = (moment, inst)
    out = Entity(entity.id, list(entity.types))
    for (iri, _), (_, inst) in sorted(newest.items(), key=lambda kv: kv[1][0]):
        if iri == SCOPE:
            value = inst.get("value")
            out.scope = None if value in (NULL, []) else value
        elif not is_null(inst):
            held = out.attrs.get(iri)
            out.attrs[iri] = inst if held is None else [*(held if isinstance(held, list) else [held]), inst]
    return out


def id_test(spec: Query) -> Any:
    return compile_pattern(spec.id_pattern) if spec.id_pattern else None
