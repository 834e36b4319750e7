"""Where a dataset's rows come from: each source kind reads the read model of the domain that holds the
data, and answers one page of rows keyed by the dataset's field names, with how many rows pass the
filters in all.

- `cases`: the city's cases (wecity.cases.queries.case_records), filtered, counted and paged in SQL, so
  that a grant for one district reads that district's rows only, however many cases the city has.
- `cases` "daily": cases by the local day they were opened, district and category (received, closed,
  overdue), grouped in SQL.
- `applications`: submitted service applications (all, or of the matter `source_ref` names), their
  answers by field name.
- `certificates`: the valid certificates of the type `source_ref` names.
- `table` "areas": the city's districts and their boundaries; `table` "upload": the rows of the CSV or XLSX
  file its department last uploaded (wecity.datashare.uploads).
- `ngsild`: the current state of the NGSI-LD entities of the type `source_ref` names; with
  `<Type>/history`, their recorded values (id, attribute, observedAt, value), filtered and paged in SQL.

Each page says, beside its rows, what each row is ("case:12", "application:…", "certificate:…",
"enterprise:…", "table:<dataset>:<position>", "area:<code>", "entity:<id>", a history's rows their entity): the
audit log keeps that list for every reading, and `subjects` finds from it whom each record is about, so
that the person can be told who read it.
Values come JSON-ready: dates as YYYY-MM-DD, times as ISO 8601 UTC to the millisecond.

A dataset whose source is none of these is listed in the catalogue but not served: asking for it is
answered as such, not with an empty table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from wecity.cases.queries import RecordPage, case_record_columns, case_records, daily_case_counts
from wecity.context.overview import entities_of_type, history_rows
from wecity.core.errors import NotFound, ValidationFailed
from wecity.geo.service import city_calendar, city_timezone, city_today, list_areas
from wecity.govservice.queries import application_records, certificates_of_type

MAX_ROWS_READ = 100_000


@dataclass(frozen=True)
class Query:
    """What to read: the fields to return, the allowed values per field (the caller's filters and the
    grant's row filter, already combined), and the page."""

    fields: list[str]
    where: dict[str, list[str]]
    limit: int
    offset: int
    with_total: bool = True
    # Personal fields to mask, and how: the reader masks them as it builds the rows (one pass).
    masked: frozenset[str] = frozenset()
    mask: Callable[[Any, str], Any] | None = None
    # Rows wanted as objects keyed by field: a source that builds its rows one by one may build them so
    # (the cases source does), saving a second pass; any other gives tuples and the caller makes the objects.
    objects: bool = False


# One page: its rows as tuples of JSON-ready values in the order of the query's fields, what each row is
# (`records`), and how many rows pass the filters (None when not asked for and counting costs).
Page = RecordPage


@dataclass
class PartialPage(RecordPage):
    """A page of a source filtered in memory that holds more than MAX_ROWS_READ rows: only the oldest
    MAX_ROWS_READ were read, so the page is of those (`truncated`), and no total is given."""

    truncated: bool = False


def truncated(page: Page) -> bool:
    """Whether the page was read from only part of its source's rows (the data API says so)."""
    return isinstance(page, PartialPage) and page.truncated
# (conn, dataset, query, now) -> one page
Reader = Callable[[Connection, dict[str, Any], Query, datetime], Page]


def _iso_time(value: datetime) -> str:
    """ISO 8601 in UTC to the millisecond, as the cases source has the database write it."""
    utc = value.astimezone(UTC) if value.tzinfo else value
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def cell(value: Any, kind: str, zone: ZoneInfo | None = None) -> Any:
    """A value as the dataset's field type says: dates as YYYY-MM-DD (an instant's day in the city's `zone`),
    times as ISO 8601 UTC."""
    if isinstance(value, datetime):
        return _day(value, zone) if kind == "date" else _iso_time(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso_time(value)
    return value.isoformat() if isinstance(value, date) else value


def _day(value: Any, zone: ZoneInfo | None) -> Any:
    """The calendar day of a date, or of an instant where the city is (`zone`): a certificate issued at
    01:00 in Shanghai was issued that day, not the day before as UTC has it."""
    if isinstance(value, datetime):
        return (value.astimezone(zone) if zone is not None and value.tzinfo else value).date().isoformat()
    return _iso(value)


def converter(kind: str, zone: ZoneInfo | None = None) -> Callable[[Any], Any]:
    """`cell` for one field type, chosen once per field rather than once per value."""
    if kind == "date":
        return lambda value: _day(value, zone)
    return _iso


def _text(value: Any, kind: str, zone: ZoneInfo) -> str:
    value = cell(value, kind, zone)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _in_memory(conn: Connection, rows: list[dict[str, Any]], d: dict[str, Any], q: Query, *,
               more: bool = False) -> Page:
    """Filters and paging over rows already read (sources that are small: certificates, areas). `more`:
    the source holds more rows than were read (MAX_ROWS_READ), which the page says rather than hide."""
    kinds = {f["name"]: f["type"] for f in d["fields"]}
    zone = city_timezone(conn)
    passing = [r for r in rows if all(_text(r.get(k), kinds[k], zone) in set(v) for k, v in q.where.items())]
    chosen = passing[q.offset:q.offset + q.limit]
    convert = [(f, _masking(q, f) if f in q.masked else converter(kinds[f], zone)) for f in q.fields]
    values = [tuple(to(r.get(f)) for f, to in convert) for r in chosen]
    records = [str(r.get("_record") or "") for r in chosen]
    if more:
        return PartialPage(None, list(q.fields), values, records, truncated=True)
    return Page(len(passing), list(q.fields), values, records)


def _masking(q: Query, name: str) -> Callable[[Any], Any]:
    mask = q.mask
    assert mask is not None, "a query that masks says how"
    return lambda value: mask(value, name)


def _row_maker(q: Query) -> Callable[[tuple[Any, ...]], Any] | None:
    """For a row of the database's (the fields, then the record's id): the row without the id, its masked
    fields masked, as a tuple or (`q.objects`) an object; None for a tuple with nothing masked (the plain
    slice is faster)."""
    places = [i for i, name in enumerate(q.fields) if name in q.masked]
    names = q.fields
    if q.objects:
        return _object_maker(q, [names[i] for i in places])
    if not places:
        return None
    mask = q.mask
    assert mask is not None, "a query that masks says how"
    if len(places) == 1:
        i, name = places[0], names[places[0]]
        return lambda r: (*r[:i], mask(r[i], name), *r[i + 1:-1])

    def masked_row(r: tuple[Any, ...]) -> tuple[Any, ...]:
        values = list(r[:-1])
        for i in places:
            values[i] = mask(values[i], names[i])
        return tuple(values)

    return masked_row


def _object_maker(q: Query, masked: list[str]) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """Objects from the database's rows (the fields, then the record's id, left out), masked fields masked.

    The maker is a dict display written for these fields, `lambda r: {'case_id': r[0], ...}`: for a page
    of ten thousand rows it takes half the time of dict(zip(...)) followed by masking (5.8 against 12.5 ms).
    Only the fields' names go into the source, each as its repr(), a plain string literal."""
    mask = q.mask
    assert mask is not None or not masked, "a query that masks says how"
    items = ", ".join(f"{name!r}: mask(r[{i}], {name!r})" if name in masked else f"{name!r}: r[{i}]"
                      for i, name in enumerate(q.fields))
    maker: Callable[[tuple[Any, ...]], dict[str, Any]] = eval(  # noqa: S307 -- literals only, see above
        f"lambda r: {{{items}}}", {"__builtins__": {}, "mask": mask})
    return maker


# A filter's type as its error names it: English (with its article), Chinese.
_FILTER_TYPES = {"integer": ("an integer", "整数"), "number": ("a number", "数字"),
                 "boolean": ("true or false", "是/否值（true 或 false）")}


def _typed(value: str, kind: str, name: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean":
            return {"true": True, "false": False}[value.lower()]
    except (ValueError, KeyError):
        en, zh = _FILTER_TYPES[kind]
        raise ValidationFailed(f"{name}={value!r} is not {en}", message_zh=f"{name}={value!r} 不是有效的{zh}",
                               code="datashare.bad_filter") from None
    if kind in ("date", "datetime", "geometry"):
        raise ValidationFailed(f"{name}: rows are filtered by equal values of text, number and yes/no fields",
                               message_zh=f"{name}：仅支持按文本、数字和是/否字段的取值筛选",
                               code="datashare.bad_filter")
    return value


def _cases(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    known = case_record_columns()
    missing = [f["name"] for f in d["fields"] if f["name"] not in known]
    if missing:
        raise NotFound(f"dataset {d['name']}: cases have no {', '.join(missing)}",
                       message_zh=f"数据集 {d['name']}：案件数据中没有 {'、'.join(missing)}", code="datashare.not_served")
    kinds = {f["name"]: f["type"] for f in d["fields"]}
    where = {k: [_typed(v, kinds[k], k) for v in values] for k, values in q.where.items()}
    return case_records(conn, q.fields, where, limit=q.limit, offset=q.offset, with_total=q.with_total,
                        row_of=_row_maker(q))


def _daily_cases(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    return _in_memory(conn, daily_case_counts(conn, now=now), d, q)


def _entities(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    rows = [{**r, "_record": f"entity:{r['id']}"} for r in entities_of_type(conn, d["source_ref"], limit=MAX_ROWS_READ + 1)]
    return _in_memory(conn, rows[:MAX_ROWS_READ], d, q, more=len(rows) > MAX_ROWS_READ)


HISTORY_FIELDS = ("id", "attribute", "observedAt", "value")
# A history's rows are counted this far, and its total is null beyond (page on until a page comes back
# short): a type's history may be millions of rows, read by anyone when it is open data.
HISTORY_COUNTED = 10_000


def _history(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    """An entity type's recorded values (source_ref "<Type>/history"), filtered and paged in SQL."""
    unknown = [f["name"] for f in d["fields"] if f["name"] not in HISTORY_FIELDS]
    strange = [k for k in q.where if k not in ("id", "attribute")]
    if unknown or strange:
        raise ValidationFailed(f"dataset {d['name']}: a history has the fields {', '.join(HISTORY_FIELDS)} and is "
                               "filtered by id and attribute", message_zh=f"数据集 {d['name']}：历史数据的字段为 "
                               f"{'、'.join(HISTORY_FIELDS)}，可按 id 与 attribute 筛选", code="datashare.bad_filter")
    total, rows = history_rows(conn, d["source_ref"].removesuffix("/history"), where=q.where, limit=q.limit,
                               offset=q.offset, with_total=q.with_total, count_up_to=HISTORY_COUNTED)
    at = [HISTORY_FIELDS.index(f) for f in q.fields]
    if any(f in q.masked for f in q.fields):  # masked as every other source masks its personal fields
        convert = [(i, _masking(q, f) if f in q.masked else _same) for i, f in zip(at, q.fields, strict=True)]
        out = [tuple(to(r[i]) for i, to in convert) for r in rows]
    else:
        out = [tuple(r[i] for i in at) for r in rows]
    return Page(total, list(q.fields), out, [f"entity:{r[0]}" for r in rows])


def _same(value: Any) -> Any:
    return value


def _applications(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    rows = application_records(conn, d["source_ref"] or None, calendar=city_calendar(conn), limit=MAX_ROWS_READ + 1)
    return _in_memory(conn, rows[:MAX_ROWS_READ], d, q, more=len(rows) > MAX_ROWS_READ)


def _certificates(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    total, rows = certificates_of_type(conn, d["source_ref"], now=now, limit=MAX_ROWS_READ, offset=0)
    return _in_memory(conn, rows, d, q, more=total > MAX_ROWS_READ)


def _enterprises(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    from wecity.enterprise.queries import register_records

    rows = register_records(conn, city_today(conn, now))
    return _in_memory(conn, rows[:MAX_ROWS_READ], d, q, more=len(rows) > MAX_ROWS_READ)


def _uploaded(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    from wecity.datashare.uploads import uploaded_rows

    return _in_memory(conn, uploaded_rows(conn, d["id"], d["name"]), d, q)


def _areas(conn: Connection, d: dict[str, Any], q: Query, now: datetime) -> Page:
    return _in_memory(conn, [{**a, "_record": f"area:{a['code']}"} for a in list_areas(conn, with_geometry=True)], d, q)


def paged_in_sql(d: dict[str, Any]) -> bool:
    """Whether the dataset's source pages in SQL (any offset reaches its rows), not in memory (the oldest
    MAX_ROWS_READ rows only)."""
    return reader(d) in (_cases, _history)


def reader(d: dict[str, Any]) -> Reader:
    if d["source"] == "cases" and not d["source_ref"]:
        return _cases
    if d["source"] == "cases" and d["source_ref"] == "daily":
        return _daily_cases
    if d["source"] == "ngsild" and d["source_ref"].endswith("/history"):
        return _history
    if d["source"] == "ngsild" and d["source_ref"]:
        return _entities
    if d["source"] == "applications":
        return _applications
    if d["source"] == "certificates":
        return _certificates
    if d["source"] == "enterprises":
        return _enterprises
    if d["source"] == "table" and d["source_ref"] == "areas":
        return _areas
    if d["source"] == "table" and d["source_ref"] == "upload":
        return _uploaded
    raise NotFound(f"dataset {d['name']}: its data ({d['source']}) is catalogued but not served through the "
                   "data API yet", message_zh=f"数据集 {d['name']} 已编目，但其数据（{d['source']}）尚未通过数据接口提供",
                   code="datashare.not_served")


# (value, name in Chinese, name in English)
Term = tuple[str, str, str]


def vocabularies(conn: Connection, d: dict[str, Any]) -> dict[str, list[Term]]:
    """The values a field of this dataset can take, where the platform knows them (a district, a category,
    a case state): the request and grant forms offer them by name, and a row filter naming anything else
    is refused rather than granted to an empty table."""
    from wecity.cases.categories import list_categories
    from wecity.cases.choices import CaseStatus

    names = {f["name"] for f in d["fields"]}
    found: dict[str, list[Term]] = {}
    if "district" in names and d["source"] in ("cases", "certificates", "applications"):
        found["district"] = [(str(a["code"]), a["name_zh"], a["name_en"]) for a in list_areas(conn)]
    if d["source"] == "cases":
        if "category" in names:
            found["category"] = [(c.code, c.name_zh, c.name_en) for c in list_categories(conn, active_only=False)]
        if "status" in names:
            found["status"] = [(s.value, s.label_zh, s.label_en) for s in CaseStatus]
    return found


def subjects(conn: Connection, records: list[str]) -> dict[str, str]:
    """Whom each record is about, by phone number: a case's first reporter, an application's filer, a
    certificate's holder. Records about nobody (or no one known) are left out."""
    from wecity.cases.queries import reporter_phones
    from wecity.govservice.queries import filer_phones, holder_phones

    by_kind: dict[str, list[str]] = {}
    for record in records:
        kind, _, ref = record.partition(":")
        by_kind.setdefault(kind, []).append(ref)
    found: dict[str, str] = {}
    for chunk in _chunks([int(ref) for ref in by_kind.get("case", []) if ref.isdigit()]):
        found.update({f"case:{k}": v for k, v in reporter_phones(conn, chunk).items()})
    for chunk in _chunks(by_kind.get("application", [])):
        found.update({f"application:{k}": v for k, v in filer_phones(conn, chunk).items()})
    for chunk in _chunks(by_kind.get("certificate", [])):
        found.update({f"certificate:{k}": v for k, v in holder_phones(conn, chunk).items()})
    return found


def _chunks(items: list[Any], size: int = 500) -> list[list[Any]]:
    """IN lists of a size every database takes."""
    return [items[i:i + size] for i in range(0, len(items), size)]
