"""NGSI-LD discovery over HTTP: GET /types, /types/{type}, /attributes and /attributes/{attr}
(clauses 5.7.5-5.7.10), each in the data types the spec gives (EntityTypeList, EntityType,
EntityTypeInfo, AttributeList, Attribute)."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.context import discovery
from wecity.context.entity import ENTITY_MEMBERS
from wecity.context.errors import bad_request_data, invalid_request, resource_not_found
from wecity.context.ldcontext import TermMap
from wecity.context.openapi import HEADERS, operation
from wecity.context.protocol import JSON_LD, outgoing_terms, respond, tenant_of
from wecity.core.http import Ctx

router = APIRouter(prefix="/ngsi-ld/v1", tags=["ngsi-ld"])

# 6.3.20: the query parameters each resource defines; any other is an InvalidRequest.
_LIST_PARAMS = frozenset({"details", "local", "count"})
_ONE_PARAMS = frozenset({"local"})
_NOT_ATTRIBUTES = ENTITY_MEMBERS | {"expiresAt"}


def _check_params(request: Request, allowed: frozenset[str]) -> bool:
    """The parameters checked; whether `details=true` was asked."""
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise invalid_request(f"unknown query parameter(s): {', '.join(unknown)}",
                              f"未定义的查询参数：{', '.join(unknown)}")
    details = request.query_params.get("details", "false")
    if details not in ("true", "false"):
        raise bad_request_data("details must be true or false", "details 必须是 true 或 false")
    return details == "true"


def _list_id(kind: str, names: list[str]) -> str:
    return f"urn:ngsi-ld:{kind}:" + hashlib.sha1("\n".join(names).encode()).hexdigest()[:16]


@router.get("/types", summary="Entity types present", openapi_extra=operation(
    "details", *HEADERS, answers=JSON_LD))
@router.get("/types/", include_in_schema=False)
async def entity_types(request: Request, ctx: Ctx) -> Response:
    details = _check_params(request, _LIST_PARAMS)
    context, terms = await outgoing_terms(request, ctx)
    tenant, now = tenant_of(request), ctx.clock.now()
    body: Any
    if details:
        facts = await ctx.db.read(discovery.types_in_detail, tenant, now)
        body = [{"id": name, "type": "EntityType", "typeName": terms.compact(name),
                 "attributeNames": [terms.compact(a) for a in sorted(f.attrs)]} for name, f in sorted(facts.items())]
    else:
        names = await ctx.db.read(discovery.type_names, tenant, now)
        body = {"id": _list_id("EntityTypeList", names), "type": "EntityTypeList",
                "typeList": [terms.compact(n) for n in names]}
    return respond(request, body, context)


@router.get("/types/{type_name:path}", summary="One entity type in detail", openapi_extra=operation(
    *HEADERS, answers=JSON_LD))
async def entity_type(type_name: str, request: Request, ctx: Ctx) -> Response:
    _check_params(request, _ONE_PARAMS)
    context, terms = await outgoing_terms(request, ctx)
    iri = terms.expand(type_name)
    facts = (await ctx.db.read(discovery.types_in_detail, tenant_of(request), ctx.clock.now(), iri)).get(iri)
    if facts is None:
        raise resource_not_found(f"no entity has type {type_name}", f"没有类型为 {type_name} 的实体")
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": terms.compact(iri), "entityCount": facts.count,
            "attributeDetails": [_attribute(a, f, terms, types=False) for a, f in sorted(facts.attrs.items())]}
    return respond(request, body, context)


def _attribute(iri: str, facts: discovery.AttributeFacts, terms: TermMap, *, types: bool = True,
               count: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": iri, "type": "Attribute", "attributeName": terms.compact(iri)}
    if count:
        out["attributeCount"] = facts.count
    if not types or count:
        out["attributeTypes"] = sorted(facts.kinds)
    if types:
        out["typeNames"] = [terms.compact(x) for x in sorted(facts.types)]
    return out


@router.get("/attributes", summary="Attributes present", openapi_extra=operation(
    "details", *HEADERS, answers=JSON_LD))
@router.get("/attributes/", include_in_schema=False)
async def attributes(request: Request, ctx: Ctx) -> Response:
    details = _check_params(request, _LIST_PARAMS)
    context, terms = await outgoing_terms(request, ctx)
    facts = await ctx.db.read(discovery.attributes_in_detail, tenant_of(request), ctx.clock.now())
    body: Any
    if details:
        body = [_attribute(iri, f, terms) for iri, f in sorted(facts.items())]
    else:
        names = sorted(facts)
        body = {"id": _list_id("AttributeList", names), "type": "AttributeList",
                "attributeList": [terms.compact(n) for n in names]}
    return respond(request, body, context)


@router.get("/attributes/{attr:path}", summary="One attribute in detail", openapi_extra=operation(
    *HEADERS, answers=JSON_LD))
async def attribute(attr: str, request: Request, ctx: Ctx) -> Response:
    _check_params(request, _ONE_PARAMS)
    context, terms = await outgoing_terms(request, ctx)
    iri = terms.expand(attr)
    found = None
    if attr not in _NOT_ATTRIBUTES:
        found = (await ctx.db.read(discovery.attributes_in_detail, tenant_of(request), ctx.clock.now())).get(iri)
    if found is None:
        raise resource_not_found(f"no entity has attribute {attr}", f"没有实体带有属性 {attr}")
    return respond(request, _attribute(iri, found, terms, count=True), context)
