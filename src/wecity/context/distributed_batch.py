"""Batch operations, distributed (GS CIM 009 clauses 5.6.7 to 5.6.10 and 5.6.20 with 4.3.6): each
context source whose registration covers some of the entities gets one batch of its parts of them (one
per @context the items came with), at the same time as the broker does the rest itself; the answers
become one result, a 207 listing each entity that failed, and where.

Items of an application/ld+json batch each carry their own @context: an item's types and attributes are
matched against the registrations with its own @context, and it is forwarded with it (in a Link header)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from wecity.context.distributed import (
    body_of,
    body_types,
    forwarder_of,
    outcome,
    registrations_of,
    run_local,
    unlooped,
)
from wecity.context.federation import Registration, has_attributes, split_attributes
from wecity.context.forwarding import Answer, Outgoing
from wecity.context.ldcontext import TermMap
from wecity.context.protocol import resolve
from wecity.core.context import AppContext
from wecity.core.errors import WeCityError

_NOT_FOUND = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
_NOT_ATTRIBUTES = ("id", "type", "@context", "scope", "@id", "@type")


@dataclass
class _Group:
    """What goes to one source in one request: the items of one @context."""

    registration: Registration
    context: Any
    items: list[Any] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


@dataclass
class _Result:
    """Per entity id, what every place did with it."""

    order: list[str] = field(default_factory=list)
    created: set[str] = field(default_factory=set)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def failed_ids(self) -> set[Any]:
        return {e.get("entityId") for e in self.errors}


def _item_id(item: Any, deleting: bool) -> str | None:
    entity_id = item if deleting else item.get("id") if isinstance(item, dict) else None
    return entity_id if isinstance(entity_id, str) else None


async def write_batch(request: Request, ctx: AppContext, operation: str, path: str,
                      local: Callable[[], Awaitable[Response]], *, max_items: int) -> Response | None:
    """A batch operation, distributed; None when no registration covers any item (the caller goes on
    alone), or when the body is for the local handler to refuse."""
    regs = await registrations_of(request, ctx)
    if not regs:
        return None
    try:
        body, context, terms = await body_of(request, ctx, True)
    except WeCityError:
        return None
    if not isinstance(body, list) or not body or len(body) > max_items or any(i is None for i in body):
        return None
    deleting = operation == "deleteBatch"
    contexts: dict[str, tuple[Any, TermMap]] = {}
    groups: dict[tuple[str, str], _Group] = {}
    local_items: list[Any] = []
    remote_ids: set[str] = set()
    for item in body:
        entity_id = _item_id(item, deleting)
        if entity_id is None:
            local_items.append(item)
            continue
        item_context, item_terms, key = context, terms, ""
        if isinstance(item, dict) and "@context" in item:
            key = json.dumps(item["@context"], sort_keys=True)
            if key not in contexts:
                try:
                    contexts[key] = (item["@context"], await resolve(ctx, item["@context"]))
                except WeCityError:
                    local_items.append(item)  # the local handler names the bad @context
                    continue
            item_context, item_terms = contexts[key]
        types = None if deleting else body_types(item, item_terms)
        attrs = None if deleting or not isinstance(item, dict) or not has_attributes(item) else \
            [item_terms.expand(k) for k in item if k not in _NOT_ATTRIBUTES]
        matches = [m for reg in regs if reg.mode != "auxiliary"
                   and (m := reg.match(entity_id, types, attrs)) is not None]
        matches = unlooped(request, ctx, matches)
        rest, keep = item, True
        for m in matches:
            reg = m.registration
            if reg.holds_data_elsewhere and not deleting:
                if m.attrs is None:
                    keep = False
                elif isinstance(rest, dict):
                    rest = split_attributes(rest, m.attrs, item_terms.expand)[1]
            if not reg.supports(operation):
                continue
            part = item
            if isinstance(item, dict):
                chosen = split_attributes(item, m.attrs, item_terms.expand)[0] if m.attrs is not None else item
                part = {k: v for k, v in chosen.items() if k != "@context"}
            group = groups.setdefault((reg.id, key), _Group(reg, item_context))
            group.items.append(part)
            group.ids.append(entity_id)
            remote_ids.add(entity_id)
        if isinstance(item, dict) and has_attributes(item) and isinstance(rest, dict) and not has_attributes(rest):
            keep = False  # every attribute went to the sources that hold it instead of the broker
        if keep:
            local_items.append(rest)
    if not groups and len(local_items) == len(body):
        return None
    params = tuple((k, v) for k, v in request.query_params.multi_items() if k == "options")
    forwarder = forwarder_of(ctx)
    sends = [forwarder.send(Outgoing(g.registration, "POST", path, params, g.items), request.headers, g.context)
             for g in groups.values()]
    tasks: list[Awaitable[Any]] = [asyncio.gather(*sends)]
    if local_items:
        tasks.append(run_local(request, local, local_items))
    results = await asyncio.gather(*tasks)
    result = _Result(order=list(dict.fromkeys(i for i in (_item_id(x, deleting) for x in body) if i is not None)))
    for group, answer in zip(groups.values(), results[0], strict=True):
        _add_remote(result, group, answer)
    if local_items:
        response, _ = results[1]
        if response is None and not groups:
            return None  # the local handler refused the request as a whole: let it answer
        ids = [i for i in (_item_id(x, deleting) for x in local_items) if i is not None]
        _add_local(result, response, ids, results[1][1].problem)
    if deleting:  # deleted where it was: "not found" in one place is no failure when another deleted it
        result.errors = [e for e in result.errors if not (e.get("registrationId") is None and e.get("entityId") in remote_ids
                                                          and (e.get("error") or {}).get("type") == _NOT_FOUND)]
    return _answer(result, operation)


def _add_remote(result: _Result, group: _Group, answer: Answer) -> None:
    status = answer.status
    if status is not None and 200 <= status < 300 and status != 207 and answer.warning is None:
        if status == 201:
            created = answer.body if isinstance(answer.body, list) else group.ids
            result.created.update(i for i in created if isinstance(i, str))
        return
    if status == 207 and isinstance(answer.body, dict):
        for err in answer.body.get("errors") or []:
            if isinstance(err, dict):
                result.errors.append({"entityId": err.get("entityId"), "registrationId": group.registration.id,
                                      "error": err.get("error")})
        return
    problem = outcome(answer).problem
    result.errors.extend({"entityId": i, "registrationId": group.registration.id, "error": problem} for i in group.ids)


def _add_local(result: _Result, response: Response | None, ids: list[str], problem: dict[str, Any] | None) -> None:
    status = response.status_code if response is not None else (problem or {}).get("status", 500)
    body: Any = None
    if response is not None and response.body:
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            body = None
    if status == 201 and isinstance(body, list):
        result.created.update(i for i in body if isinstance(i, str))
    elif status == 207 and isinstance(body, dict):
        result.errors.extend({"entityId": e.get("entityId"), "error": e.get("error")}
                             for e in body.get("errors") or [] if isinstance(e, dict))
    elif status >= 300:
        result.errors.extend({"entityId": i, "error": problem or body} for i in ids)


def _answer(result: _Result, operation: str) -> Response:
    if result.errors:
        failed = result.failed_ids()
        body = {"success": [i for i in result.order if i not in failed], "errors": result.errors}
        return Response(json.dumps(body, ensure_ascii=False), status_code=207, media_type="application/json")
    if operation == "createBatch":
        return Response(json.dumps(result.order), status_code=201, media_type="application/json")
    if operation == "upsertBatch" and result.created:
        created = [i for i in result.order if i in result.created]
        return Response(json.dumps(created), status_code=201, media_type="application/json")
    return Response(status_code=204)
