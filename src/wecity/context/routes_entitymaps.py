"""NGSI-LD EntityMaps over HTTP (clause 5.14): made for a query (GET /entityMaps, GET
/temporal/entityMaps) or along with one (entityMap=true, see wecity.context.mapped), then retrieved,
updated (their expiry) and deleted under /entityMaps/{id}."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from wecity.context import entitymaps, temporal
from wecity.context.entity import is_uri, now_text, parse_time
from wecity.context.errors import bad_request_data, resource_not_found
from wecity.context.history import TIME_PROPERTIES, TYPES, TimeFilter, parse_duration
from wecity.context.mapped import HEADER, location
from wecity.context.models import attribute_history as h
from wecity.context.openapi import HEADERS, operation
from wecity.context.protocol import (
    JSON_LD,
    no_content,
    outgoing_terms,
    read_json,
    respond,
    split_list,
    tenant_of,
)
from wecity.context.routes_entities import query_of, too_wide
from wecity.context.search import query
from wecity.core.errors import NotFound, ValidationFailed
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1", tags=["ngsi-ld"])


def _not_found(map_id: str) -> NotFound:
    return resource_not_found(f"EntityMap {map_id} not found", f"EntityMap {map_id} 不存在")


def _checked_id(map_id: str) -> str:
    if not is_uri(map_id):
        raise bad_request_data(f"EntityMap id must be a URI, got {map_id!r}", f"EntityMap id 必须是 URI：{map_id!r}")
    return map_id


def _body(found: entitymaps.EntityMap) -> dict[str, Any]:
    return {"id": found.map_id, "type": "EntityMap", "expiresAt": now_text(found.expires_at),
            "entityMap": found.entity_map}


def _lifetime(request: Request) -> timedelta:
    text = request.query_params.get("entityMapLifetime")
    if text is None:
        return entitymaps.LIFETIME
    try:
        seconds = parse_duration(text)
    except (ValidationFailed, OverflowError) as exc:
        raise bad_request_data(f"entityMapLifetime must be an ISO 8601 duration, got {text!r}",
                               f"entityMapLifetime 必须是 ISO 8601 时长：{text!r}") from exc
    if seconds <= 0:
        raise bad_request_data("entityMapLifetime must be longer than zero", "entityMapLifetime 必须大于零")
    return timedelta(seconds=min(seconds, entitymaps.MAX_LIFETIME.total_seconds()))


def _made(request: Request, made: entitymaps.EntityMap) -> Response:
    return respond(request, _body(made), None, status=201, headers={HEADER: location(made.map_id)})


@router.get("/entityMaps", summary="Create an EntityMap for a query", openapi_extra=operation(
    "id", "type", "idPattern", "attrs", "q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty", "local",
    "entityMapLifetime", *HEADERS, answers=JSON_LD))
@router.get("/entityMaps/", include_in_schema=False)
async def map_for_query(request: Request, ctx: Ctx) -> Response:
    """The entities a query matches, kept as a new EntityMap (5.14.4): 201, the map and its location."""
    _, terms = await outgoing_terms(request, ctx)
    if too_wide(request, terms):
        raise bad_request_data("an EntityMap query needs type, attrs, q, scopeQ or a geo-query (or local=true)",
                               "EntityMap 查询需要 type、attrs、q、scopeQ 或地理条件（或 local=true）")
    spec, lifetime = query_of(request, terms), _lifetime(request)
    tenant, now = tenant_of(request), ctx.clock.now()

    def write(conn: Connection) -> entitymaps.EntityMap:
        rows, _ = query(conn, tenant, spec, limit=entitymaps.MAX_ENTITIES, offset=0, count=False, now=now)
        return entitymaps.create(conn, tenant, [r.id for r in rows], now, lifetime)

    return _made(request, await ctx.db.write(write))


@router.get("/temporal/entityMaps", summary="Create an EntityMap for a temporal query", openapi_extra=operation(
    "id", "type", "timerel", "timeAt", "endTimeAt", "timeproperty", "entityMapLifetime", *HEADERS, answers=JSON_LD))
@router.get("/temporal/entityMaps/", include_in_schema=False)
async def map_for_temporal_query(request: Request, ctx: Ctx) -> Response:
    """The entities with history inside the query's time window, kept as a new EntityMap (5.14.5)."""
    params = request.query_params
    if not params.get("timerel"):
        raise bad_request_data("a temporal EntityMap needs timerel and timeAt", "时间 EntityMap 需要 timerel 和 timeAt")
    when = TimeFilter.parse(params.get("timerel"), params.get("timeAt"), params.get("endTimeAt"))
    prop = params.get("timeproperty") or "observedAt"
    if prop not in TIME_PROPERTIES:
        raise bad_request_data(f"timeproperty must be one of {', '.join(TIME_PROPERTIES)}",
                               f"timeproperty 必须是 {'、'.join(TIME_PROPERTIES)} 之一")
    _, terms = await outgoing_terms(request, ctx)
    types = [terms.expand(x) for x in split_list(params.get("type")) or []]
    ids = split_list(params.get("id"))
    if not types and not ids:
        raise bad_request_data("a temporal EntityMap query needs type or id", "时间 EntityMap 查询需要 type 或 id")
    lifetime, tenant, now = _lifetime(request), tenant_of(request), ctx.clock.now()

    def narrowed(stmt: Any) -> Any:
        stmt = stmt.where(h.c.attr != TYPES)  # an entity's type rows are no instances
        if types:
            stmt = stmt.where(h.c.entity_type.in_(types))
        return stmt.where(h.c.entity_id.in_(ids)) if ids else stmt

    def write(conn: Connection) -> entitymaps.EntityMap:
        if prop == "observedAt":  # the rows' own time, selected in SQL
            stmt = narrowed(sa.select(h.c.entity_id).where(h.c.tenant == tenant, *when.where()).distinct())
            found = [r.entity_id for r in conn.execute(stmt.order_by(h.c.entity_id).limit(entitymaps.MAX_ENTITIES))]
        else:  # createdAt, modifiedAt, deletedAt: read from the instances, as the temporal query does
            seen: set[str] = set()
            for r in conn.execute(narrowed(sa.select(h.c.entity_id, h.c.instance).where(h.c.tenant == tenant))):
                if r.entity_id not in seen and (t := temporal.moment_of(r.instance, prop)) is not None \
                        and when.holds(t):
                    seen.add(r.entity_id)
                    if len(seen) >= entitymaps.MAX_ENTITIES:
                        break
            found = sorted(seen)
        return entitymaps.create(conn, tenant, found, now, lifetime)

    return _made(request, await ctx.db.write(write))


@router.get("/entityMaps/{map_id:path}", summary="Retrieve an EntityMap", openapi_extra=operation(
    "tenant", answers=JSON_LD))
async def retrieve_map(map_id: str, request: Request, ctx: Ctx) -> Response:
    found = await ctx.db.read(entitymaps.get, tenant_of(request), _checked_id(map_id), ctx.clock.now())
    if found is None:
        raise _not_found(map_id)
    return respond(request, _body(found), None)


@router.patch("/entityMaps/{map_id:path}", status_code=204, summary="Update an EntityMap",
              openapi_extra=operation("tenant", body="EntityMapFragment"))
async def update_map(map_id: str, request: Request, ctx: Ctx) -> Response:
    """Only the expiry can change (5.14.2); the broker bounds it, and entityMap or linkedMaps given are
    ignored (they are the broker's to keep)."""
    _checked_id(map_id)
    body, _ = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request_data("the body must be a JSON object", "请求体必须是 JSON 对象")
    now = ctx.clock.now()
    expires = parse_time(body["expiresAt"], "expiresAt") if "expiresAt" in body else None
    tenant = tenant_of(request)

    def write(conn: Connection) -> bool:
        if expires is None:
            return entitymaps.get(conn, tenant, map_id, now) is not None
        return entitymaps.set_expiry(conn, tenant, map_id, expires, now)

    if not await ctx.db.write(write):
        raise _not_found(map_id)
    return no_content()


@router.delete("/entityMaps/{map_id:path}", status_code=204, summary="Delete an EntityMap",
               openapi_extra=operation("tenant"))
async def delete_map(map_id: str, request: Request, ctx: Ctx) -> Response:
    if not await ctx.db.write(entitymaps.delete, tenant_of(request), _checked_id(map_id)):
        raise _not_found(map_id)
    return no_content()
