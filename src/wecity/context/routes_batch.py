"""NGSI-LD batch operations: create, upsert, update, delete and query over /entityOperations."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import distributed, distributed_batch, linked, service
from wecity.context.entity import Entity, check_entity_id, is_uri, normalize_entity
from wecity.context.errors import bad_request_data
from wecity.context.geo import parse_geoq
from wecity.context.ldcontext import TermMap, parse_link_header
from wecity.context.openapi import HEADERS, PAGING, VIEW, operation
from wecity.context.ordering import parse_ordering
from wecity.context.protocol import (
    GEOJSON,
    env_of,
    no_content,
    paging,
    problem,
    read_json,
    resolve,
    respond,
    tenant_of,
    view_of,
)
from wecity.context.routes_entities import (
    check_attrs,
    checked_q,
    distributed_page,
    read_page,
    render_stored,
    shaped,
)
from wecity.context.scopeq import compile_scope_q
from wecity.context.selection import parse_type_selection
from wecity.core.errors import WeCityError
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/entityOperations", tags=["ngsi-ld"])
MAX_BATCH = 10_000


async def _entities(request: Request, ctx: Ctx, env: service.Env, *,
                    nulls: str = "") -> tuple[list[Entity], list[tuple[str, Exception]]]:
    """Each item of the body as an entity, or the error that item has (the others still go ahead);
    an empty array or a null item fails the whole request (5.5.4)."""
    body, media = await read_json(request)
    if not isinstance(body, list) or not body or any(item is None for item in body):
        raise bad_request_data("the body must be a non-empty JSON array of entities", "请求体必须是非空的实体 JSON 数组")
    if len(body) > MAX_BATCH:
        raise bad_request_data(f"at most {MAX_BATCH} entities per batch", f"每批最多 {MAX_BATCH} 个实体")
    link = parse_link_header(request.headers.get("link"))
    if media == "application/ld+json" and link is not None:
        raise bad_request_data("a Link header is not allowed with application/ld+json",
                               "使用 application/ld+json 时不允许 Link 头")
    entities: list[Entity] = []
    errors: list[tuple[str, Exception]] = []
    for item in body:
        item_id = str(item.get("id", "")) if isinstance(item, dict) else ""
        try:
            if not isinstance(item, dict):
                raise bad_request_data("each batch item must be an entity object", "批量中的每一项都必须是实体对象")
            if media == "application/ld+json":
                if "@context" not in item:
                    raise bad_request_data("application/ld+json needs @context in each entity",
                                           "每个实体都需要 @context")
                terms = await resolve(ctx, item["@context"])
            else:
                if "@context" in item:
                    raise bad_request_data("@context in the body needs Content-Type application/ld+json",
                                           "请求体中的 @context 需要 application/ld+json")
                terms = await resolve(ctx, link)
            entities.append(normalize_entity(item, terms, env.now, require_type=False, nulls=nulls))
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


@router.post("/create", summary="Create many entities", openapi_extra=operation("local", *HEADERS, body="NgsiLdEntityList"))
@router.post("/create/", include_in_schema=False)
async def batch_create(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed_batch.write_batch(request, ctx, "createBatch", "/entityOperations/create", lambda: batch_create(request, ctx), max_items=MAX_BATCH)
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(service.batch_create, env, entities)
    return _result(result, errors, ok_status=201, ok_body=result.success)


@router.post("/upsert", summary="Create or replace/update many entities",
             openapi_extra=operation("upsertOptions", "local", *HEADERS, body="NgsiLdEntityList"))
@router.post("/upsert/", include_in_schema=False)
async def batch_upsert(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed_batch.write_batch(request, ctx, "upsertBatch", "/entityOperations/upsert", lambda: batch_upsert(request, ctx), max_items=MAX_BATCH)
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    mode = "update" if "update" in _options(request) else "replace"
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(lambda conn: service.batch_upsert(conn, env, entities, mode=mode))
    if result.created:
        return _result(result, errors, ok_status=201, ok_body=result.created)
    return _result(result, errors, ok_status=204)


@router.post("/update", summary="Update attributes of many entities",
             openapi_extra=operation("updateOptions", "local", *HEADERS, body="NgsiLdEntityList"))
@router.post("/update/", include_in_schema=False)
async def batch_update(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed_batch.write_batch(request, ctx, "updateBatch", "/entityOperations/update", lambda: batch_update(request, ctx), max_items=MAX_BATCH)
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    mode = "no-overwrite" if "noOverwrite" in _options(request) else "update-only"
    entities, errors = await _entities(request, ctx, env)
    result = await ctx.db.write(lambda conn: service.batch_upsert(conn, env, entities, mode=mode))
    return _result(result, errors, ok_status=204)


@router.post("/merge", summary="Merge many entities", openapi_extra=operation("local", *HEADERS, body="NgsiLdEntityList"))
@router.post("/merge/", include_in_schema=False)
async def batch_merge(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed_batch.write_batch(request, ctx, "mergeBatch", "/entityOperations/merge", lambda: batch_merge(request, ctx), max_items=MAX_BATCH)
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    entities, errors = await _entities(request, ctx, env, nulls="merge")
    result = await ctx.db.write(service.batch_merge, env, entities)
    return _result(result, errors, ok_status=204)


@router.post("/delete", summary="Delete many entities",
             openapi_extra=operation("tenant", "local", body="NgsiLdEntityIdList"))
@router.post("/delete/", include_in_schema=False)
async def batch_delete(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed_batch.write_batch(request, ctx, "deleteBatch", "/entityOperations/delete", lambda: batch_delete(request, ctx), max_items=MAX_BATCH)
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    body, _ = await read_json(request)
    if not isinstance(body, list) or not body:
        raise bad_request_data("the body must be a non-empty JSON array of entity ids", "请求体必须是非空的实体 id 数组")
    ids: list[str] = []
    errors: list[tuple[str, Exception]] = []
    for item in body:
        if is_uri(item):
            ids.append(item)
        else:
            errors.append((str(item), bad_request_data(f"{item!r} is not a URI", f"{item!r} 不是 URI")))
    result = await ctx.db.write(service.batch_delete, env, ids)
    return _result(result, errors, ok_status=204)


def _selectors(items: Any, terms: TermMap, spec: service.Query) -> None:
    """The `entities` selectors of a Query body into `spec`: each selector has a type (selection
    language), optionally id (one URI or a list of them, taking precedence over its idPattern)."""
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise bad_request_data("entities must be a non-empty list of entity selectors",
                               "entities 必须是非空的实体选择器列表")
    types: list[str] = []
    tests: list[tuple[Any, set[str] | None, Any]] = []
    for item in items:
        raw_type, raw_id, pattern = item.get("type"), item.get("id"), item.get("idPattern")
        if not isinstance(raw_type, str) or not raw_type:
            raise bad_request_data("each entity selector needs a type", "每个实体选择器都需要 type")
        if pattern is not None and not isinstance(pattern, str):
            raise bad_request_data("idPattern must be a string", "idPattern 必须是字符串")
        ids = [raw_id] if isinstance(raw_id, str) else raw_id
        if ids is not None and (not isinstance(ids, list) or not ids):
            raise bad_request_data("id must be a URI or a list of URIs", "id 必须是 URI 或 URI 列表")
        for i in ids or []:
            check_entity_id(i)
        selection = parse_type_selection(raw_type, terms)
        types.extend(selection.types or [])
        compiled = service.compile_pattern(pattern) if pattern is not None and ids is None else None
        tests.append((selection, set(ids) if ids is not None else None, compiled))
    wildcard = any(sel.types is None for sel, _, _ in tests)
    spec.types = None if wildcard else list(dict.fromkeys(types))
    if len(tests) == 1:
        selection, ids, compiled = tests[0]
        spec.type_test = selection.test
        spec.ids = sorted(ids) if ids is not None else None
        spec.id_pattern = compiled.text if compiled is not None else None
        return
    if all(ids is not None for _, ids, _ in tests):
        spec.ids = sorted({i for _, ids, _ in tests for i in ids or ()})

    def selected(stored: service.Stored) -> bool:
        for selection, ids, compiled in tests:
            if selection.types is not None and not any(t in stored.types for t in selection.types):
                continue
            if selection.test is not None and not selection.test(stored.types):
                continue
            if ids is not None and stored.id not in ids:
                continue
            if compiled is not None and not compiled.search(stored.id):
                continue
            return True
        return False

    spec.entity_test = selected


def query_spec(body: dict[str, Any], terms: TermMap) -> service.Query:
    """What a Query body selects (entities, attrs, q, scopeQ, geoQ, ordering), checked and expanded."""
    spec = service.Query()
    if "entities" in body:
        _selectors(body["entities"], terms, spec)
    attrs, q, geo, scope_q = body.get("attrs"), body.get("q"), body.get("geoQ"), body.get("scopeQ")
    if attrs is not None and (not isinstance(attrs, list) or not attrs or not all(isinstance(a, str) for a in attrs)):
        raise bad_request_data("attrs must be a non-empty list of names", "attrs 必须是非空的名称列表")
    if q is not None and not isinstance(q, str):
        raise bad_request_data("q must be a string", "q 必须是字符串")
    if scope_q is not None and not isinstance(scope_q, str):
        raise bad_request_data("scopeQ must be a string", "scopeQ 必须是字符串")
    if attrs:
        check_attrs(attrs)
        spec.attrs = [terms.expand(a) for a in attrs]
    if q:
        expand = body.get("expandValues")
        spec.q = checked_q(q, terms, expand_values=expand.split(",") if isinstance(expand, str) else expand,
                           join=body.get("join"), join_level=body.get("joinLevel"))
    if scope_q is not None:
        spec.scope_q = compile_scope_q(scope_q)
    if geo is not None:
        spec.geo = parse_geoq(geo, terms.expand)
    ordering = body.get("ordering")
    if ordering is not None:
        if not isinstance(ordering, dict):
            raise bad_request_data("ordering must be an object", "ordering 必须是对象")
        spec.order = parse_ordering(ordering.get("orderBy"), terms, collation=ordering.get("collation"),
                                    coordinates=ordering.get("coordinates"), geometry=ordering.get("geometry"))
    return spec


def query_params_of(body: dict[str, Any]) -> list[tuple[str, str]]:
    """A Query body as the query parameters of GET /entities, for forwarding it to context sources."""
    params: list[tuple[str, str]] = []
    selectors = body.get("entities") or []
    types = [s["type"] for s in selectors if isinstance(s, dict) and isinstance(s.get("type"), str)]
    if types:
        params.append(("type", ",".join(dict.fromkeys(types))))
    ids = [i for s in selectors if isinstance(s, dict) for i in ([s["id"]] if isinstance(s.get("id"), str) else s.get("id") or [])]
    if ids:
        params.append(("id", ",".join(ids)))
    if body.get("attrs"):
        params.append(("attrs", ",".join(body["attrs"])))
    for key in ("q", "scopeQ"):
        if isinstance(body.get(key), str):
            params.append((key, body[key]))
    return params


@router.post("/query", summary="Query entities with a Query body",
             openapi_extra=operation(*PAGING, *VIEW, "local", *HEADERS, body="NgsiLdQuery", answers=GEOJSON))
@router.post("/query/", include_in_schema=False)
async def batch_query(request: Request, ctx: Ctx) -> Response:
    body, media = await read_json(request)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise bad_request_data("the body must be a Query object", "请求体必须是 Query 对象")
    if "temporalQ" in body:
        raise bad_request_data("temporalQ belongs to the temporal query only", "temporalQ 只用于时间演变查询")
    join_level = body.get("joinLevel")
    if join_level is not None and (isinstance(join_level, bool) or not isinstance(join_level, int) or join_level < 1):
        raise bad_request_data("joinLevel must be a positive integer", "joinLevel 必须是正整数")
    context = body.get("@context") if media == "application/ld+json" else parse_link_header(request.headers.get("link"))
    terms = await resolve(ctx, context)
    spec = query_spec(body, terms)
    limit, offset, count = paging(request)
    view = view_of(request, terms, frozenset(spec.attrs) if spec.attrs else None)
    datasets = body.get("datasetId")
    if datasets is not None:
        names = [datasets] if isinstance(datasets, str) else datasets
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise bad_request_data("datasetId must be a string or a list of strings",
                                   "datasetId 必须是字符串或字符串列表")
        view = replace(view, datasets=frozenset(names))
    shape = linked.shape_of(terms, pick=body.get("pick"), omit=body.get("omit"), join=body.get("join"),
                            join_level=body.get("joinLevel"), contained_by=body.get("containedBy"),
                            has_attrs=bool(spec.attrs))
    tenant = tenant_of(request)
    regs = await distributed.registrations_of(request, ctx)
    matches = distributed.query_matches(regs, spec.types, spec.ids, spec.attrs, None) if regs else []
    if matches:
        if spec.order is not None:
            raise bad_request_data("ordering cannot be used in a query that context sources take part in",
                                   "有上下文源参与的查询不能使用排序")
        rows, headers = await distributed_page(request, ctx, tenant, spec, matches, terms, context, limit, offset,
                                                count, params=query_params_of(body))
    else:
        page, headers = await read_page(request, ctx, tenant, spec, limit, offset, count)
        rows = page.rows
    if shape is None:
        return respond(request, [render_stored(r, view) for r in rows], context, headers=headers,
                       geometry_property=body.get("geometryProperty"), offered=GEOJSON)
    return respond(request, await ctx.db.read(shaped, tenant, rows, view, shape), context, headers=headers,
                   geometry_property=body.get("geometryProperty"), offered=GEOJSON)
