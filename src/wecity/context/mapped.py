"""Queries and retrievals through EntityMaps (clause 5.5.14): `entityMap=true` asks for a map of every
entity the query matches (answered 201 with the first page and the NGSILD-EntityMap header); a request
that refers to a live map by that header is answered from the map's entities only, paged over them, and
entities that no longer exist are taken out of the map on the way."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Request
from sqlalchemy.engine import Connection

from wecity.context import entitymaps
from wecity.context.entity import is_uri
from wecity.context.protocol import tenant_of
from wecity.context.rows import existing
from wecity.context.search import Page, Query, query, query_page

BASE = "/ngsi-ld/v1/entityMaps/"
HEADER = "NGSILD-EntityMap"


def location(map_id: str) -> str:
    return BASE + quote(map_id, safe=":")


def reference_of(request: Request) -> str | None:
    """The id of the map the NGSILD-EntityMap header names (its URI or the id alone); None without one
    or when it names nothing the broker could have made."""
    reference = request.headers.get(HEADER.lower())
    if not reference:
        return None
    map_id = unquote(reference.rstrip("/").rsplit("/", 1)[-1])
    return map_id if is_uri(map_id) else None


def wants_map(request: Request) -> bool:
    return request.query_params.get("entityMap") == "true" or HEADER.lower() in request.headers


async def map_headers(request: Request, ctx: Any, entity_ids: list[str]) -> dict[str, str]:
    """For a retrieval: the NGSILD-EntityMap header when the request asks for a map or refers to one; the
    referred map is used (and holds this entity too) while it lives, else a new one is made."""
    if not wants_map(request):
        return {}
    found = await ctx.db.write(entitymaps.use, tenant_of(request), reference_of(request), entity_ids,
                               ctx.clock.now())
    return {HEADER: location(found.map_id)}


@dataclass
class Mapped:
    page: Page
    map_id: str
    created: bool  # a new map (201 when the client asked for one)


def _mapped(conn: Connection, tenant: str, reference: str | None, spec: Query, limit: int, offset: int,
            count: bool, now: Any) -> Mapped:
    found = entitymaps.get(conn, tenant, reference, now) if reference else None
    if found is None:
        rows, _ = query(conn, tenant, spec, limit=entitymaps.MAX_ENTITIES, offset=0, count=False, now=now)
        made = entitymaps.create(conn, tenant, [r.id for r in rows], now)
        page = Page(rows[offset:offset + limit], len(rows) if count else None, limit > 0 and len(rows) > offset + limit)
        return Mapped(page, made.map_id, True)
    members = list(found.entity_map)
    wanted = set(spec.ids) if spec.ids is not None else None
    page = query_page(conn, tenant, replace(spec, ids=[i for i in members if wanted is None or i in wanted]),
                      limit=limit, offset=offset, count=count, now=now)
    gone = set(members) - set(existing(conn, tenant, members, attrs=False, now=now))
    if gone:
        entitymaps.forget(conn, tenant, found, gone)
    return Mapped(page, found.map_id, False)


async def mapped_page(request: Request, ctx: Any, tenant: str, spec: Query, limit: int, offset: int,
                      count: bool) -> Mapped | None:
    """A page of a query through an EntityMap, or None when the request neither asks for one nor refers
    to one."""
    if not wants_map(request):
        return None
    return await ctx.db.write(_mapped, tenant, reference_of(request), spec, limit, offset, count, ctx.clock.now())
