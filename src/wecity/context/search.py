"""Queries over entities (GET /entities, POST /entityOperations/query, periodic subscriptions): an
indexed pre-filter in SQL (tenant, types, ids, geo cells), then, when the query asks for more than the
database can test (q, scopeQ, idPattern, geo-queries, orderings on attributes), the rest in Python before
the page is cut."""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.entity import instances
from wecity.context.env import Stored
from wecity.context.errors import bad_request_data
from wecity.context.geo import GeoQuery
from wecity.context.models import CELL_ROW, GEO_CELL
from wecity.context.models import entities as t
from wecity.context.ordering import Ordering
from wecity.context.query import linked_entities
from wecity.context.rows import COLUMNS, existing, stored
from wecity.context.transient import live, wall_now
from wecity.core.patterns import BadPattern, Pattern
from wecity.core.patterns import compile_pattern as compile_user_pattern


@dataclass
class Query:
    """What GET /entities and POST /entityOperations/query ask for (types and attributes expanded)."""

    types: list[str] | None = None
    ids: list[str] | None = None
    id_pattern: str | None = None
    attrs: list[str] | None = None
    q: Callable[[dict[str, Any]], bool] | None = None
    geo: GeoQuery | None = None
    scope_q: Callable[[Any], bool] | None = None
    # A type selection with `;` (an entity must have all those types): tested on the entity's types after
    # the SQL pre-filter on `types` (every type the selection names).
    type_test: Callable[[list[str]], bool] | None = None
    order: Ordering | None = None
    # Several entity selectors of a Query body: each entity must match one of them as a whole.
    entity_test: Callable[[Stored], bool] | None = None

    def needs_python(self) -> bool:
        return bool(self.id_pattern or self.attrs or self.q or self.geo or self.scope_q or self.type_test
                    or (self.order is not None and self.order.columns() is None) or self.entity_test)


def compile_pattern(text: str) -> Pattern:
    """An idPattern compiled on RE2 (wecity.core.patterns); BadRequestData when RE2 cannot compile it."""
    try:
        return compile_user_pattern(text)
    except BadPattern as exc:
        raise bad_request_data(f"invalid idPattern {text!r}: {exc}", f"idPattern 无效：{text!r}（{exc}）") from exc


def grid_cells(minx: float, miny: float, maxx: float, maxy: float, limit: int = 1600) -> list[int] | None:
    """The grid cells a box covers, or None when there are too many to list (then no cell filter)."""
    xs = range(math.floor(minx / GEO_CELL), math.floor(maxx / GEO_CELL) + 1)
    ys = range(math.floor(miny / GEO_CELL), math.floor(maxy / GEO_CELL) + 1)
    if len(xs) * len(ys) > limit:
        return None
    return [x * CELL_ROW + y for x in xs for y in ys]


@dataclass
class Page:
    rows: list[Stored]
    total: int | None  # how many match in all, when counted
    more: bool  # whether entities follow this page


def _sql_order(conn: Connection, order: Ordering | None) -> list[Any]:
    """ORDER BY for an ordering on the entity's own columns (creation order when there is none); ids and
    types compare by code point on both databases, as the ordering in Python does."""
    columns = {"id": t.c.entity_id, "type": t.c.type, "createdAt": t.c.created_at, "modifiedAt": t.c.modified_at}
    out: list[Any] = []
    for member, descending in (order.columns() or []) if order is not None else []:
        column: Any = columns[member]
        if member in ("id", "type") and conn.dialect.name == "postgresql":
            column = column.collate("C")
        out.append(column.desc() if descending else column.asc())
    return [*out, t.c.pk]


def query(conn: Connection, tenant: str, spec: Query, *, limit: int, offset: int,
          count: bool, now: datetime | None = None) -> tuple[list[Stored], int | None]:
    """A page of matching entities and how many match in all when `count`."""
    page = query_page(conn, tenant, spec, limit=limit, offset=offset, count=count, now=now)
    return page.rows, page.total


def _type_variants(conn: Connection, tenant: str, spec: Query) -> list[list[Any]]:
    """The conditions on types, one list per SELECT: single-typed entities by the indexed `type`;
    multi-typed ones (rare, looked for only when the tenant has some) by their JSON list of types."""
    if spec.types is None:
        return [[]]
    extra = sa.cast(t.c.extra_types, sa.String)
    multi = [t.c.multi_typed.is_(True), t.c.type.not_in(spec.types),
             sa.or_(*[extra.contains(json.dumps(x)) for x in spec.types])]
    if not conn.execute(sa.select(t.c.pk).where(t.c.tenant == tenant, *multi).limit(1)).first():
        return [[t.c.type.in_(spec.types)]]
    return [[t.c.type.in_(spec.types)], multi]


def _geo_variants(conn: Connection, tenant: str, spec: Query) -> list[list[Any]]:
    """The conditions on the `location` box, one list per SELECT: the grid cells the query covers, and
    apart the entities whose box spans several cells (when the tenant has any)."""
    box = spec.geo.bbox() if spec.geo is not None and spec.geo.geoproperty.endswith("/location") else None
    if box is None:
        return [[]]
    minx, miny, maxx, maxy = box
    overlap = [t.c.min_lon <= maxx, t.c.max_lon >= minx, t.c.min_lat <= maxy, t.c.max_lat >= miny]
    variants = [[*overlap, t.c.geo_large.is_(False)]]
    cells = grid_cells(minx, miny, maxx, maxy)
    if cells is not None:
        variants = [[*overlap, t.c.geo_cell.in_(cells)]]
    large = [t.c.geo_large.is_(True)]
    if conn.execute(sa.select(t.c.pk).where(t.c.tenant == tenant, *large).limit(1)).first():
        variants.append([*overlap, *large])
    return variants


SCAN_CHUNK = 500  # rows fetched at a time when a query tests entities in Python


def query_page(conn: Connection, tenant: str, spec: Query, *, limit: int, offset: int, count: bool,
               now: datetime | None = None) -> Page:
    """Matching entities (in creation order unless `spec.order` says otherwise) as a reader at `now`
    (default: the wall clock) sees them: one page of them, how many match in all when `count`, and
    whether more follow."""
    now = now or wall_now()
    # Expired entities are out at once (an indexed column; NULL for the usual durable entity).
    where = [t.c.tenant == tenant, sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now)]
    if spec.ids is not None:
        where.append(t.c.entity_id.in_(spec.ids))
    type_variants, geo_variants = _type_variants(conn, tenant, spec), _geo_variants(conn, tenant, spec)
    selects = [sa.select(*COLUMNS).where(*where, *tv, *gv) for tv in type_variants for gv in geo_variants]
    if not spec.needs_python() and len(selects) == 1:
        return _sql_page(conn, selects[0], spec, limit=limit, offset=offset, count=count, now=now)
    cache: dict[str, Stored | None] = {}

    def resolve(ids: list[str]) -> list[tuple[list[str], dict[str, Any]]]:
        """Targets of linked-entity terms in `q`, each entity read once per query."""
        missing = [i for i in ids if i not in cache]
        if missing:
            found = existing(conn, tenant, missing, now=now)
            cache.update({i: found.get(i) for i in missing})
        return [(s.types, s.attrs) for s in (cache[i] for i in ids) if s is not None]

    # The rows are streamed in creation order (one SELECT per variant, merged), not read all at once; without
    # a count or an order, the scan stops as soon as the page and one more match are found.
    enough = None if count or spec.order is not None else offset + limit + 1
    with ExitStack() as open_results, linked_entities(resolve):
        streams = [open_results.enter_context(conn.execute(s.order_by(t.c.pk).execution_options(yield_per=SCAN_CHUNK)))
                   for s in selects]
        rows = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda r: r.pk)
        matched = select_matching(rows, spec, now, enough=enough)
    if spec.order is not None:
        matched = spec.order.sort(matched)
    return Page(matched[offset:offset + limit], len(matched) if count else None,
                limit > 0 and len(matched) > offset + limit)


def _sql_page(conn: Connection, select: Any, spec: Query, *, limit: int, offset: int, count: bool,
              now: datetime) -> Page:
    """A page the database orders and cuts (the query tests nothing in Python)."""
    total = None
    if count:
        total = int(conn.execute(sa.select(sa.func.count()).select_from(select.subquery())).scalar_one())
    if limit == 0:
        return Page([], total, False)
    found = [_shown(r, now) for r in conn.execute(select.order_by(*_sql_order(conn, spec.order)).limit(limit + 1)
                                                  .offset(offset))]
    return Page(found[:limit], total, len(found) > limit)


def _shown(row: Any, now: datetime) -> Stored:
    """A row of a live entity as a reader at `now` sees it: without its expired attribute instances."""
    entity = stored(row)
    return entity if entity.prune_at is None else live(entity, now) or entity


def select_matching(rows: Iterable[Any], spec: Query, now: datetime, *, enough: int | None = None) -> list[Stored]:
    """The entities of `rows` the query keeps, in their order; with `enough`, no more than that many (the
    rows after are not read)."""
    pattern = compile_pattern(spec.id_pattern) if spec.id_pattern else None
    attrs = spec.attrs
    matched: list[Stored] = []
    for row in rows:
        if enough is not None and len(matched) >= enough:
            break
        entity = _shown(row, now)
        if pattern is not None and not pattern.search(entity.id):
            continue
        if spec.type_test is not None and not spec.type_test(entity.types):
            continue
        if spec.scope_q is not None and not spec.scope_q(entity.scope):
            continue
        if spec.entity_test is not None and not spec.entity_test(entity):
            continue
        if attrs and not any(a in entity.attrs for a in attrs):
            continue
        if spec.q is not None and not spec.q(entity.attrs):
            continue
        if spec.geo is not None:
            geo_attr = entity.attrs.get(spec.geo.geoproperty)
            if geo_attr is None or not any(spec.geo.matches(i.get("value")) for i in instances(geo_attr)):
                continue
        matched.append(entity)
    return matched


def entity_types(conn: Connection, tenant: str) -> list[str]:
    rows = conn.execute(sa.select(t.c.type).where(t.c.tenant == tenant).distinct().order_by(t.c.type))
    return [r.type for r in rows]
