"""NGSI-LD EntityMaps over HTTP: GET and DELETE /entityMaps/{id}, and the NGSILD-EntityMap header of
retrievals and queries that ask for a map."""

from __future__ import annotations

from urllib.parse import quote, unquote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import entitymaps
from wecity.context.entity import is_uri, now_text
from wecity.context.errors import resource_not_found
from wecity.context.openapi import operation
from wecity.context.protocol import JSON_LD, no_content, respond, tenant_of
from wecity.core.errors import NotFound
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/entityMaps", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/entityMaps/"
HEADER = "NGSILD-EntityMap"


def _not_found(map_id: str) -> NotFound:
    return resource_not_found(f"EntityMap {map_id} not found", f"EntityMap {map_id} 不存在")


def location(map_id: str) -> str:
    return BASE + quote(map_id, safe=":")


async def map_headers(request: Request, ctx: Ctx, entity_ids: list[str]) -> dict[str, str]:
    """The NGSILD-EntityMap header when the request asks for a map (entityMap=true) or refers to one; the
    referred map is used while it lives, else a new one is made (clause 5.7.1.4)."""
    reference = request.headers.get(HEADER.lower())
    if request.query_params.get("entityMap") != "true" and reference is None:
        return {}
    map_id = unquote(reference.rstrip("/").rsplit("/", 1)[-1]) if reference else None
    if map_id is not None and not is_uri(map_id):
        map_id = None  # names no map the broker made: as for an unknown one, a new map
    found = await ctx.db.write(entitymaps.use, tenant_of(request), map_id, entity_ids, ctx.clock.now())
    return {HEADER: location(found.map_id)}


@router.get("/{map_id}", summary="Retrieve an EntityMap", openapi_extra=operation("tenant", answers=JSON_LD))
async def retrieve_map(map_id: str, request: Request, ctx: Ctx) -> Response:
    found = await ctx.db.read(entitymaps.get, tenant_of(request), map_id, ctx.clock.now()) if is_uri(map_id) else None
    if found is None:
        raise _not_found(map_id)
    body = {"id": found.map_id, "type": "EntityMap", "expiresAt": now_text(found.expires_at),
            "entityMap": found.entity_map}
    return respond(request, body, None)


@router.delete("/{map_id}", status_code=204, summary="Delete an EntityMap", openapi_extra=operation("tenant"))
async def delete_map(map_id: str, request: Request, ctx: Ctx) -> Response:
    if not is_uri(map_id) or not await ctx.db.write(entitymaps.delete, tenant_of(request), map_id):
        raise _not_found(map_id)
    return no_content()
