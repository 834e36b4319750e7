"""NGSI-LD batch operations: create, upsert, update, delete and query over /entityOperations."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import linked, service
from wecity.context.entity import Entity, check_entity_id, is_uri, normalize_entity
from wecity.context.geo import parse_geoquery
from wecity.context.ldcontext import parse_link_header
from wecity.context.protocol import (
    env_of,
    invalid,
    no_content,
    paging,
    problem,
    read_json,
    resolve,
    respond,
    tenant_of,
    view_of,
)
from wecity.context.query import compile_q
from wecity.context.routes_entities import render_stored, shaped
from wecity.core.errors import WeCityError
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/entityOperations", tags=["ngsi-ld"])
MAX_BATCH = 10_000


async def _entities(request: Request, ctx: Ctx, env: service.Env) -> tuple[list[Entity], list[tuple[str, Exception]]]:
    """Each item of the body as an entity, or the error that item has (the others still go ahead)."""
    body, media = await read_json(request)
    if not isinstance(body, list) or not body:
        raise invalid("the body must be a non-empty JSON array of entities", "请求体必须是非空的实体 JSON 数组",
                      "ngsild.bad_request_data")
    if len(body) > MAX_BATCH:
        raise invalid(f"at most {MAX_BATCH} entities per batch", f"每批最多 {MAX_BATCH} 个实体", "ngsild.bad_request_data")
    link = parse_link_header(request.headers.get("link"))
    if media == "application/ld+json" and link is not None:
        raise invalid("a Link header is not allowed with application/ld+json", "使用 application/ld+json 时不允许 Link 头",
                      "ngsild.bad_request_data")
    entities: list[Entity] = []
    errors: list[tuple[str, Exception]] = []
    for item in body:
        item_id = str(item.get("id", "")) if isinstance(item, dict) else ""
        try:
            if not isinstance(item, dict):
                raise invalid("each batch item must be an entity object", "批量中的每一项都必须是实体对象",
                              "ngsild.bad_request_data")
            if media == "application/ld+json":
                if "@context" not in item:
                    raise invalid("application/ld+json needs @context in each entity", "每个实体都需要 @context",
                                  "ngsild.bad_request_data")
                terms = await resolve(ctx, item["@context"])
            else:
                if "@context" in item:
                    raise invalid("@context in the body needs Content-Type application/ld+json",
                                  "请求体中的 @context 需要 application/ld+json", "ngsild.bad_request_data")
                terms = await resolve(ctx, link)
            entities.append(normalize_entity(item, terms, env.now, require_type=False))
        except WeCityError as exc:
            errors.append((item_id, exc))
    return entities, errors


def _result(result: service.BatchResult, errors: list[tuple[str, Exception]], *, ok_status: int,
            ok_body: Any = None) -> Response:
    all_errors = errors + result.errors
    if not all_errors:
        if ok_status == 204 or ok_body is None:
            return no_content()
        return Response(json.dumps(ok_body), status_code=ok_status, media_type="application/json")
    body = {"success": result.success, "errors": [
        {"entityId": eid, "error": problem(exc)[0] if isinstance(exc, WeCityError) else {"title": str(exc)}}
        for eid, exc in all_errors]}
    return Response(json.dumps(body, ensure_ascii=False), status_code=207, media_type="application/json")


def _options(request: Request) -> set[str]:
    return set(filter(None, request.query_params.get("options", "").split(",")))


@router.post("/create", summary="Create many entities")
@router.post("/create/", include_in_schema=False)
async def batch_create(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(service.batch_create, env, entities)
    return _result(result, errors, ok_status=201, ok_body=result.success)


@router.post("/upsert", summary="Create or replace/update many entities")
@router.post("/upsert/", include_in_schema=False)
async def batch_upsert(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    mode = "update" if "update" in _options(request) else "replace"
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(lambda conn: service.batch_upsert(conn, env, entities, mode=mode))
    if result.created:
        return _result(result, errors, ok_status=201, ok_body=result.created)
    return _result(result, errors, ok_status=204)


@router.post("/update", summary="Update attributes of many entities")
@router.post("/update/", include_in_schema=False)
async def batch_update(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    mode = "no-overwrite" if "noOverwrite" in _options(request) else "update-only"
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(lambda conn: service.batch_upsert(conn, env, entities, mode=mode))
    return _result(result, errors, ok_status=204)


@router.post("/delete", summary="Delete many entities")
@router.post("/delete/", include_in_schema=False)
async def batch_delete(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    body, _ = await read_json(request)
    if not isinstance(body, list) or not body:
        raise invalid("the body must be a non-empty JSON array of entity ids", "请求体必须是非空的实体 id 数组",
                      "ngsild.bad_request_data")
    ids: list[str] = []
    errors: list[tuple[str, Exception]] = []
    for item in body:
        if is_uri(item):
            ids.append(item)
        else:
            errors.append((str(item), invalid(f"{item!r} is not a URI", f"{item!r} 不是 URI", "ngsild.bad_request_data")))
    result = await ctx.db.write(service.batch_delete, env, ids)
    return _result(result, errors, ok_status=204)


@router.post("/query", summary="Query entities with a Query body")
@router.post("/query/", include_in_schema=False)
async def batch_query(request: Request, ctx: Ctx) -> Response:
    body, media = await read_json(request)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise invalid("the body must be a Query object", "请求体必须是 Query 对象", "ngsild.bad_request_data")
    context = body.get("@context") if media == "application/ld+json" else parse_link_header(request.headers.get("link"))
    terms = await resolve(ctx, context)
    spec = service.Query()
    items = body.get("entities")
    if items is not None:
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise invalid("entities must be a list of objects", "entities 必须是对象列表", "ngsild.bad_request_data")
        if any(not isinstance(i.get(k, ""), str) for i in items for k in ("type", "id", "idPattern")):
            raise invalid("entities members must be strings", "entities 的成员必须是字符串", "ngsild.bad_request_data")
        spec.types = [terms.expand(i["type"]) for i in items if isinstance(i.get("type"), str)] or None
        ids = [check_entity_id(i["id"]) for i in items if "id" in i]
        spec.ids = ids or None
        patterns = [i["idPattern"] for i in items if "idPattern" in i]
        spec.id_pattern = "|".join(f"(?:{p})" for p in patterns) or None
    attrs, q, geo = body.get("attrs"), body.get("q"), body.get("geoQ")
    if attrs is not None and (not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs)):
        raise invalid("attrs must be a list of names", "attrs 必须是名称列表", "ngsild.bad_request_data")
    if q is not None and not isinstance(q, str):
        raise invalid("q must be a string", "q 必须是字符串", "ngsild.bad_request_data")
    if geo is not None and not isinstance(geo, dict):
        raise invalid("geoQ must be an object", "geoQ 必须是对象", "ngsild.bad_request_data")
    if attrs:
        spec.attrs = [terms.expand(a) for a in attrs]
    if q:
        spec.q = compile_q(q, terms)
    if geo:
        spec.geo = parse_geoquery(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"),
                                  terms.expand(geo.get("geoproperty") or "location"))
    limit, offset, count = paging(request)
    view = view_of(request, terms, frozenset(spec.attrs) if spec.attrs else None)
    shape = linked.shape_of(terms, pick=body.get("pick"), omit=body.get("omit"), join=body.get("join"),
                            join_level=body.get("joinLevel"), contained_by=body.get("containedBy"),
                            has_attrs=bool(spec.attrs))
    tenant = tenant_of(request)
    rows, total = await ctx.db.read(partial(service.query, tenant=tenant, spec=spec, limit=limit, offset=offset, count=count))
    headers = {"NGSILD-Results-Count": str(total)} if total is not None else None
    if shape is None:
        return respond(request, [render_stored(r, view) for r in rows], context, headers=headers,
                       geometry_property=body.get("geometryProperty"))
    return respond(request, await ctx.db.read(shaped, tenant, rows, view, shape), context, headers=headers,
                   geometry_property=body.get("geometryProperty"))
