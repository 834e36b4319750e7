"""The read model of the data platform: the catalogue as pages, the CKAN API and the DCAT export read it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.errors import NotFound
from wecity.datashare.catalogue import CATALOGUE_CACHE, PERSONAL
from wecity.datashare.models import (
    data_accesses,
    data_disclosures,
    data_grants,
    data_request_events,
    data_requests,
    dataset_fields,
    datasets,
)
from wecity.geo.service import city_timezone
from wecity.identity.models import departments

MAX_PAGE = 1000


def published(conn: Connection) -> list[dict[str, Any]]:
    """Every published dataset with its fields and publisher, newest change first. Kept per process for a
    few seconds and dropped when this process publishes (wecity.core.cache): the catalogue is read on every
    search and harvest, and changes a few times a week."""
    return cache.cached(conn, (CATALOGUE_CACHE,), lambda: _load(conn, datasets.c.state == "published"))


def _load(conn: Connection, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    names = {r.code: (r.name_zh, r.name_en) for r in conn.execute(
        sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en))}
    rows = conn.execute(sa.select(datasets).where(where)
                        .order_by(datasets.c.modified_at.desc(), datasets.c.id.desc())).all()
    fields: dict[int, list[dict[str, Any]]] = {}
    for f in conn.execute(sa.select(dataset_fields).where(dataset_fields.c.dataset_id.in_([r.id for r in rows]))
                          .order_by(dataset_fields.c.dataset_id, dataset_fields.c.position)):
        fields.setdefault(f.dataset_id, []).append(
            {k: getattr(f, k) for k in ("name", "title_zh", "title_en", "type", "sensitivity", "description")})
    out = []
    for row in rows:
        d = dict(row._mapping)
        d["publisher_zh"], d["publisher_en"] = names.get(d["publisher"], (d["publisher"], d["publisher"]))
        d["fields"] = fields.get(d["id"], [])
        d["personal_fields"] = [f["name"] for f in d["fields"] if f["sensitivity"] in PERSONAL]
        out.append(d)
    return out


def dataset_by_id(conn: Connection, dataset_id: int) -> dict[str, Any]:
    """A dataset by id, published or not (a request or grant outlives its dataset's withdrawal)."""
    for d in published(conn):
        if d["id"] == dataset_id:
            return d
    found = _load(conn, datasets.c.id == dataset_id)
    if not found:
        raise NotFound(f"no dataset {dataset_id}", message_zh=f"数据集 {dataset_id} 不存在")
    return found[0]


def _matches(d: dict[str, Any], needle: str) -> bool:
    haystack = [d["name"], d["title_zh"], d["title_en"], d["description_zh"], d["description_en"],
                *d["keywords"], *(f["title_zh"] for f in d["fields"]), *(f["title_en"] for f in d["fields"])]
    return any(needle in text.casefold() for text in haystack)


def search_datasets(conn: Connection, *, text: str | None = None, publisher: str | None = None,
                    theme: str | None = None, share_class: str | None = None, open_only: bool = False,
                    tag: str | None = None, limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """How many published datasets match (all of them, however many), and one page of them (newest change
    first). `tag` is a keyword the dataset has."""
    needle = (text or "").strip()[:100].casefold()
    found = [d for d in published(conn)
             if (not needle or _matches(d, needle)) and (not publisher or d["publisher"] == publisher)
             and (not theme or d["theme"] == theme) and (not share_class or d["share_class"] == share_class)
             and (not open_only or d["open_data"]) and (tag is None or tag in d["keywords"])]
    start = max(offset, 0)
    return len(found), found[start:start + min(max(limit, 0), MAX_PAGE)]


def dataset(conn: Connection, name_or_id: str) -> dict[str, Any]:
    for d in published(conn):
        if d["name"] == name_or_id or str(d["id"]) == name_or_id:
            return d
    raise NotFound(f"no dataset {name_or_id}", message_zh=f"数据集 {name_or_id} 不存在")


def publishers(conn: Connection) -> list[dict[str, Any]]:
    """The departments that publish, with how many datasets each (CKAN's organisations)."""
    counts: dict[str, dict[str, Any]] = {}
    for d in published(conn):
        entry = counts.setdefault(d["publisher"], {"code": d["publisher"], "name_zh": d["publisher_zh"],
                                                   "name_en": d["publisher_en"], "datasets": 0})
        entry["datasets"] += 1
    return sorted(counts.values(), key=lambda e: e["code"])


# -- requests, grants and accesses ----------------------------------------------------------------------------

def _department_names(conn: Connection) -> dict[str, tuple[str, str]]:
    return {r.code: (r.name_zh, r.name_en) for r in conn.execute(
        sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en))}


def _request_row(r: Any, names: dict[str, tuple[str, str]], today: date, zone: ZoneInfo) -> dict[str, Any]:
    out = dict(r._mapping)
    for side in ("requester", "provider"):
        out[f"{side}_zh"], out[f"{side}_en"] = names.get(out[side], (out[side], out[side]))
    out["overdue"] = out["state"] == "submitted" and out["due_on"] < today
    # What the lists show: a granted request whose grant has ended says so.
    out["shown_state"] = out["state"]
    if out["state"] == "granted" and out.get("grant_revoked_at") is not None:
        out["shown_state"] = "revoked"
    elif out["state"] == "granted" and out.get("grant_expires_at") is not None \
            and out["grant_expires_at"].astimezone(zone).date() < today:
        out["shown_state"] = "expired"
    return out


def _requests_query() -> sa.Select[Any]:
    return (sa.select(data_requests, datasets.c.name.label("dataset"), datasets.c.title_zh, datasets.c.title_en,
                      datasets.c.share_class, data_grants.c.id.label("grant_id"),
                      data_grants.c.revoked_at.label("grant_revoked_at"), data_grants.c.expires_at.label("grant_expires_at"))
            .select_from(data_requests.join(datasets, datasets.c.id == data_requests.c.dataset_id)
                         .outerjoin(data_grants, data_grants.c.request_id == data_requests.c.id)))


def _requests_where(today: date, department: str | None, side: str, state: str | tuple[str, ...] | None,
                    overdue_only: bool) -> list[sa.ColumnElement[bool]]:
    conditions = []
    if department is not None:
        made, asked = data_requests.c.requester == department, data_requests.c.provider == department
        conditions.append(made if side == "requester" else asked if side == "provider" else sa.or_(made, asked))
    if isinstance(state, tuple):
        conditions.append(data_requests.c.state.in_(state))
    elif state:
        conditions.append(data_requests.c.state == state)
    if overdue_only:
        conditions += [data_requests.c.state == "submitted", data_requests.c.due_on < today]
    return conditions


def data_requests_for(conn: Connection, *, today: date, department: str | None = None, side: str = "both",
                      state: str | tuple[str, ...] | None = None, overdue_only: bool = False, limit: int = 200,
                      offset: int = 0) -> list[dict[str, Any]]:
    """Requests made by (side "requester") or to ("provider") a department, or both; all of them when no
    department is given (the coordinating department's overview); in one state, or any of several. Newest
    first, one page
    (`count_data_requests` says how many there are in all)."""
    query = (_requests_query().where(*_requests_where(today, department, side, state, overdue_only))
             .order_by(data_requests.c.id.desc()).limit(min(limit, MAX_PAGE)).offset(max(offset, 0)))
    names = _department_names(conn)
    zone = city_timezone(conn)
    return [_request_row(r, names, today, zone) for r in conn.execute(query)]


def count_data_requests(conn: Connection, *, today: date, department: str | None = None, side: str = "both",
                        state: str | tuple[str, ...] | None = None, overdue_only: bool = False) -> int:
    """How many requests `data_requests_for` pages through."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(data_requests).where(
        *_requests_where(today, department, side, state, overdue_only))).scalar_one())


def request_counts(conn: Connection, *, today: date) -> dict[str, int]:
    """How many requests are in each state, and how many open ones are past their due day."""
    counts = {state: int(n) for state, n in conn.execute(
        sa.select(data_requests.c.state, sa.func.count()).group_by(data_requests.c.state))}
    counts["overdue"] = int(conn.execute(sa.select(sa.func.count()).select_from(data_requests).where(
        data_requests.c.state == "submitted", data_requests.c.due_on < today)).scalar_one())
    counts["escalated"] = int(conn.execute(sa.select(sa.func.count()).select_from(data_requests).where(
        data_requests.c.escalated_at.is_not(None))).scalar_one())
    return counts


def data_request(conn: Connection, request_id: int, *, today: date) -> dict[str, Any]:
    """One request with its timeline and its grant (if any)."""
    row = conn.execute(_requests_query().where(data_requests.c.id == request_id)).first()
    if row is None:
        raise NotFound(f"no data request {request_id}", message_zh=f"数据共享申请 {request_id} 不存在")
    out = _request_row(row, _department_names(conn), today, city_timezone(conn))
    names = _department_names(conn)
    out["events"] = [{**e._mapping, "department_zh": names.get(e.department or "", (e.department, e.department))[0],
                      "department_en": names.get(e.department or "", (e.department, e.department))[1]}
                     for e in conn.execute(sa.select(data_request_events)
                                           .where(data_request_events.c.request_id == request_id)
                                           .order_by(data_request_events.c.id))]
    grant = conn.execute(sa.select(data_grants).where(data_grants.c.request_id == request_id)).first()
    out["grant"] = dict(grant._mapping) if grant else None
    return out


def grant_view(g: Any, now: datetime, names: dict[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    out = dict(g._mapping)
    out["state"] = "revoked" if g.revoked_at is not None else "expired" if g.expires_at <= now else "active"
    for side in ("grantee", "publisher"):
        if names is not None and side in out:
            out[f"{side}_zh"], out[f"{side}_en"] = names.get(out[side], (out[side], out[side]))
    return out


def _grants_where(department: str | None, side: str) -> list[sa.ColumnElement[bool]]:
    if department is None:
        return []
    held, given = data_grants.c.grantee == department, datasets.c.publisher == department
    return [held if side == "grantee" else given if side == "provider" else sa.or_(held, given)]


_GRANTS_JOINED = data_grants.join(datasets, datasets.c.id == data_grants.c.dataset_id)


def data_grants_for(conn: Connection, *, now: datetime, department: str | None = None, side: str = "both",
                    limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
    """Grants a department holds (side "grantee"), has given ("provider"), or both; all with no department.
    Newest first, one page (`count_data_grants` says how many there are in all)."""
    query = (sa.select(data_grants, datasets.c.name.label("dataset"), datasets.c.title_zh, datasets.c.title_en,
                       datasets.c.publisher)
             .select_from(_GRANTS_JOINED).where(*_grants_where(department, side))
             .order_by(data_grants.c.id.desc()).limit(min(limit, MAX_PAGE)).offset(max(offset, 0)))
    names = _department_names(conn)
    return [grant_view(g, now, names) for g in conn.execute(query)]


def count_data_grants(conn: Connection, *, department: str | None = None, side: str = "both") -> int:
    """How many grants `data_grants_for` pages through."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(_GRANTS_JOINED)
                            .where(*_grants_where(department, side))).scalar_one())


def data_grant(conn: Connection, grant_id: int, *, now: datetime) -> dict[str, Any]:
    row = conn.execute(sa.select(data_grants, datasets.c.name.label("dataset"), datasets.c.title_zh,
                                 datasets.c.title_en, datasets.c.publisher)
                       .select_from(data_grants.join(datasets, datasets.c.id == data_grants.c.dataset_id))
                       .where(data_grants.c.id == grant_id)).first()
    if row is None:
        raise NotFound(f"no data grant {grant_id}", message_zh=f"数据共享授权 {grant_id} 不存在")
    return grant_view(row, now, _department_names(conn))


def data_accesses_for(conn: Connection, *, publisher: str | None = None, reader: str | None = None,
                      grant_id: int | None = None, limit: int = 200, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """Calls of the data API on data that is not open, newest first: on one department's datasets (who used
    its data), by one department, or under one grant."""
    joined = data_accesses.join(datasets, datasets.c.id == data_accesses.c.dataset_id)
    conditions = []
    if publisher is not None:
        conditions.append(datasets.c.publisher == publisher)
    if reader is not None:
        conditions.append(data_accesses.c.reader == reader)
    if grant_id is not None:
        conditions.append(data_accesses.c.grant_id == grant_id)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(joined).where(*conditions)).scalar_one())
    rows = conn.execute(sa.select(data_accesses, datasets.c.name.label("dataset"), datasets.c.title_zh,
                                  datasets.c.title_en, datasets.c.publisher).select_from(joined).where(*conditions)
                        .order_by(data_accesses.c.id.desc()).limit(min(limit, MAX_PAGE)).offset(offset))
    names = _department_names(conn)
    return total, [{**r._mapping, "reader_zh": names.get(r.reader or "", (r.reader, r.reader))[0],
                    "reader_en": names.get(r.reader or "", (r.reader, r.reader))[1]} for r in rows]


_MY_USES_JOINED = data_disclosures.join(data_accesses, data_accesses.c.id == data_disclosures.c.access_id)


def count_uses_of_my_data(conn: Connection, subject: str, *, now: datetime) -> int:
    """How many readings `uses_of_my_data` pages through."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(_MY_USES_JOINED).where(
        data_disclosures.c.subject == subject, data_accesses.c.visible_from <= now)).scalar_one())


def uses_of_my_data(conn: Connection, subject: str, *, now: datetime, limit: int = 500,
                    offset: int = 0) -> list[dict[str, Any]]:
    """Who read records about one person (by their subject key), newest first: when, which department,
    for what, which dataset and record; one page (`count_uses_of_my_data` says how many in all). Readings
    under a delayed disclosure appear once it ends."""
    names = _department_names(conn)
    rows = conn.execute(sa.select(data_accesses.c.at, data_accesses.c.reader, data_accesses.c.purpose,
                                  data_accesses.c.grant_id, data_accesses.c.fields, data_disclosures.c.record,
                                  datasets.c.id.label("dataset_id"), datasets.c.name.label("dataset"),
                                  datasets.c.title_zh, datasets.c.title_en, data_requests.c.basis)
                        .select_from(data_disclosures.join(data_accesses, data_accesses.c.id == data_disclosures.c.access_id)
                                     .join(datasets, datasets.c.id == data_accesses.c.dataset_id)
                                     .outerjoin(data_grants, data_grants.c.id == data_accesses.c.grant_id)
                                     .outerjoin(data_requests, data_requests.c.id == data_grants.c.request_id))
                        .where(data_disclosures.c.subject == subject, data_accesses.c.visible_from <= now)
                        .order_by(data_accesses.c.at.desc(), data_disclosures.c.id.desc())
                        .limit(min(limit, MAX_PAGE)).offset(max(offset, 0)))
    out = []
    for r in rows:
        item = dict(r._mapping)
        item["reader_zh"], item["reader_en"] = names.get(r.reader, (r.reader, r.reader))
        titles = {f["name"]: (f["title_zh"], f["title_en"]) for f in dataset_by_id(conn, r.dataset_id)["fields"]}
        item["fields_zh"] = [titles.get(f, (f, f))[0] for f in r.fields or []]
        item["fields_en"] = [titles.get(f, (f, f))[1] for f in r.fields or []]
        out.append(item)
    return out
