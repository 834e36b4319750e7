"""NGSI-LD temporal API over HTTP: the temporal representation of entities (retrieve, query by GET or by a
Query body, create or add to, delete) and of their attributes (add, delete, change or delete one instance).
What a request asks for and how entities are judged and shown is `wecity.context.temporal`."""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import entitymaps, history, temporal
from wecity.context import rows as entity_rows
from wecity.context.entity import (
    ENTITY_MEMBERS,
    Entity,
    check_attribute_name,
    check_entity_id,
    check_name,
    check_scope,
    is_uri,
    normalize_attribute,
    normalize_entity,
)
from wecity.context.errors import bad_request_data, invalid_request, resource_not_found
from wecity.context.history import SCOPE
from wecity.context.ldcontext import TermMap, parse_link_header
from wecity.context.models import entities
from wecity.context.openapi import HEADERS, PAGING, TEMPORAL, TEMPORAL_VIEW, operation
from wecity.context.owned import require_writable
from wecity.context.protocol import (
    JSON_LD,
    env_of,
    incoming,
    no_content,
    outgoing_terms,
    paging,
    read_json,
    resolve,
    respond,
    tenant_of,
)
from wecity.context.routes_batch import query_spec
from wecity.context.routes_entities import URI_SAFE, query_of, too_wide
from wecity.context.routes_entitymaps import HEADER as MAP_HEADER
from wecity.context.routes_entitymaps import location as map_location
from wecity.context.rows import not_found
from wecity.context.search import Query
from wecity.core.errors import NotFound
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/temporal", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/temporal/entities/"
_ASK_PARAMS = ("timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "attrs", "options", "format",
               "aggrMethods", "aggrPeriodDuration", "datasetId", "pick", "omit")


def _page(request: Request) -> int:
    return int(request.app.state.ctx.settings.ngsild_temporal_instances)


def _ask(request: Request, terms: TermMap) -> temporal.Ask:
    params = request.query_params
    return temporal.parse_ask({k: params[k] for k in _ASK_PARAMS if k in params}, terms, page=_page(request))


def _attr_not_found(entity_id: str, name: str) -> NotFound:
    return resource_not_found(f"attribute {name} of entity {entity_id} has no temporal evolution",
                              f"实体 {entity_id} 的属性 {name} 没有时间演变")


# -- retrieval ------------------------------------------------------------------------------------------

def _entity(conn: Any, tenant: str, entity_id: str, ask: temporal.Ask) -> tuple[dict[str, Any], temporal.Page | None] | None:
    types = history.types_of(conn, tenant, [entity_id]).get(entity_id)
    if types is None:
        return None
    if ask.attrs is not None and history.attribute_names(conn, tenant, entity_id).isdisjoint(ask.attrs):
        raise _attr_not_found(entity_id, ", ".join(ask.terms.compact(a) for a in ask.attrs))
    if ask.form == "aggregated":
        return temporal.aggregated(conn, tenant, entity_id, types, ask), None
    where = ask.when.where() if ask.timeproperty == "observedAt" else []
    datasets = ask.datasets
    keep = None if datasets is None else lambda inst: inst.get("datasetId", "@none") in datasets
    # By observedAt (the rows' own time), only what the page shows is read, not the whole history: the
    # newest of each attribute with lastN, else the oldest.
    if ask.last_n and ask.timeproperty == "observedAt":
        rows = history.newest_rows(conn, tenant, entity_id, attrs=ask.attrs, where=where, last_n=ask.last_n,
                                   keep=keep)
    elif ask.timeproperty == "observedAt":
        rows = history.earliest_rows(conn, tenant, entity_id, attrs=ask.attrs, where=where, page=ask.page,
                                     keep=keep)
    else:
        rows = history.rows_of(conn, tenant, [entity_id], attrs=ask.attrs, where=where).get(entity_id, [])
    chosen = temporal.select_instances(temporal.windowed(rows, ask), ask)
    edge = temporal.boundary(chosen, ask)
    if edge is None:
        return temporal.represent(entity_id, types, chosen, ask), None
    kept = temporal.cut(chosen, edge, ask)
    emptied = {r[1] for r in chosen} - {r[1] for r in kept}
    return temporal.represent(entity_id, types, kept, ask, emptied=emptied), temporal.page_of(edge, kept, ask)


def _partial(page: temporal.Page | None) -> tuple[int, dict[str, str]]:
    return (206, {"Content-Range": page.header()}) if page is not None else (200, {})


@router.get("/entities/{entity_id}", summary="Temporal representation of an entity",
            openapi_extra=operation(*TEMPORAL, *TEMPORAL_VIEW, "entityMap", *HEADERS, answers=JSON_LD))
async def temporal_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    context, terms = await outgoing_terms(request, ctx)
    ask = _ask(request, terms)
    tenant = tenant_of(request)
    found = await ctx.db.read(_entity, tenant, entity_id, ask)
    if found is None:
        raise not_found(entity_id)
    body, page = found
    if temporal.projection.is_empty(body):
        raise resource_not_found(f"entity {entity_id} has none of the members asked for",
                                 f"实体 {entity_id} 没有所请求的成员")
    status, headers = _partial(page)
    if request.query_params.get("entityMap") == "true":
        made = await ctx.db.write(entitymaps.use, tenant, None, [entity_id], ctx.clock.now())
        headers[MAP_HEADER] = map_location(made.map_id)
    return respond(request, body, context, status=status, headers=headers)


# -- queries --------------------------------------------------------------------------------------------

def _query(conn: Any, tenant: str, spec: Query, ask: temporal.Ask, *, limit: int, offset: int, descending: bool,
           only: set[str] | None) -> tuple[list[dict[str, Any]], int, temporal.Page | None]:
    """One page of the entities a temporal query finds, their total, and the time range of a partial
    answer."""
    candidates = history.entity_ids(conn, tenant, types=spec.types, ids=spec.ids)
    if only is not None:
        candidates = [c for c in candidates if c in only]
    pattern = temporal.id_test(spec)
    if pattern is not None:
        candidates = [c for c in candidates if pattern.search(c)]
    candidates.sort(reverse=descending)
    types = history.types_of(conn, tenant, candidates) if candidates else {}
    where = ask.when.where() if ask.timeproperty == "observedAt" else []
    rows = history.rows_of(conn, tenant, candidates, attrs=None, where=where) if candidates else {}
    scopes: dict[str, list[history.Row]] = {}
    if spec.scope_q is not None and candidates:
        scopes = history.rows_of(conn, tenant, candidates, attrs=[SCOPE], where=[])
    chosen: list[tuple[str, list[history.Row]]] = []
    for entity_id in candidates:
        mine = temporal.windowed(rows.get(entity_id, []), ask)
        if spec.scope_q is not None:
            narrowed = temporal.scoped(mine, scopes.get(entity_id, []), ask, spec.scope_q)
            if narrowed is None:
                continue
            mine = narrowed
        if not temporal.matches(entity_id, types.get(entity_id, []), mine, spec):
            continue
        shown = temporal.select_instances(mine, ask)
        if not shown:
            continue  # nothing of it inside the time interval: not part of the answer
        chosen.append((entity_id, shown))
    total = len(chosen)
    window = chosen[offset:offset + limit]
    if ask.form == "aggregated":
        return [temporal.aggregated(conn, tenant, e, types[e], ask) for e, _ in window], total, None
    edges = [edge for _, shown in window if (edge := temporal.boundary(shown, ask)) is not None]
    page = None
    out = []
    if edges:
        edge = max(edges) if ask.last_n else min(edges)
        kept_all: list[history.Row] = []
        for entity_id, shown in window:
            kept = temporal.cut(shown, edge, ask)
            kept_all.extend(kept)
            emptied = {r[1] for r in shown} - {r[1] for r in kept}
            out.append(temporal.represent(entity_id, types[entity_id], kept, ask, emptied=emptied))
        page = temporal.page_of(edge, kept_all, ask)
    else:
        out = [temporal.represent(e, types[e], shown, ask) for e, shown in window]
    return out, total, page


def _map_reference(request: Request) -> str | None:
    reference = request.headers.get(MAP_HEADER.lower())
    return reference.rstrip("/").rsplit("/", 1)[-1] if reference else None


async def _answer(request: Request, ctx: Any, context: Any, spec: Query, ask: temporal.Ask,
                  descending: bool) -> Response:
    limit, offset, count = paging(request)
    tenant = tenant_of(request)
    reference = _map_reference(request)
    live = await ctx.db.read(entitymaps.get, tenant, reference, ctx.clock.now()) if reference else None
    only = set(live.entity_map) if live is not None else None
    body, total, page = await ctx.db.read(partial(_query, tenant=tenant, spec=spec, ask=ask, limit=limit,
                                                  offset=offset, descending=descending, only=only))
    status, headers = _partial(page)
    if count:
        headers["NGSILD-Results-Count"] = str(total)
    if live is not None:
        headers[MAP_HEADER] = map_location(live.map_id)
    elif reference is not None or request.query_params.get("entityMap") == "true":
        made = await ctx.db.write(entitymaps.use, tenant, None, [e["id"] for e in body if "id" in e], ctx.clock.now())
        headers[MAP_HEADER] = map_location(made.map_id)
        status = 201 if status == 200 else status
    return respond(request, body, context, status=status, headers=headers)


@router.get("/entities", summary="Query temporal evolution of entities", openapi_extra=operation(
    "type", "id", "idPattern", "q", "csf", "scopeQ", "georel", "geometry", "coordinates", "geoproperty",
    "expandValues", "orderBy", *TEMPORAL, *TEMPORAL_VIEW, "entityMap", *PAGING, *HEADERS, "entityMapHeader",
    answers=JSON_LD))
@router.get("/entities/", include_in_schema=False)
async def temporal_query(request: Request, ctx: Ctx) -> Response:
    context, terms = await outgoing_terms(request, ctx)
    params = request.query_params
    descending = temporal.check_order(params.get("orderBy"))
    ask = _ask(request, terms)
    if too_wide(request, terms):
        raise bad_request_data("a temporal query needs type, attrs, q, scopeQ or a geo-query (or local=true)",
                               "时序查询需要 type、attrs、q、scopeQ 或地理条件（或 local=true）")
    without_order = request.query_params.get("orderBy")
    spec = query_of(_without(request, "orderBy"), terms) if without_order else query_of(request, terms)
    spec.attrs = None  # attrs chooses the instances shown, not the entities (an entity without them shows none)
    return await _answer(request, ctx, context, spec, ask, descending)


def _without(request: Request, name: str) -> Request:
    """The request with one query parameter left out (orderBy, checked here, is not the entities')."""
    scope = dict(request.scope)
    scope["query_string"] = "&".join(p for p in request.scope["query_string"].decode().split("&")
                                     if p.split("=", 1)[0] != name).encode()
    return Request(scope, request.receive)


@router.post("/entityOperations/query", summary="Query temporal evolution of entities with a Query body",
             openapi_extra=operation(*PAGING, "temporalOptions", "temporalFormat", *HEADERS, body="NgsiLdQuery",
                                     answers=JSON_LD))
@router.post("/entityOperations/query/", include_in_schema=False)
async def temporal_query_body(request: Request, ctx: Ctx) -> Response:
    body, media = await read_json(request)
    if not isinstance(body, dict) or body.get("type") != "Query":
        raise bad_request_data("the body must be a Query object", "请求体必须是 Query 对象")
    context = body.get("@context") if media == "application/ld+json" else parse_link_header(request.headers.get("link"))
    terms = await resolve(ctx, context)
    temporal_q = body.get("temporalQ") or {}
    aggr = body.get("aggrParams") or {}
    if not isinstance(temporal_q, dict) or not isinstance(aggr, dict):
        raise bad_request_data("temporalQ and aggrParams must be objects", "temporalQ 与 aggrParams 必须是对象")
    values: dict[str, Any] = {k: body[k] for k in ("attrs", "datasetId", "pick", "omit") if k in body}
    values.update(temporal_q)
    values.update(aggr)
    for key in ("options", "format"):
        if key in request.query_params:
            values[key] = request.query_params[key]
    ask = temporal.parse_ask(values, terms, page=_page(request))
    if "entities" not in body and not any(k in body for k in ("attrs", "q", "geoQ", "scopeQ")):
        raise bad_request_data("a temporal query needs entities, attrs, q, geoQ or scopeQ",
                               "时序查询需要 entities、attrs、q、geoQ 或 scopeQ")
    spec = query_spec(body, terms)
    spec.attrs = None
    return await _answer(request, ctx, context, spec, ask, False)


# -- creation and deletion ------------------------------------------------------------------------------

def _temporal_rows(body: dict[str, Any], terms: TermMap, env: Any) -> tuple[Entity, list[tuple[str, str, dict[str, Any]]]]:
    """The entity a temporal representation names, and its instances as history rows (the NGSI-LD Null
    as an instance's value marks the attribute deleted at that time)."""
    plain = {k: v for k, v in body.items() if k in ENTITY_MEMBERS and k not in ("scope", "@context")}
    plain.update({k: v for k, v in body.items() if k not in ENTITY_MEMBERS and not isinstance(v, list)})
    entity = normalize_entity(plain, terms, env.now)
    rows: list[tuple[str, str, dict[str, Any]]] = history.type_rows(env, entity.id, entity.types)
    for name, value in body.items():
        if name == "scope":
            # instances of the temporal scope, or (a string or a list of strings) the scope itself
            given = value if isinstance(value, list) and all(isinstance(v, dict) for v in value) and value \
                else [{"type": "Property", "value": value}]
            for inst in given:
                scope = normalize_attribute(inst, terms, env.now, name="scope", nulls="delete")
                if scope.get("value") != "urn:ngsi-ld:null":
                    check_scope(scope.get("value"))
                rows.append((entity.id, entity.type, {SCOPE: scope}))
            continue
        if name in ENTITY_MEMBERS or not isinstance(value, list):
            continue
        check_attribute_name(name)
        iri = terms.expand(name)
        for inst in value:
            rows.append((entity.id, entity.type, {iri: normalize_attribute(inst, terms, env.now, name=name,
                                                                          nulls="delete")}))
    rows.extend((entity.id, entity.type, {iri: attr}) for iri, attr in entity.attrs.items())
    return entity, rows


@router.post("/entities", summary="Create or add to the temporal representation of an entity",
             openapi_extra=operation(*HEADERS, body="NgsiLdTemporalEntity"))
@router.post("/entities/", include_in_schema=False)
async def temporal_create(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx, want_object=True)
    entity, rows = _temporal_rows(data.body, data.terms, env)
    require_writable(env, entity.id)

    def write(conn: Any) -> bool:
        entity_rows.lock_ids(conn, env.tenant, [entity.id])  # as any write of the entity: one at a time
        existed = history.entity_type_of(conn, env.tenant, entity.id) is not None
        if existed:
            history.drop_same_instants(conn, env, entity.id, rows)
        history.record_many(conn, env, rows)
        if entity_rows.get(conn, env.tenant, entity.id) is None:
            # An entity the broker does not hold yet is held from now on, as its newest instances say, so
            # that the Core API reads and changes it and its temporal evolution goes on from there.
            current = temporal.current_state(entity, rows, history.epoch(env.now))
            conn.execute(entities.insert().values(tenant=env.tenant, entity_id=entity.id, created_at=env.now,
                                                  modified_at=env.now, **entity_rows.row_values(current, current.attrs)))
        return existed

    if await ctx.db.write(write):
        return no_content()
    return Response(status_code=201, headers={"Location": BASE + quote(entity.id, safe=URI_SAFE)})


@router.delete("/entities/{entity_id}", status_code=204, summary="Delete the temporal representation of an entity",
               openapi_extra=operation("tenant"))
async def temporal_delete(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    require_writable(env_of(request, ctx), entity_id)
    removed = await ctx.db.write(history.delete_entity, tenant_of(request), entity_id)
    if not removed:
        raise not_found(entity_id)
    return no_content()


# -- attributes -----------------------------------------------------------------------------------------

@router.post("/entities/{entity_id}/attrs", status_code=204, summary="Add attributes to a temporal representation",
             openapi_extra=operation(*HEADERS, body="NgsiLdTemporalEntity"))
@router.post("/entities/{entity_id}/attrs/", include_in_schema=False)
async def temporal_append(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    env = env_of(request, ctx)
    require_writable(env, entity_id)
    data = await incoming(request, ctx, want_object=True)
    body = {k: v for k, v in data.body.items() if k != "@context"}
    if not body:
        raise invalid_request("the body names no attribute", "请求体中没有属性")

    def write(conn: Any) -> None:
        types = history.types_of(conn, env.tenant, [entity_id]).get(entity_id)
        if types is None:
            raise not_found(entity_id)
        _, rows = _temporal_rows({**body, "id": entity_id, "type": types}, data.terms, env)
        rows = [r for r in rows if history.TYPES not in r[2]]
        history.drop_same_instants(conn, env, entity_id, rows)
        history.record_many(conn, env, rows)

    await ctx.db.write(write)
    return no_content()


def _attribute(name: str, terms: TermMap) -> str:
    if name in (".", "..") or "/" in name:
        raise bad_request_data(f"{name!r} is not an attribute name", f"{name!r} 不是属性名")
    check_name(name)
    return SCOPE if name == "scope" else terms.expand(name)


@router.delete("/entities/{entity_id}/attrs/{attr}", status_code=204,
               summary="Delete an attribute from a temporal representation",
               openapi_extra=operation("deleteDatasetId", "deleteAll", *HEADERS))
async def temporal_delete_attr(entity_id: str, attr: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    _, terms = await outgoing_terms(request, ctx)
    iri = _attribute(attr, terms)
    env = env_of(request, ctx)
    require_writable(env, entity_id)
    params = request.query_params
    every = params.get("deleteAll", "false")
    if every not in ("true", "false"):
        raise bad_request_data("deleteAll must be true or false", "deleteAll 必须是 true 或 false")
    dataset = params.get("datasetId")

    def write(conn: Any) -> None:
        if history.entity_type_of(conn, env.tenant, entity_id) is None:
            raise not_found(entity_id)
        if not history.delete_attribute(conn, env.tenant, entity_id, iri, dataset=dataset, every=every == "true"):
            raise _attr_not_found(entity_id, attr)

    await ctx.db.write(write)
    return no_content()


def _instance_target(entity_id: str, attr: str, instance: str, terms: TermMap) -> tuple[str, int | None]:
    check_entity_id(entity_id)
    iri = _attribute(attr, terms)
    if not is_uri(instance):
        raise bad_request_data(f"instanceId must be a URI, got {instance!r}", f"instanceId 必须是 URI：{instance!r}")
    return iri, history.instance_pk(instance)


async def _instance_write(request: Request, ctx: Any, entity_id: str, attr: str, instance: str, change: Any) -> None:
    _, terms = await outgoing_terms(request, ctx)
    iri, pk = _instance_target(entity_id, attr, instance, terms)
    env = env_of(request, ctx)
    require_writable(env, entity_id)

    def write(conn: Any) -> None:
        if history.entity_type_of(conn, env.tenant, entity_id) is None:
            raise not_found(entity_id)
        if iri not in history.attribute_names(conn, env.tenant, entity_id):
            raise _attr_not_found(entity_id, attr)
        found = history.instance_row(conn, env.tenant, entity_id, iri, pk) if pk is not None else None
        if found is None:
            raise resource_not_found(f"instance {instance} of {attr} not found", f"{attr} 没有实例 {instance}")
        change(conn, env, pk, found)

    await ctx.db.write(write)


@router.patch("/entities/{entity_id}/attrs/{attr}/{instance}", status_code=204,
              summary="Modify an attribute instance of a temporal representation",
              openapi_extra=operation(*HEADERS, body="NgsiLdAttribute"))
async def temporal_patch_instance(entity_id: str, attr: str, instance: str, request: Request, ctx: Ctx) -> Response:
    data = await incoming(request, ctx, want_object=True)
    env = env_of(request, ctx)
    fragment = {k: v for k, v in data.body.items() if k not in ("@context", "instanceId")}
    new = normalize_attribute(fragment, data.terms, env.now, partial=True, name=attr)

    def change(conn: Any, env: Any, pk: int, found: dict[str, Any]) -> None:
        merged = {**found, **{k: v for k, v in new.items() if k != "createdAt"}}
        history.replace_instance(conn, pk, merged, history.epoch(env.now))

    await _instance_write(request, ctx, entity_id, attr, instance, change)
    return no_content()


@router.delete("/entities/{entity_id}/attrs/{attr}/{instance}", status_code=204,
               summary="Delete an attribute instance of a temporal representation", openapi_extra=operation(*HEADERS))
async def temporal_delete_instance(entity_id: str, attr: str, instance: str, request: Request, ctx: Ctx) -> Response:
    await _instance_write(request, ctx, entity_id, attr, instance, lambda conn, env, pk, found: history.delete_instance(conn, pk))
    return no_content()


@router.api_route("/entities//attrs", methods=["POST"], include_in_schema=False)
@router.api_route("/entities//attrs/", methods=["POST"], include_in_schema=False)
@router.api_route("/entities//attrs/{attr}", methods=["DELETE"], include_in_schema=False)
@router.api_route("/entities//attrs/{attr}/{instance}", methods=["PATCH", "DELETE"], include_in_schema=False)
@router.api_route("/entities/{entity_id}/attrs//{instance}", methods=["DELETE"], include_in_schema=False)
async def temporal_without_target(request: Request) -> Response:
    """A change that names no entity or no attribute (5.6.12.4 to 5.6.15.4)."""
    raise bad_request_data("the entity id or attribute name is missing from the path", "路径中缺少实体 id 或属性名")

