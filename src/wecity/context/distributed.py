"""Distributed operations (GS CIM 009 clauses 4.3.6, 5.6.x.4, 5.7.x.4, 6.3.17, 6.3.18): the broker's
routes call in here first; with no matching registration (or `local=true`) they go on as a single
broker. Otherwise reads ask the matching context sources concurrently and merge what they answer with
the broker's own entities, and writes go to the sources whose registrations say so, the rest of the
request being done locally (exclusive and redirect registrations keep their attributes off the local
store). Several places answering differently make a 207 with an error per failed place."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from wecity.context.entity import is_uri, normalize_entity
from wecity.context.env import Stored
from wecity.context.errors import bad_request_data, conflict, loop_detected
from wecity.context.federation import (
    Match,
    Outcome,
    Registration,
    has_attributes,
    merge_attrs,
    partial_result,
    split_attributes,
)
from wecity.context.forwarding import Answer, Forwarder, Outgoing, RegistrationCache, warning_header
from wecity.context.ldcontext import TermMap
from wecity.context.protocol import parse_link_header, problem, read_json, resolve, tenant_of
from wecity.core.context import AppContext
from wecity.core.errors import WeCityError

LOCAL_ONLY = "wecity.ngsild.local"  # request scope flag: the local part of a distributed request
# Query parameters a forwarded query carries as they came (the rest are the broker's own business).
_QUERY_PARAMS = ("type", "id", "idPattern", "attrs", "q", "scopeQ", "georel", "geometry", "coordinates",
                 "geoproperty", "lang", "datasetId", "expandValues")


def cache_of(ctx: AppContext) -> RegistrationCache | None:
    return ctx.services.get("ngsild_registrations")  # type: ignore[no-any-return]


def forwarder_of(ctx: AppContext) -> Forwarder:
    return ctx.services["ngsild_forwarder"]  # type: ignore[no-any-return]


async def registrations_of(request: Request, ctx: AppContext) -> tuple[Registration, ...]:
    """The tenant's registrations, none for a request limited to this broker (`local=true`, the local
    part of a distributed one, or a read from a snapshot, which holds its sources' entities already). An
    in-memory look-up."""
    if request.scope.get(LOCAL_ONLY) or request.query_params.get("local") == "true" \
            or "ngsild-snapshot" in request.headers:
        return ()
    cache = cache_of(ctx)
    if cache is None:
        return ()
    return await cache.for_tenant(tenant_of(request))


def unlooped(request: Request, ctx: AppContext, matches: list[Match]) -> list[Match]:
    """The matches to forward to. A request that already passed through this broker is not forwarded
    again; if its data is held only elsewhere, that is a loop (508, clause 6.3.17)."""
    if not matches or not forwarder_of(ctx).has_looped(request.headers):
        return matches
    if any(m.registration.holds_data_elsewhere for m in matches):
        raise loop_detected("the request has already passed through this broker", "请求已经过本代理，形成了环路")
    return []


def _compact_all(names: Iterable[str], terms: TermMap) -> str:
    return ",".join(sorted(terms.compact(n) for n in names))


def _types_of(reg: Registration) -> list[str]:
    return sorted({t for info in reg.information for e in info.entities for t in e.types})


# -- reads --------------------------------------------------------------------------------------------

def to_stored(raw: Any, terms: TermMap, now: Any) -> Stored | None:
    """An entity a source answered with, in stored form (None when it is not a valid entity). Its system
    attributes are kept as the source gave them, so that the most recent version wins a merge."""
    if not isinstance(raw, dict):
        return None
    body = {k: v for k, v in raw.items() if k != "@context"}
    try:
        entity = normalize_entity(body, terms, now)
    except WeCityError:
        return None
    for name, attr in entity.attrs.items():
        given = body.get(terms.compact(name))
        for inst, src in zip(attr if isinstance(attr, list) else [attr],
                             given if isinstance(given, list) else [given], strict=False):
            for member in ("createdAt", "modifiedAt"):
                if isinstance(src, dict) and isinstance(src.get(member), str):
                    inst[member] = src[member]
                else:
                    inst.pop(member, None)
    return Stored(0, entity.id, entity.types, entity.attrs, now, now, entity.scope)


@dataclass
class Remote:
    """What the context sources answered to a read, merged into the local entities."""

    answers: list[Answer]

    @property
    def headers(self) -> dict[str, str]:
        return warning_header(self.answers)


def _query_params(request: Request, match: Match, terms: TermMap, split: bool) -> list[tuple[str, str]]:
    reg = match.registration
    params = [(k, v) for k, v in request.query_params.multi_items() if k in _QUERY_PARAMS]
    if split:  # 5.7.2.4: the filters are applied to the merged entities instead
        params = [(k, v) for k, v in params if k not in ("q", "scopeQ")]
    ids = reg.entity_ids()
    if ids and all(e.id for info in reg.information for e in info.entities):
        asked = [i for k, v in params if k == "id" for i in v.split(",")]
        narrowed = [i for i in ids if not asked or i in asked]
        params = [(k, v) for k, v in params if k not in ("id", "idPattern")] + [("id", ",".join(narrowed))]
    if match.attrs is not None:
        params = [(k, v) for k, v in params if k != "attrs"] + [("attrs", _compact_all(match.attrs, terms))]
    if not any(k == "type" for k, _ in params) and _types_of(reg):
        params.append(("type", _compact_all(_types_of(reg), terms)))
    return params


def _query_body(params: list[tuple[str, str]]) -> dict[str, Any]:
    """A Query (POST /entityOperations/query) asking what `params` ask."""
    p = dict(params)
    selector: dict[str, Any] = {"type": p.get("type", "*")}
    if "id" in p:
        ids = p["id"].split(",")
        selector["id"] = ids[0] if len(ids) == 1 else ids
    elif "idPattern" in p:
        selector["idPattern"] = p["idPattern"]
    body: dict[str, Any] = {"type": "Query", "entities": [selector]}
    if "attrs" in p:
        body["attrs"] = p["attrs"].split(",")
    for key in ("q", "scopeQ"):
        if key in p:
            body[key] = p[key]
    return body


def _query_outgoing(match: Match, params: list[tuple[str, str]], prefer_post: bool) -> Outgoing | None:
    reg = match.registration
    get_ok, post_ok = reg.supports("queryEntity"), reg.supports("queryBatch")
    if post_ok and (prefer_post or not get_ok):
        return Outgoing(reg, "POST", "/entityOperations/query", (("options", "sysAttrs"),), _query_body(params), True)
    if get_ok:
        return Outgoing(reg, "GET", "/entities", (*params, ("options", "sysAttrs")), None, True)
    return None


def query_matches(regs: Iterable[Registration], types: list[str] | None, ids: list[str] | None,
                  attrs: list[str] | None, csf: Callable[[dict[str, Any]], bool] | None) -> list[Match]:
    out = []
    for reg in regs:
        if not (reg.supports("queryEntity") or reg.supports("queryBatch")):
            continue
        if csf is not None and not csf(reg.properties):
            continue
        found = None
        for entity_id in ids or [None]:  # type: ignore[list-item]
            found = reg.match(entity_id, types, attrs)
            if found is not None:
                break
        if found is not None:
            out.append(found)
    return out


async def query(request: Request, ctx: AppContext, matches: list[Match], terms: TermMap, context: Any, *,
                params: list[tuple[str, str]] | None = None, prefer_post: bool = False) -> tuple[list[Stored], Remote]:
    """The entities the matching sources hold for a query (GET /entities, or the Query of a POST when
    `params` are given), each source asked once, all at once."""
    matches = unlooped(request, ctx, matches)
    split = request.query_params.get("splitEntities") == "true"
    outs = []
    for m in matches:
        p = params if params is not None else _query_params(request, m, terms, split)
        if params is not None:
            p = _narrowed(p, m, terms)
        out = _query_outgoing(m, p, prefer_post)
        if out is not None:
            outs.append(out)
    return await _collect(request, ctx, outs, terms, context, list_expected=True)


def _narrowed(params: list[tuple[str, str]], match: Match, terms: TermMap) -> list[tuple[str, str]]:
    reg = match.registration
    ids = reg.entity_ids()
    if ids and all(e.id for info in reg.information for e in info.entities):
        asked = [i for k, v in params if k == "id" for i in v.split(",")]
        params = [(k, v) for k, v in params if k not in ("id", "idPattern")] + \
            [("id", ",".join(i for i in ids if not asked or i in asked))]
    if match.attrs is not None:
        params = [(k, v) for k, v in params if k != "attrs"] + [("attrs", _compact_all(match.attrs, terms))]
    return params


async def retrieve(request: Request, ctx: AppContext, regs: tuple[Registration, ...], entity_id: str,
                   types: list[str] | None, attrs: frozenset[str] | None, terms: TermMap,
                   context: Any) -> tuple[list[Stored], Remote]:
    """What the sources registered for one entity hold of it (clause 5.7.1.4): retrieveEntity where the
    registration offers it, else a query for the one id."""
    matches = []
    for reg in regs:
        if not (reg.supports("retrieveEntity") or reg.supports("queryEntity") or reg.supports("queryBatch")):
            continue
        found = reg.match(entity_id, types, attrs)
        if found is not None:
            matches.append(found)
    matches = unlooped(request, ctx, matches)
    outs = []
    for m in matches:
        reg = m.registration
        names = m.attrs if m.attrs is not None else attrs
        type_text = request.query_params.get("type") or (_compact_all(_types_of(reg), terms) if _types_of(reg) else None)
        if reg.supports("retrieveEntity"):
            params: list[tuple[str, str]] = [("options", "sysAttrs")]
            if names:
                params.append(("attrs", _compact_all(names, terms)))
            if request.query_params.get("type"):
                params.append(("type", request.query_params["type"]))
            outs.append(Outgoing(reg, "GET", "/entities/" + quote(entity_id, safe=":"), tuple(params), None, True))
            continue
        qp = [("id", entity_id)] + ([("type", type_text)] if type_text else [])
        if names:
            qp.append(("attrs", _compact_all(names, terms)))
        out = _query_outgoing(Match(reg, m.attrs), qp, prefer_post=False)
        if out is not None:
            outs.append(out)
    held, remote = await _collect(request, ctx, outs, terms, context, list_expected=False)
    return [s for s in held if s.id == entity_id], remote


async def _collect(request: Request, ctx: AppContext, outs: list[Outgoing], terms: TermMap, context: Any, *,
                   list_expected: bool) -> tuple[list[Stored], Remote]:
    answers = await forwarder_of(ctx).send_all(outs, request.headers, context)
    now = ctx.clock.now()
    found: list[Stored] = []
    checked: list[Answer] = []
    for answer in answers:
        if not answer.ok or answer.body is None:
            checked.append(answer)
            continue
        items = answer.body if isinstance(answer.body, list) else [answer.body]
        stored = [to_stored(i, terms, now) for i in items]
        if any(s is None for s in stored):
            checked.append(Answer(answer.registration, answer.status, None, 111))
            continue
        checked.append(answer)
        found.extend(s for s in stored if s is not None)
    return found, Remote(checked)


def merge(local: list[Stored], remote: list[Stored], auxiliary: Iterable[str] = ()) -> list[Stored]:
    """Local entities first, each merged with what the sources hold of it, then the entities only the
    sources hold; one entity per id."""
    by_id: dict[str, Stored] = {}
    for s in local:
        by_id[s.id] = replace(s, types=list(s.types), attrs=dict(s.attrs))  # a copy: the merge changes it
    for s in remote:
        kept = by_id.get(s.id)
        if kept is None:
            by_id[s.id] = replace(s, types=list(s.types), attrs=dict(s.attrs))
            continue
        kept.types.extend(t for t in s.types if t not in kept.types)
        merge_attrs(kept.attrs, s.attrs, auxiliary=s.id in auxiliary)
    return list(by_id.values())


# -- writes -------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Write:
    """One write verb as distributed: its operation name (Table 4.20-1), and how it is forwarded."""

    operation: str
    method: str
    path: str  # under /ngsi-ld/v1, with the entity id (and attribute) in it
    entity_id: str | None
    has_body: bool = True
    ok_status: int = 204


async def write(request: Request, ctx: AppContext, verb: Write,
                local: Callable[[], Awaitable[Response]]) -> Response | None:
    """A write to one entity, distributed; None when no registration matches (the caller goes on alone)."""
    regs = await registrations_of(request, ctx)
    if not regs:
        return None
    try:
        body, context, terms = await body_of(request, ctx, verb.has_body)
    except WeCityError:
        return None  # the local handler answers the malformed request
    entity_id = verb.entity_id or (body.get("id") if isinstance(body, dict) else None)
    if not isinstance(entity_id, str) or not is_uri(entity_id):
        return None
    types = body_types(body, terms)
    attrs = _body_attrs(body, terms, verb)
    matches = [m for reg in regs if (m := reg.match(entity_id, types, attrs)) is not None]
    matches = [m for m in matches if m.registration.mode != "auxiliary"]
    matches = unlooped(request, ctx, matches)
    if not matches:
        return None
    outs: list[Outgoing] = []
    refused: list[Outcome] = []
    keep_local = True
    local_body = body
    for m in matches:
        reg = m.registration
        elsewhere = reg.holds_data_elsewhere
        if elsewhere:
            if m.attrs is None:
                keep_local = False
            elif isinstance(local_body, dict):
                local_body = split_attributes(local_body, m.attrs, terms.expand)[1]
        if not reg.supports(verb.operation):
            if elsewhere:  # the data is held there only, and the source cannot do this (5.6.x.4)
                refused.append(Outcome(reg.id, 409, _conflict_problem(request, reg)))
            continue
        part = body
        if isinstance(body, dict) and m.attrs is not None:
            part = split_attributes(body, m.attrs, terms.expand)[0]
        if isinstance(part, dict):
            part = {k: v for k, v in part.items() if k != "@context"}
        outs.append(Outgoing(reg, verb.method, _path_for(verb, m, terms), _write_params(request), part if verb.has_body else None))
    if isinstance(body, dict) and has_attributes(body) and isinstance(local_body, dict) and not has_attributes(local_body):
        keep_local = False  # every attribute went to the sources that hold them
    do_local = keep_local and (verb.operation != "deleteAttrs" or not _attr_elsewhere(matches, verb, terms))
    tasks: list[Awaitable[Any]] = [forwarder_of(ctx).send_all(outs, request.headers, context)]
    if do_local:
        tasks.append(run_local(request, local, local_body if verb.has_body else None))
    results = await asyncio.gather(*tasks)
    answers: list[Answer] = results[0]
    outcomes = [outcome(a) for a in answers] + refused
    local_response: Response | None = None
    if do_local:
        local_response, local_outcome = results[1]
        outcomes.insert(0, local_outcome)
    return _combined(verb, entity_id, outcomes, local_response)


def _attr_elsewhere(matches: list[Match], verb: Write, terms: TermMap) -> bool:
    name = verb.path.rsplit("/", 1)[-1]
    return any(m.registration.holds_data_elsewhere and (m.attrs is None or terms.expand(name) in m.attrs)
               for m in matches)


async def body_of(request: Request, ctx: AppContext, has_body: bool) -> tuple[Any, Any, TermMap]:
    link = parse_link_header(request.headers.get("link"))
    if not has_body:
        return None, link, await resolve(ctx, link)
    body, media = await read_json(request)
    context = body.get("@context") if media == "application/ld+json" and isinstance(body, dict) else link
    return body, context, await resolve(ctx, context)


def body_types(body: Any, terms: TermMap) -> list[str] | None:
    raw = body.get("type") if isinstance(body, dict) else None
    if raw is None:
        return None
    names = raw if isinstance(raw, list) else [raw]
    return [terms.expand(t) for t in names if isinstance(t, str)]


def _body_attrs(body: Any, terms: TermMap, verb: Write) -> list[str] | None:
    if verb.operation in ("updateAttrs", "replaceAttrs", "deleteAttrs"):
        return [terms.expand(verb.path.rsplit("/", 1)[-1])]
    if isinstance(body, dict) and has_attributes(body) and verb.operation not in ("deleteEntity",):
        return [terms.expand(k) for k in body if k not in ("id", "type", "@context", "scope", "@id", "@type")]
    return None


def _path_for(verb: Write, match: Match, terms: TermMap) -> str:
    return verb.path


def _write_params(request: Request) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in request.query_params.multi_items()
                 if k in ("options", "type", "datasetId", "deleteAll"))


def _conflict_problem(request: Request, reg: Registration) -> dict[str, Any]:
    return problem(conflict(f"the context source of registration {reg.id} does not support this operation",
                            f"注册 {reg.id} 的上下文源不支持此操作"))[0]


async def run_local(request: Request, local: Callable[[], Awaitable[Response]], body: Any) -> tuple[Response | None, Outcome]:
    request.scope[LOCAL_ONLY] = True
    if body is not None:
        request._body = json.dumps(body, ensure_ascii=False).encode()
    try:
        response = await local()
    except WeCityError as exc:
        return None, Outcome(None, problem(exc)[1], problem(exc)[0])
    outcome_problem = None
    if response.status_code >= 300 or response.status_code == 207:
        try:
            outcome_problem = json.loads(bytes(response.body))
        except ValueError:
            outcome_problem = None
        if not isinstance(outcome_problem, dict) or "status" not in outcome_problem:
            outcome_problem = {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                               "title": "not every attribute was changed", "status": response.status_code,
                               "detail": outcome_problem}
    return response, Outcome(None, response.status_code, outcome_problem)


def outcome(answer: Answer) -> Outcome:
    problem_body = answer.body if isinstance(answer.body, dict) and "type" in answer.body else None
    if answer.status is None:
        return Outcome(answer.registration.id, 504, {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                                                     "title": "the context source did not answer", "status": 504})
    if answer.warning is not None and problem_body is None:
        problem_body = {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                        "title": f"the context source answered {answer.status}", "status": answer.status}
    return Outcome(answer.registration.id, answer.status, problem_body)


def _combined(verb: Write, entity_id: str, outcomes: list[Outcome], local: Response | None) -> Response:
    if all(o.ok for o in outcomes):
        if local is not None:
            return local
        headers = {"Location": "/ngsi-ld/v1/entities/" + quote(entity_id, safe=":")} if verb.ok_status == 201 else None
        return Response(status_code=verb.ok_status, headers=headers)
    if len(outcomes) == 1:
        only = outcomes[0]
        if only.registration is None and local is not None:
            return local
        if only.registration is None:
            body = only.problem or {}
            return Response(json.dumps(body, ensure_ascii=False), status_code=only.status,
                            media_type="application/json")
        body = only.problem or {"status": only.status}
        return Response(json.dumps(body, ensure_ascii=False), status_code=only.status, media_type="application/json")
    return Response(json.dumps(partial_result(entity_id, outcomes), ensure_ascii=False), status_code=207,
                    media_type="application/json")


async def purge(request: Request, ctx: AppContext, types: list[str] | None) -> list[Outcome]:
    """A purge (DELETE /entities, clause 5.6.21) sent on, as the client asked it, to every source registered
    for purgeEntity that may hold entities of `types` (expanded; None: any type). What each answered; a
    source that had nothing to purge (404) did no wrong."""
    regs = await registrations_of(request, ctx)
    if not regs:
        return []
    matches = [m for reg in regs if reg.mode != "auxiliary" and reg.supports("purgeEntity")
               and (m := reg.match(None, types)) is not None]
    matches = unlooped(request, ctx, matches)
    if not matches:
        return []
    params = tuple((k, v) for k, v in request.query_params.multi_items() if k != "local")
    outs = [Outgoing(m.registration, "DELETE", "/entities", params) for m in matches]
    answers = await forwarder_of(ctx).send_all(outs, request.headers, parse_link_header(request.headers.get("link")))
    return [Outcome(a.registration.id, 204) if a.status == 404 else outcome(a) for a in answers]


def refuse_ordering(request: Request, matches: list[Match]) -> None:
    """Ordering a distributed query is not supported (4.23): the sources' orders cannot be merged."""
    if matches and request.query_params.get("orderBy"):
        raise bad_request_data("orderBy cannot be used in a query that context sources take part in (use local=true)",
                               "有上下文源参与的查询不能使用 orderBy（可用 local=true）")
