"""The read model of the data platform: the catalogue as pages, the CKAN API and the DCAT export read it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.errors import NotFound
from wecity.datashare.catalogue import CATALOGUE_CACHE, PERSONAL
from wecity.datashare.models import dataset_fields, datasets
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
                    limit: int = 50, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """How many published datasets match, and one page of them (newest change first)."""
    needle = (text or "").strip()[:100].casefold()
    found = [d for d in published(conn)
             if (not needle or _matches(d, needle)) and (not publisher or d["publisher"] == publisher)
             and (not theme or d["theme"] == theme) and (not share_class or d["share_class"] == share_class)
             and (not open_only or d["open_data"])]
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
