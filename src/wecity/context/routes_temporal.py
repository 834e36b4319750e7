"""NGSI-LD temporal API: attribute history by time, as instances, simplified values or aggregates."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import history
from wecity.context.entity import (
    EXPIRES_AT,
    check_entity_id,
    check_name,
    normalize_attribute,
    normalize_entity,
    now_text,
)
from wecity.context.errors import bad_request_data
from wecity.context.ldcontext import TermMap
from wecity.context.openapi import HEADERS, PAGING, TEMPORAL, TEMPORAL_VIEW, operation
from wecity.context.owned import require_writable
from wecity.context.protocol import (
    JSON_LD,
    env_of,
    incoming,
    no_content,
    outgoing_terms,
    paging,
    respond,
    split_list,
    tenant_of,
)
from wecity.context.routes_entities import URI_SAFE
from wecity.context.rows import not_found
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1/temporal/entities", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/temporal/entities/"


class _Ask:
    """What a temporal request asks for, parsed from its query string."""

    def __init__(self, request: Request, terms: TermMap) -> None:
        params = request.query_params
        self.when = history.TimeFilter.parse(params.get("timerel"), params.get("timeAt"), params.get("endTimeAt"))
        attrs = split_list(params.get("attrs"))
        for name in attrs or ():
            check_name(name)
        self.attrs = [terms.expand(a) for a in attrs] if attrs else None
        options = set(filter(None, params.get("options", "").split(",")))
        fmt = params.get("format")
        self.methods = split_list(params.get("aggrMethods"))
        self.aggregated = "aggregatedValues" in options or fmt == "aggregatedValues" or bool(self.methods)
        self.simplified = "temporalValues" in options or fmt == "temporalValues"
        self.sys_attrs = "sysAttrs" in options
        self.period: float | None = None
        if self.aggregated:
            if not self.methods:
                raise bad_request_data("aggregatedValues needs aggrMethods", "聚合查询需要 aggrMethods")
            unknown = set(self.methods) - set(history.AGGREGATES)
            if unknown:
                raise bad_request_data(f"unsupported aggrMethods {', '.join(sorted(unknown))}",
                                       f"不支持的 aggrMethods：{'、'.join(sorted(unknown))}")
            duration = params.get("aggrPeriodDuration")
            if duration:
                seconds = history.parse_duration(duration)
                if seconds and not history.MIN_PERIOD <= seconds <= history.MAX_PERIOD:
                    raise bad_request_data(f"aggrPeriodDuration {duration!r} must be PT0S or from PT0.001S to P1000Y",
                                           f"aggrPeriodDuration {duration!r} 必须为 PT0S 或在 PT0.001S 到 P1000Y 之间")
                self.period = seconds or None  # PT0S: the whole time range is one period
        try:
            self.last_n = int(params["lastN"]) if "lastN" in params else None
        except ValueError as exc:
            raise bad_request_data("lastN must be a positive integer", "lastN 必须是正整数") from exc
        if self.last_n is not None and self.last_n < 1:  # 0 read as all instances, -1 as all but the first
            raise bad_request_data("lastN must be a positive integer", "lastN 必须是正整数")
        self.terms = terms


def _instance(pk: int, inst: dict[str, Any], ask: _Ask) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in inst.items():
        if key in ("createdAt", "modifiedAt", "expiresAt") and not ask.sys_attrs:
            continue
        out[ask.terms.compact(key) if ":" in key else key] = value
    out["instanceId"] = f"urn:ngsi-ld:attribute:instance:{pk}"
    return out


def _temporal_entity(conn: Any, tenant: str, entity_id: str, entity_type: str, ask: _Ask) -> dict[str, Any]:
    out: dict[str, Any] = {"id": entity_id, "type": ask.terms.compact(entity_type)}
    if ask.aggregated:
        assert ask.methods is not None
        for iri, methods in history.aggregate(conn, tenant, entity_id, ask.attrs, ask.when, ask.methods,
                                              ask.period).items():
            out[ask.terms.compact(iri)] = {"type": "Property", **methods}
        return out
    for iri, items in history.instances(conn, tenant, entity_id, ask.attrs, ask.when, last_n=ask.last_n).items():
        if iri == EXPIRES_AT and not ask.sys_attrs:
            continue  # the entity's own expiry is a system attribute (6.3.11)
        name = ask.terms.compact(iri)
        if ask.simplified:
            kind = items[0][2].get("type", "Property") if items else "Property"
            out[name] = {"type": kind, "values": [[history.value_of(inst), now_text(history.from_epoch(ts))]
                                                  for _, ts, inst in items]}
        else:
            out[name] = [_instance(pk, inst, ask) for pk, _, inst in items]
    return out


@router.get("/{entity_id}", summary="Temporal representation of an entity",
            openapi_extra=operation(*TEMPORAL, *TEMPORAL_VIEW, *HEADERS, answers=JSON_LD))
async def temporal_entity(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    context, terms = await outgoing_terms(request, ctx)
    ask = _Ask(request, terms)
    tenant = tenant_of(request)

    def read(conn: Any) -> dict[str, Any] | None:
        entity_type = history.entity_type_of(conn, tenant, entity_id)
        if entity_type is None:
            return None
        return _temporal_entity(conn, tenant, entity_id, entity_type, ask)

    body = await ctx.db.read(read)
    if body is None:
        raise not_found(entity_id)
    return respond(request, body, context)


@router.get("", summary="Query temporal evolution of entities",
            openapi_extra=operation("type", "id", "idPattern", "q", "csf", "scopeQ", "georel", "geometry", "coordinates",
                                    "geoproperty", "expandValues", "orderBy", *TEMPORAL, *TEMPORAL_VIEW, *PAGING, *HEADERS,
                                    answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def temporal_query(request: Request, ctx: Ctx) -> Response:
    context, terms = await outgoing_terms(request, ctx)
    ask = _Ask(request, terms)
    params = request.query_params
    types = split_list(params.get("type"))
    ids = split_list(params.get("id"))
    for name in types or ():
        check_name(name)
    for i in ids or ():
        check_entity_id(i)
    if not types and not ids and not ask.attrs:
        raise bad_request_data("a temporal query needs type, id or attrs", "时序查询需要 type、id 或 attrs")
    limit, offset, count = paging(request)
    tenant = tenant_of(request)

    def read(conn: Any) -> list[dict[str, Any]]:
        found = history.entities_with_history(conn, tenant, types=[terms.expand(t) for t in types] if types else None,
                                              ids=ids, limit=limit, offset=offset)
        return [_temporal_entity(conn, tenant, eid, etype, ask) for eid, etype in found]

    rows = await ctx.db.read(read)
    headers = {"NGSILD-Results-Count": str(len(rows))} if count else None
    return respond(request, rows, context, headers=headers)


@router.post("", summary="Add to the temporal representation of an entity",
             openapi_extra=operation(*HEADERS, body="NgsiLdTemporalEntity"))
@router.post("/", include_in_schema=False)
async def temporal_create(request: Request, ctx: Ctx) -> Response:
    env = env_of(request, ctx)
    data = await incoming(request, ctx)
    body = data.body
    if not isinstance(body, dict):
        raise bad_request_data("the body must be a temporal entity", "请求体必须是时序实体")
    plain = {k: v for k, v in body.items() if not isinstance(v, list)}
    entity = normalize_entity(plain, data.terms, env.now)
    require_writable(env, entity.id)
    rows: list[tuple[str, str, dict[str, dict[str, Any]]]] = []
    for name, value in body.items():
        if not isinstance(value, list):
            continue
        for inst in value:
            attr = normalize_attribute(inst, data.terms, env.now, name=name)
            rows.append((entity.id, entity.type, {data.terms.expand(name): attr}))

    def write(conn: Any) -> bool:
        existed = history.entity_type_of(conn, env.tenant, entity.id) is not None
        if entity.attrs:
            rows.append((entity.id, entity.type, entity.attrs))
        history.record_many(conn, env, rows)
        return existed

    existed = await ctx.db.write(write)
    if existed:
        return no_content()
    return Response(status_code=201, headers={"Location": BASE + quote(entity.id, safe=URI_SAFE)})


@router.delete("/{entity_id}", status_code=204, summary="Delete the temporal representation of an entity",
               openapi_extra=operation("tenant"))
async def temporal_delete(entity_id: str, request: Request, ctx: Ctx) -> Response:
    check_entity_id(entity_id)
    require_writable(env_of(request, ctx), entity_id)
    tenant = tenant_of(request)
    removed = await ctx.db.write(history.delete_entity, tenant, entity_id)
    if not removed:
        raise not_found(entity_id)
    return no_content()
