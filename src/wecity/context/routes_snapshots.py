"""NGSI-LD Snapshots over HTTP (clauses 5.16, 6.36-6.38): create, retrieve, list, update the priority,
clone, delete and purge snapshots; queries naming one by the NGSILD-Snapshot header are answered in
routes_entities from its frozen entities."""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.engine import Connection

from wecity.context import distributed, service, snapshots
from wecity.context.entity import now_text
from wecity.context.errors import bad_request_data
from wecity.context.ldcontext import TermMap, parse_link_header
from wecity.context.openapi import HEADERS, operation
from wecity.context.protocol import (
    JSON_LD,
    no_content,
    outgoing_terms,
    read_json,
    resolve,
    respond,
    tenant_of,
)
from wecity.context.query import compile_query
from wecity.context.routes_batch import query_params_of, query_spec
from wecity.context.routes_entities import distributed_page
from wecity.core.http import Ctx

log = logging.getLogger(__name__)

router = APIRouter(prefix="/ngsi-ld/v1/snapshots", tags=["ngsi-ld"])
BASE = "/ngsi-ld/v1/snapshots/"
HEADER = "NGSILD-Snapshot"
# The members of a Snapshot (5.2.41) a purge's q may test; any other name is an error.
PURGE_MEMBERS = ("snapshotPriority", "snapshotStatus", "createdAt", "lastUsedAt")
_READ_ONLY = frozenset({"id", "snapshotQueries", "snapshotStatus", "snapshotQueriesDetails", "createdAt",
                        "lastUsedAt"})


def render(snap: snapshots.Snapshot) -> dict[str, Any]:
    return {"id": snap.snapshot_id, "type": "Snapshot", "snapshotStatus": snap.status,
            "snapshotPriority": snap.priority, "snapshotQueries": snap.body.get("snapshotQueries", []),
            "snapshotQueriesDetails": snap.details, "createdAt": now_text(snap.created_at),
            "lastUsedAt": now_text(snap.last_used_at)}


def _priority(body: dict[str, Any]) -> int:
    value = body.get("snapshotPriority", snapshots.DEFAULT_PRIORITY)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request_data("snapshotPriority must be a positive integer", "snapshotPriority 必须是正整数")
    return value


async def _body(request: Request) -> tuple[dict[str, Any], str]:
    body, media = await read_json(request)
    if not isinstance(body, dict) or body.get("type", "Snapshot") != "Snapshot":
        raise bad_request_data("the body must be a Snapshot object", "请求体必须是 Snapshot 对象")
    return body, media


def _created(snap: snapshots.Snapshot) -> Response:
    return Response(status_code=201, headers={"Location": BASE + snap.snapshot_id})


@router.post("", status_code=201, summary="Create a snapshot",
             openapi_extra=operation(*HEADERS, body="Snapshot"))
@router.post("/", include_in_schema=False)
async def create_snapshot(request: Request, ctx: Ctx) -> Response:
    body, media = await _body(request)
    queries = body.get("snapshotQueries")
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise bad_request_data("snapshotQueries must be a non-empty list of Query objects",
                               "snapshotQueries 必须是非空的 Query 对象列表")
    if len(queries) > snapshots.MAX_QUERIES:
        raise bad_request_data(f"a snapshot takes at most {snapshots.MAX_QUERIES} snapshotQueries",
                               f"一个快照最多包含 {snapshots.MAX_QUERIES} 个 snapshotQueries")
    for q in queries:
        if q.get("type", "Query") != "Query":
            raise bad_request_data("each of snapshotQueries must be a Query", "snapshotQueries 的每一项必须是 Query")
        if "temporalQ" in q:
            raise bad_request_data("a snapshot query takes no temporalQ", "快照查询不能带 temporalQ")
    context = body.get("@context") if media == "application/ld+json" else parse_link_header(request.headers.get("link"))
    terms = await resolve(ctx, context)
    specs = [query_spec(q, terms) for q in queries]
    priority = _priority(body)
    kept = {"snapshotQueries": queries, "@context": context}
    tenant, now = tenant_of(request), ctx.clock.now()
    regs = await distributed.registrations_of(request, ctx)
    federated = [distributed.query_matches(regs, spec.types, spec.ids, spec.attrs, None) if regs else []
                 for spec in specs]
    if not any(federated):
        return _created(await ctx.db.write(snapshots.create, tenant, kept, specs, priority, now))
    # Context sources hold some of what the queries ask for: the queries run as a distributed query does
    # (5.16.1.4, following 5.7.2.4), after the answer, and the snapshot is "preparing" until they are done.
    snap = await ctx.db.write(snapshots.begin, tenant, kept, priority, now)
    task = asyncio.create_task(_fill(request, ctx, snap, list(zip(queries, specs, federated, strict=True)), terms,
                                     context))
    _FILLING.add(task)
    task.add_done_callback(_FILLING.discard)
    return _created(snap)


_FILLING: set[asyncio.Task[None]] = set()  # the fills under way, kept until done


async def _fill(request: Request, ctx: Ctx, snap: snapshots.Snapshot, queries: list[tuple[dict[str, Any], Any, Any]],
                terms: TermMap, context: Any) -> None:
    tenant = tenant_of(request)
    try:
        found = []
        for body, spec, matches in queries:
            if matches:
                rows, _ = await distributed_page(request, ctx, tenant, spec, matches, terms, context,
                                                 snapshots.MAX_ENTITIES + 1, 0, False, params=query_params_of(body),
                                                 window=snapshots.MAX_ENTITIES + 1)
            else:
                rows = (await ctx.db.read(partial(service.query_page, tenant=tenant, spec=spec,
                                                  limit=snapshots.MAX_ENTITIES + 1, offset=0, count=False))).rows
            found.append(rows)
        await ctx.db.write(snapshots.fill, snap, found)
    except Exception:
        log.exception("snapshot %s could not be filled", snap.snapshot_id)
        await ctx.db.write(snapshots.failed, snap)


@router.get("", summary="List snapshots", openapi_extra=operation(*HEADERS, answers=JSON_LD))
@router.get("/", include_in_schema=False)
async def list_snapshots(request: Request, ctx: Ctx) -> Response:
    found = await ctx.db.read(snapshots.all_of, tenant_of(request))
    return respond(request, [render(s) for s in found], None)


def _purge_test(q: str, terms: TermMap) -> Any:
    compiled = compile_query(q, terms)
    unknown = sorted(set(compiled.names) - set(PURGE_MEMBERS))
    if unknown:
        raise bad_request_data(f"a snapshot purge queries only {', '.join(PURGE_MEMBERS)}, not {', '.join(unknown)}",
                               f"快照清除只能查询 {', '.join(PURGE_MEMBERS)}，不能查询 {', '.join(unknown)}")
    return compiled.predicate


@router.delete("", status_code=204, summary="Purge snapshots", openapi_extra=operation("q", *HEADERS))
@router.delete("/", include_in_schema=False)
async def purge_snapshots(request: Request, ctx: Ctx) -> Response:
    q = request.query_params.get("q")
    if not q:
        raise bad_request_data("a snapshot purge needs q", "快照清除需要 q")
    _, terms = await outgoing_terms(request, ctx)
    test = _purge_test(q, terms)
    tenant = tenant_of(request)

    def write(conn: Connection) -> None:
        for snap in snapshots.all_of(conn, tenant):
            shown = render(snap)
            attrs = {terms.expand(m): {"type": "Property", "value": shown[m]} for m in PURGE_MEMBERS}
            if test(attrs):
                snapshots.delete(conn, snap)

    await ctx.db.write(write)
    return no_content()


@router.get("/{snapshot_id:path}", summary="Retrieve a snapshot", openapi_extra=operation(*HEADERS, answers=JSON_LD))
async def retrieve_snapshot(snapshot_id: str, request: Request, ctx: Ctx) -> Response:
    snap = await ctx.db.read(snapshots.require, tenant_of(request), snapshot_id)
    return respond(request, render(snap), None)


@router.patch("/{snapshot_id:path}", summary="Update a snapshot's priority",
              openapi_extra=operation(*HEADERS, body="SnapshotFragment", answers=JSON_LD))
async def update_snapshot(snapshot_id: str, request: Request, ctx: Ctx) -> Response:
    body, _ = await _body(request)
    fixed = sorted(_READ_ONLY.intersection(body))
    if fixed:
        raise bad_request_data(f"{', '.join(fixed)} cannot be changed", f"{', '.join(fixed)} 不能修改")
    priority = _priority(body) if "snapshotPriority" in body else None
    tenant = tenant_of(request)

    def write(conn: Connection) -> snapshots.Snapshot:
        snap = snapshots.require(conn, tenant, snapshot_id)
        if priority is not None:
            snapshots.set_priority(conn, snap, priority)
        return snap

    return respond(request, render(await ctx.db.write(write)), None)


@router.post("/{snapshot_id:path}/clone", status_code=201, summary="Clone a snapshot",
             openapi_extra=operation(*HEADERS, body="SnapshotFragment"))
async def clone_snapshot(snapshot_id: str, request: Request, ctx: Ctx) -> Response:
    body, _ = await _body(request)
    if "snapshotQueries" in body:
        raise bad_request_data("a clone keeps the original's snapshotQueries", "克隆保留原快照的 snapshotQueries")
    tenant, now = tenant_of(request), ctx.clock.now()

    def write(conn: Connection) -> snapshots.Snapshot:
        original = snapshots.require(conn, tenant, snapshot_id)
        return snapshots.clone(conn, tenant, original, _priority(body) if "snapshotPriority" in body
                               else original.priority, now)

    return _created(await ctx.db.write(write))


@router.delete("/{snapshot_id:path}", status_code=204, summary="Delete a snapshot", openapi_extra=operation(*HEADERS))
async def delete_snapshot(snapshot_id: str, request: Request, ctx: Ctx) -> Response:
    tenant = tenant_of(request)
    await ctx.db.write(lambda conn: snapshots.delete(conn, snapshots.require(conn, tenant, snapshot_id)))
    return no_content()
