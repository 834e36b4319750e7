"""NGSI-LD entity and attribute endpoints: create, retrieve, query, replace, merge, delete."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from wecity.context import distributed, linked, service, snapshots
from wecity.context.entity import (
    ENTITY_MEMBERS,
    NULL,
    check_entity_id,
    check_name,
    check_scope,
    entity_expiry,
    is_uri,
    normalize_attribute,
    normalize_entity,
    normalize_fragment,
    now_text,
)
from wecity.context.errors import bad_request_data, resource_not_found, too_many_results
from wecity.context.federation import Outcome, partial_result
from wecity.context.geo import parse_geoquery
from wecity.context.ldcontext import TermMap
from wecity.context.mapped import HEADER, location, map_headers, mapped_page
from wecity.context.openapi import HEADERS, PAGING, SHAPE, VIEW, operation
from wecity.context.ordering import parse_ordering
from wecity.context.projection import select_datasets
from wecity.context.protocol import (
    GEOJSON,
    env_of,
    in_preferred_version,
    incoming,
    no_content,
    outgoing_terms,
    page_links,
    paging,
    render_problem,
    respond,
    split_list,
    tenant_of,
    view_of,
)
from wecity.context.query import Predicate, compile_q, compile_query
from wecity.context.render import View, render_entity
from wecity.context.scopeq import compile_scope_q
from wecity.context.selection import parse_type_selection
from wecity.context.transient import expiry_text
from wecity.context.verbs import KEEP
from wecity.core.errors import NotFound, WeCityError
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1", tags=["ngsi-ld"])
SNAPSHOT = "NGSILD-Snapshot"
BASE = "/ngsi-ld/v1/entities/"
URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"  # kept as they are in a Location header; anything else is percent-encoded


def render_stored(stored: service.Stored, view: View) -> dict[str, Any]:
    attrs = stored.attrs if view.datasets is None else select_datasets(stored.attrs, view.datasets)
    return render_entity(stored.id, stored.types, attrs, view, created_at=now_text(stored.created_at),
                         modified_at=now_text(stored.modified_at), scope=stored.scope,
                         expires_at=expiry_text(stored.expires_at) if stored.expires_at else None)


def update_result(result: service.UpdateResult) -> Response | None:
    """None when every attribute was updated (204), else the 207 body the spec gives. It is plain JSON
    with no @context to read short names with, so the attribute names are the full IRIs."""
    if not result.not_updated:
        return None
    body = {"updated": list(result.updated),
            "notUpdated": [{"attributeName": i, "reason": why} for i, why in result.not_updated]}
    return Response(json.dumps(body, ensure_ascii=False), status_code=207, media_type="application/json")


@router.post("/entities", status_code=201, summary="Create an entity",
             openapi_extra=operation("local", *HEADERS, body="NgsiLdEntity"))
@router.post("/entities/", include_in_schema=False)
async def create_entity(request: Request, ctx: Ctx) -> Response:
    forwarded = await distributed.write(request, ctx, distributed.Write("createEntity", "POST", "/entities", None,
                                                                        ok_status=201),
                                        lambda: create_entity(request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx, want_object=True)
    entity = normalize_entity(data.body, data.terms, env.now)
    await ctx.db.write(service.create, env, entity)
    return Response(status_code=201, headers={"Location": BASE + quote(entity.id, safe=URI_SAFE)})


def _path(entity_id: str) -> str:
    """The path of an entity at a context source, under /ngsi-ld/v1."""
    return "/entities/" + quote(entity_id, safe=":")


_NOT_ATTRIBUTES = {"id", "type", "@id", "@type", "@context"}


def check_attrs(attrs: list[str]) -> None:
    """`attrs` names attributes; the entity's own members (id, type) are not among them."""
    for name in attrs:
        if name in _NOT_ATTRIBUTES:
            raise bad_request_data(f"{name!r} is not an attribute name", f"{name!r} 不是属性名")
        check_name(name)


SYSTEM_ATTRIBUTES = {"createdAt", "modifiedAt", "deletedAt"}


def checked_q(text: str, terms: TermMap, *, expand_values: list[str] | None, join: Any,
              join_level: Any) -> Predicate:
    """`q` compiled; linked-entity terms (`rel{attr}`) need Linked Entity retrieval (`join`) at least as
    deep as they go (clause 5.7.2.4)."""
    compiled = compile_query(text, terms, frozenset(expand_values or ()))
    if compiled.depth:
        if not join:
            raise bad_request_data("a query on linked entities' attributes needs join", "查询关联实体的属性需要 join 参数")
        try:
            level = int(join_level) if join_level is not None else 1
        except (TypeError, ValueError) as exc:
            raise bad_request_data("joinLevel must be a positive integer", "joinLevel 必须是正整数") from exc
        if compiled.depth > level:
            raise bad_request_data(f"the query goes {compiled.depth} linked entities deep, joinLevel is {level}",
                                   f"查询深入 {compiled.depth} 层关联实体，但 joinLevel 为 {level}")
    return compiled.predicate


def too_wide(request: Request, terms: TermMap) -> bool:
    """Whether a query without type names nothing to narrow it by: attrs and q on system attributes
    alone (createdAt, modifiedAt) do not count (clause 5.7.2.4)."""
    params = request.query_params
    if "type" in params or params.get("local") == "true" or "georel" in params or "scopeQ" in params:
        return False
    attrs = split_list(params.get("attrs")) or []
    if any(a not in SYSTEM_ATTRIBUTES for a in attrs):
        return False
    q = params.get("q")
    if q and any(n not in SYSTEM_ATTRIBUTES for n in compile_query(q, terms).names):
        return False
    return True


def query_of(request: Request, terms: TermMap) -> service.Query:
    params = request.query_params
    spec = service.Query()
    type_text = params.get("type")
    if type_text is not None:
        selection = parse_type_selection(type_text, terms)
        if selection.types is None and params.get("local") == "false":
            raise bad_request_data("type=* selects every type and cannot be combined with local=false",
                                   "type=* 表示所有类型，不能与 local=false 同时使用")
        spec.types, spec.type_test = selection.types, selection.test
    ids = split_list(params.get("id"))
    for i in ids or []:
        check_entity_id(i)
    spec.ids = ids
    if not ids:  # an id list takes precedence over idPattern
        spec.id_pattern = params.get("idPattern")
    attrs = split_list(params.get("attrs"))
    if attrs:
        check_attrs(attrs)
        spec.attrs = [terms.expand(a) for a in attrs]
    q = params.get("q")
    if q:
        spec.q = checked_q(q, terms, expand_values=split_list(params.get("expandValues")), join=params.get("join"),
                           join_level=params.get("joinLevel"))
    csf = params.get("csf")
    if csf is not None:
        compile_q(csf, terms)  # a malformed filter is an error even when no registration is there to filter
    scope_q = params.get("scopeQ")
    spec.scope_q = compile_scope_q(scope_q) if scope_q is not None else None
    spec.geo = parse_geoquery(params.get("georel"), params.get("geometry"), params.get("coordinates"),
                              terms.expand(params.get("geoproperty") or "location"))
    spec.order = parse_ordering(params.get("orderBy"), terms, collation=params.get("collation"),
                                coordinates=params.get("orderFrom"))
    return spec


def shape_from(request: Request, terms: TermMap, *, has_attrs: bool) -> linked.Shape | None:
    params = request.query_params
    return linked.shape_of(terms, pick=params.get("pick"), omit=params.get("omit"), join=params.get("join"),
                           join_level=params.get("joinLevel"), contained_by=params.get("containedBy"),
                           has_attrs=has_attrs)


def shaped(conn: Connection, tenant: str, roots: list[service.Stored], view: View, shape: linked.Shape) -> list[dict[str, Any]]:
    """The roots rendered, projected and joined with their linked entities, as `shape` asks."""
    plain = replace(view, attrs=None)
    assembler = linked.Assembler(view.terms, lambda s: render_stored(s, view), partial(service.entities_by_id, conn, tenant),
                                 shape.join, shape.pick, shape.omit, render_linked=lambda s: render_stored(s, plain))
    return assembler.entities(roots)


async def read_page(request: Request, ctx: Any, tenant: str, spec: Any, limit: int, offset: int,
                    count: bool) -> tuple[Any, dict[str, str]]:
    """One page of a query (GET /entities or POST /entityOperations/query) and its headers: the total when
    `count=true`, the prev/next links, and the EntityMap the request asked for or referred to."""
    page, headers, _ = await read_mapped_page(request, ctx, tenant, spec, limit, offset, count)
    return page, headers


async def read_mapped_page(request: Request, ctx: Any, tenant: str, spec: Any, limit: int, offset: int,
                           count: bool) -> tuple[Any, dict[str, str], int]:
    """`read_page` and its status: 201 when the request asked for an EntityMap and one was made."""
    snapshot_id = request.headers.get(SNAPSHOT.lower())
    mapped = None
    if snapshot_id is not None:  # answered from the snapshot's frozen entities (6.3.22)
        page = await ctx.db.write(partial(snapshots.query_page, tenant=tenant, snapshot_id=snapshot_id, spec=spec,
                                          limit=limit, offset=offset, count=count, now=ctx.clock.now()))
    elif (mapped := await mapped_page(request, ctx, tenant, spec, limit, offset, count)) is not None:
        page = mapped.page
    else:
        page = await ctx.db.read(partial(service.query_page, tenant=tenant, spec=spec, limit=limit, offset=offset,
                                         count=count, now=ctx.clock.now()))
    headers = {"NGSILD-Results-Count": str(page.total)} if page.total is not None else {}
    links = page_links(request, limit=limit, offset=offset, more=page.more)
    if links:
        headers["Link"] = ", ".join(links)
    if snapshot_id is not None:
        headers[SNAPSHOT] = snapshot_id
    if mapped is None:
        return page, headers, 200
    headers[HEADER] = location(mapped.map_id)
    asked = request.query_params.get("entityMap") == "true"
    return page, headers, 201 if mapped.created and asked else 200


def _csf(request: Request, terms: TermMap) -> Predicate | None:
    csf = request.query_params.get("csf")
    return compile_q(csf, terms) if csf else None


DISTRIBUTED_WINDOW = 10_000  # offset + limit of a query context sources take part in


async def distributed_page(request: Request, ctx: Any, tenant: str, spec: Any, matches: list[Any], terms: TermMap,
                            context: Any, limit: int, offset: int, count: bool,
                            params: list[tuple[str, str]] | None = None,
                            window: int = DISTRIBUTED_WINDOW) -> tuple[list[Any], dict[str, str]]:
    """One page of a query that context sources take part in: the local entities up to the end of the
    page and what the sources hold, merged by id, then cut (the sources are asked concurrently). The
    local read takes every row before the page, so such a query pages through the first
    `window` entities only (a snapshot's fill, in the background, takes more)."""
    if offset + limit > window:
        raise too_many_results(
            f"a query that context sources take part in pages through the first {window} entities only "
            "(narrow it, or use local=true)",
            f"有上下文源参与的查询只能分页浏览前 {window} 个实体（请缩小查询范围，或使用 local=true）")
    local_read = ctx.db.read(partial(service.query_page, tenant=tenant, spec=spec, limit=offset + limit, offset=0,
                                     count=False))
    remote_read = distributed.query(request, ctx, matches, terms, context, params=params,
                                    prefer_post=params is not None)
    page, (found, remote) = await asyncio.gather(local_read, remote_read)
    merged = distributed.merge(page.rows, found,
                               auxiliary={s.id for s in found} if all(m.registration.mode == "auxiliary" for m in matches) else ())
    headers = dict(remote.headers)
    if count:
        headers["NGSILD-Results-Count"] = str(len(merged))
    return merged[offset:offset + limit], headers


@router.get("/entities", summary="Query entities", openapi_extra=operation(
    "id", "type", "idPattern", "attrs", "q", "csf", "scopeQ", "georel", "geometry", "coordinates", "geoproperty", "local",
    "splitEntities", "expandValues", "orderBy", "collation", "orderFrom", *SHAPE, *VIEW, "geometryProperty", "entityMap", *PAGING,
    *HEADERS, "entityMapHeader", answers=GEOJSON))
@router.get("/entities/", include_in_schema=False)
async def query_entities(request: Request, ctx: Ctx) -> Response:
    context, terms = await outgoing_terms(request, ctx)
    if too_wide(request, terms):
        raise bad_request_data("a query needs type, attrs, q, scopeQ or a geo-query (or local=true); system attributes "
                               "alone do not narrow it", "查询需要 type、attrs、q、scopeQ 或地理条件（或 local=true），"
                               "仅有系统属性不足以限定查询")
    spec = query_of(request, terms)
    limit, offset, count = paging(request)
    view = view_of(request, terms, frozenset(spec.attrs) if spec.attrs else None)
    shape = shape_from(request, terms, has_attrs=bool(spec.attrs))
    tenant = tenant_of(request)
    regs = await distributed.registrations_of(request, ctx)
    matches = distributed.query_matches(regs, spec.types, spec.ids, spec.attrs, _csf(request, terms)) if regs else []
    status = 200
    if matches:
        distributed.refuse_ordering(request, matches)
        rows, headers = await distributed_page(request, ctx, tenant, spec, matches, terms, context, limit, offset, count)
    else:
        page, headers, status = await read_mapped_page(request, ctx, tenant, spec, limit, offset, count)
        rows = page.rows
    if shape is None:
        return respond(request, [render_stored(r, view) for r in rows], context, status=status, headers=headers,
                       offered=GEOJSON)
    body = await ctx.db.read(shaped, tenant, rows, view, shape)
    return respond(request, body, context, status=status, headers=headers, offered=GEOJSON)


@router.get("/entities/{entity_id}", summary="Retrieve an entity", openapi_extra=operation(
    "type", "attrs", *SHAPE, *VIEW, "geometryProperty", "entityMap", "local", *HEADERS, "prefer", "entityMapHeader",
    answers=GEOJSON))
async def retrieve_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    context, terms = await outgoing_terms(request, ctx)
    attrs = split_list(request.query_params.get("attrs"))
    expanded = frozenset(terms.expand(a) for a in attrs) if attrs else None
    view = view_of(request, terms, expanded)
    shape = shape_from(request, terms, has_attrs=bool(attrs))
    tenant = tenant_of(request)
    snapshot_id = request.headers.get(SNAPSHOT.lower())
    if snapshot_id is not None:  # the entity as the snapshot froze it (6.3.22)
        stored = await ctx.db.write(snapshots.entity, tenant, snapshot_id, entity_id, ctx.clock.now())
    else:
        stored = await ctx.db.read(service.get, tenant, entity_id, ctx.clock.now())
    wanted_type = request.query_params.get("type")
    warnings: dict[str, str] = {}
    regs = await distributed.registrations_of(request, ctx)
    if regs:
        wanted = [terms.expand(t) for t in split_list(wanted_type) or []] or None
        held, remote = await distributed.retrieve(request, ctx, regs, entity_id, wanted, expanded, terms, context)
        warnings = remote.headers
        if held:
            merged = distributed.merge([stored] if stored is not None else [], held)
            stored = merged[0]
    if stored is None or (wanted_type and terms.expand(wanted_type) not in stored.types):
        return _problem_with(request, service.not_found(entity_id), warnings)
    if expanded is not None and expanded.isdisjoint(stored.attrs):
        return _problem_with(request, _nothing_left(entity_id), warnings)
    headers = {SNAPSHOT: snapshot_id} if snapshot_id is not None else await map_headers(request, ctx, [stored.id])
    headers = {**(headers or {}), **warnings}
    body: Any
    if shape is None:
        body = render_stored(stored, view)
    else:
        found = await ctx.db.read(shaped, tenant, [stored], view, shape)
        if not found:
            raise _nothing_left(entity_id)
        body = found[0] if len(found) == 1 else found
    body, status, preference = in_preferred_version(request, body)
    return respond(request, body, context, status=status, headers={**(headers or {}), **preference}, offered=GEOJSON)


def _problem_with(request: Request, exc: WeCityError, headers: dict[str, str]) -> Response:
    """An error answer that keeps the NGSILD-Warning of the context sources asked on the way."""
    response = render_problem(request, exc)
    response.headers.update(headers)
    return response


def _nothing_left(entity_id: str) -> NotFound:
    return resource_not_found(f"entity {entity_id} has none of the members asked for",
                              f"实体 {entity_id} 没有所请求的成员")


@router.put("/entities/{entity_id}", status_code=204, summary="Replace an entity",
            openapi_extra=operation("local", *HEADERS, body="NgsiLdEntityFragment"))
async def replace_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    forwarded = await distributed.write(request, ctx, distributed.Write("replaceEntity", "PUT", _path(entity_id), entity_id),
                                        lambda: replace_entity(entity_id, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    entity = normalize_entity(data.body, data.terms, env.now, entity_id=entity_id, require_type=False)
    await ctx.db.write(service.replace, env, entity)
    return no_content()


@router.patch("/entities/{entity_id}", status_code=204, summary="Merge an entity",
              openapi_extra=operation("local", *HEADERS, body="NgsiLdEntityFragment"))
async def merge_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    forwarded = await distributed.write(request, ctx, distributed.Write("mergeEntity", "PATCH", _path(entity_id), entity_id),
                                        lambda: merge_entity(entity_id, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    if isinstance(data.body, dict) and data.body.get("id", entity_id) != entity_id:
        raise bad_request_data("the id in the body differs from the id in the URL", "请求体中的 id 与 URL 中的不一致")
    attrs = normalize_fragment(data.body, data.terms, env.now, nulls="merge")
    raw_type = data.body.get("type") if isinstance(data.body, dict) else None
    types = [data.terms.expand(t) for t in (raw_type if isinstance(raw_type, list) else [raw_type])] if raw_type else None
    scope = data.body.get("scope") if isinstance(data.body, dict) else None
    if scope is not None and scope != NULL:
        check_scope(scope)
    expires = entity_expiry(data.body) if isinstance(data.body, dict) and "expiresAt" in data.body else KEEP
    await ctx.db.write(lambda conn: service.merge(conn, env, entity_id, attrs, types=types, scope=scope,
                                                  expires_at=expires))
    return no_content()


@router.patch("/entities/", include_in_schema=False)
@router.put("/entities/", include_in_schema=False)
@router.api_route("/entities//attrs", methods=["POST", "PATCH"], include_in_schema=False)
@router.api_route("/entities//attrs/", methods=["POST", "PATCH"], include_in_schema=False)
@router.api_route("/entities//attrs/{attr}", methods=["PATCH", "PUT", "DELETE"], include_in_schema=False)
async def entity_without_id(request: Request) -> Response:
    """A write that names no entity: the target id is missing (5.6.17.4, 5.6.18.4 and the attribute
    verbs alike)."""
    raise bad_request_data("the entity id is missing from the path", "路径中缺少实体 id")


@router.delete("/entities/{entity_id}", status_code=204, summary="Delete an entity",
               openapi_extra=operation("type", "local", *HEADERS))
async def delete_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    forwarded = await distributed.write(request, ctx, distributed.Write("deleteEntity", "DELETE", _path(entity_id), entity_id,
                                                                        has_body=False),
                                        lambda: delete_entity(entity_id, request, ctx))
    if forwarded is not None:
        return forwarded
    wanted = request.query_params.get("type")
    types = None
    if wanted:
        _, terms = await outgoing_terms(request, ctx)
        types = [terms.expand(t) for t in split_list(wanted) or []]
    await ctx.db.write(partial(service.delete, env=env_of(request, ctx), entity_id=entity_id, types=types))
    return no_content()


_TYPE_NAME_SPLIT = re.compile(r"[,;|()\s]+")  # the operators of a type selection (4.17) between its names
PURGE_ALL = 1_000_000  # a purge goes through every entity it matches, not one page


@router.delete("/entities", status_code=204, summary="Purge entities", openapi_extra=operation(
    "id", "type", "idPattern", "attrs", "q", "scopeQ", "georel", "geometry", "coordinates", "geoproperty", "local",
    "keep", "drop", *HEADERS))
@router.delete("/entities/", include_in_schema=False)
async def purge_entities(request: Request, ctx: Ctx) -> Response:
    """Delete every entity a query matches, or with `drop`/`keep` only some of their attributes (5.6.21).
    The query must be narrowed as for a query (type, attrs, q, a geo-query or scopeQ on non-system
    attributes, or local=true): an id list or idPattern alone does not do."""
    params = request.query_params
    if "keep" in params and "drop" in params:
        raise bad_request_data("keep and drop cannot be used together", "keep 与 drop 不能同时使用")
    _, terms = await outgoing_terms(request, ctx)
    if too_wide(request, terms):
        raise bad_request_data("a purge needs type, attrs, q, scopeQ or a geo-query (or local=true); ids and "
                               "system attributes alone do not narrow it", "清除需要 type、attrs、q、scopeQ 或地理条件"
                               "（或 local=true），仅有 id 或系统属性不足以限定范围")
    q = params.get("q")
    if q and compile_query(q, terms).depth:
        raise bad_request_data("a purge cannot query linked entities", "清除不能查询关联实体")
    spec = query_of(request, terms)
    keep = drop = None
    for name in ("keep", "drop"):
        listed = split_list(params.get(name))
        if name in params and not listed:
            raise bad_request_data(f"{name} names no attribute", f"{name} 未指定属性")
        if listed:
            check_attrs(listed)
            chosen = {terms.expand(a) for a in listed}
            keep, drop = (chosen, drop) if name == "keep" else (keep, chosen)
    env = env_of(request, ctx)

    def write(conn: Connection) -> int:
        found, _ = service.query(conn, env.tenant, spec, limit=PURGE_ALL, offset=0, count=False, now=env.now)
        return service.purge(conn, env, found, keep=keep, drop=drop)

    await ctx.db.write(write)
    type_names = split_list(params.get("type")) if params.get("type") else None
    remote = await distributed.purge(request, ctx, _type_names(type_names, terms))
    if any(not o.ok for o in remote):
        return Response(json.dumps(partial_result(None, [Outcome(None, 204), *remote]), ensure_ascii=False),
                        status_code=207, media_type="application/json")
    return no_content()


def _type_names(listed: list[str] | None, terms: TermMap) -> list[str] | None:
    """The type names of a type selection, expanded (an expression's names, whatever its operators)."""
    if not listed:
        return None
    return [terms.expand(n) for item in listed for n in _TYPE_NAME_SPLIT.split(item) if n]


@router.post("/entities/{entity_id}/attrs", summary="Append attributes",
             openapi_extra=operation("appendOptions", "type", "local", *HEADERS, body="NgsiLdEntityFragment"))
@router.post("/entities/{entity_id}/attrs/", include_in_schema=False)
async def append_attrs(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    forwarded = await distributed.write(request, ctx, distributed.Write("appendAttrs", "POST", _path(entity_id) + "/attrs",
                                                                        entity_id),
                                        lambda: append_attrs(entity_id, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    options = set(filter(None, request.query_params.get("options", "").split(",")))
    attrs = normalize_fragment(data.body, data.terms, env.now)
    types, scope = _types_and_scope(data.body, data.terms)
    selector = _selector(request, data.terms)
    result = await ctx.db.write(lambda conn: service.append(conn, env, entity_id, attrs, scope=scope, selector=selector,
                                                             no_overwrite="noOverwrite" in options, types=types))
    return update_result(result) or no_content()


def _types_and_scope(body: Any, terms: TermMap) -> tuple[list[str] | None, Any]:
    """The entity types (expanded) and the scope an attribute fragment carries besides attributes."""
    if not isinstance(body, dict):
        return None, None
    raw_type = body.get("type")
    types = None
    if raw_type:
        names = raw_type if isinstance(raw_type, list) else [raw_type]
        for name in names:
            if not isinstance(name, str):
                raise bad_request_data("entity type must be a string", "实体类型必须是字符串")
            check_name(name)
        types = [terms.expand(t) for t in names]
    scope = body.get("scope")
    return types, None if scope is None else check_scope(scope)


def _selector(request: Request, terms: TermMap) -> list[str] | None:
    """The `type` query parameter: the verb applies only to an entity of one of these types."""
    wanted = split_list(request.query_params.get("type"))
    return [terms.expand(t) for t in wanted] if wanted else None


@router.patch("/entities/{entity_id}/attrs", summary="Update attributes",
              openapi_extra=operation("type", "local", *HEADERS, body="NgsiLdEntityFragment"))
@router.patch("/entities/{entity_id}/attrs/", include_in_schema=False)
async def update_attrs(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    forwarded = await distributed.write(request, ctx, distributed.Write("updateEntity", "PATCH", _path(entity_id) + "/attrs",
                                                                        entity_id),
                                        lambda: update_attrs(entity_id, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    attrs = normalize_fragment(data.body, data.terms, env.now, nulls="delete")
    types, scope = _types_and_scope(data.body, data.terms)
    if not attrs and not types and scope is None:
        raise bad_request_data("no attributes to update", "没有要更新的属性")
    selector = _selector(request, data.terms)
    result = await ctx.db.write(partial(service.update, env=env, entity_id=entity_id, attrs=attrs, types=types,
                                        scope=scope, selector=selector))
    if not result.updated and not types and scope is None:
        raise resource_not_found("none of the attributes exist", "这些属性都不存在")
    return update_result(result) or no_content()


def _fragment(body: Any, name: str, terms: TermMap, now: Any, *, partial: bool) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request_data("the body must be a JSON object", "请求体必须是 JSON 对象")
    body = {k: v for k, v in body.items() if k not in ENTITY_MEMBERS or k == "type"}
    return normalize_attribute(body, terms, now, partial=partial, name=name, nulls="delete" if partial else "")


@router.patch("/entities/{entity_id}/attrs/{attr}", status_code=204, summary="Partial attribute update",
              openapi_extra=operation("type", "local", *HEADERS, body="NgsiLdAttribute"))
async def patch_attr(entity_id: str, attr: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    check_name(attr)
    forwarded = await distributed.write(request, ctx, distributed.Write("updateAttrs", "PATCH",
                                                                        _path(entity_id) + "/attrs/" + attr, entity_id),
                                        lambda: patch_attr(entity_id, attr, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    if attr == "scope":
        raise bad_request_data("the scope is not an attribute: a partial attribute update cannot change it",
                               "scope 不是属性，不能用部分属性更新修改")
    fragment = _fragment(data.body, attr, data.terms, env.now, partial=True)
    await ctx.db.write(partial(service.patch_attr, env=env, entity_id=entity_id, iri=data.terms.expand(attr),
                               fragment=fragment, selector=_selector(request, data.terms)))
    return no_content()


@router.put("/entities/{entity_id}/attrs/{attr}", status_code=204, summary="Replace an attribute",
            openapi_extra=operation("local", *HEADERS, body="NgsiLdAttribute"))
async def replace_attr(entity_id: str, attr: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    check_name(attr)
    forwarded = await distributed.write(request, ctx, distributed.Write("replaceAttrs", "PUT",
                                                                        _path(entity_id) + "/attrs/" + attr, entity_id),
                                        lambda: replace_attr(entity_id, attr, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    new = _fragment(data.body, attr, data.terms, env.now, partial=False)
    await ctx.db.write(service.replace_attr, env, entity_id, data.terms.expand(attr), new)
    return no_content()


@router.delete("/entities/{entity_id}/attrs/{attr}", status_code=204, summary="Delete an attribute",
               openapi_extra=operation("type", "deleteDatasetId", "deleteAll", "local", *HEADERS))
async def delete_attr(entity_id: str, attr: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    check_name(attr)
    forwarded = await distributed.write(request, ctx, distributed.Write("deleteAttrs", "DELETE",
                                                                        _path(entity_id) + "/attrs/" + attr, entity_id,
                                                                        has_body=False),
                                        lambda: delete_attr(entity_id, attr, request, ctx))
    if forwarded is not None:
        return forwarded
    env = env_of(request, ctx)
    _, terms = await outgoing_terms(request, ctx)
    params = request.query_params
    dataset = params.get("datasetId")
    if dataset is not None and dataset != "@none" and not is_uri(dataset):
        raise bad_request_data("datasetId must be a URI", "datasetId 必须是 URI")
    delete_all = params.get("deleteAll", "false").lower()
    if delete_all not in ("true", "false"):
        raise bad_request_data("deleteAll must be true or false", "deleteAll 必须是 true 或 false")
    await ctx.db.write(partial(service.delete_attr, env=env, entity_id=entity_id,
                               iri="scope" if attr == "scope" else terms.expand(attr), selector=_selector(request, terms),
                               dataset=None if dataset == "@none" else dataset, delete_all=delete_all == "true"))
    return no_content()
