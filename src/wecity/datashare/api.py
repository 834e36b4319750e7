"""HTTP face of the data catalogue: the CKAN Action API's read calls (so CKAN harvesters and the `ckanapi`
client work against the platform), the DCAT-AP export, and the platform's own catalogue API.

CKAN's calls live where CKAN has them, `/api/action/<name>` and `/api/3/action/<name>`, by GET (query
parameters) or POST (a JSON object), and answer in CKAN's envelope: `{"help", "success", "result"}`, or
`{"success": false, "error": {"__type", "message"}}` with the HTTP status CKAN uses.
"""

from __future__ import annotations

import csv
import io
import json
from itertools import repeat
from typing import Annotated, Any

import orjson
import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from wecity.core.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
    WeCityError,
)
from wecity.core.http import Ctx, client_address, one_file, request_locale
from wecity.core.jsontext import MAX_DEPTH, BadJson, parse_json
from wecity.core.limits import parse_rule
from wecity.core.tables import spreadsheet_text
from wecity.datashare import access, catalogue, dcat, queries, sources, uploads
from wecity.datashare.requests import department_of
from wecity.geo.service import city_timezone
from wecity.identity.audit import record_audit
from wecity.identity.deps import CurrentStaff, OptionalStaff
from wecity.identity.service import StaffUser

router = APIRouter(tags=["data catalogue"])
CKAN_ACTIONS = ("package_search", "package_show", "organization_list", "package_list", "status_show")
MAX_ROWS = 1000


def register(app: FastAPI) -> None:
    from wecity.datashare import sharing_api

    app.include_router(router)
    app.include_router(sharing_api.router)
    # Errors under CKAN's paths in CKAN's envelope, so its clients raise the exception they expect.
    for prefix in ("/api/action", "/api/3/action"):
        app.state.error_renderers[prefix] = ckan_error


_CKAN_TYPES = {400: "Validation Error", 403: "Authorization Error", 404: "Not Found Error", 409: "Validation Error"}


def ckan_error(request: Request, exc: WeCityError) -> Response:
    kind = _CKAN_TYPES.get(exc.status, "Internal Server Error" if exc.status >= 500 else "Validation Error")
    # The message in the caller's language (`lang`, Accept-Language; Chinese by default), as every API gives it.
    message = exc.localized(request_locale(request))
    return JSONResponse({"help": str(request.url), "success": False,
                         "error": {"__type": kind, "message": f"{kind}: {message}"}}, status_code=exc.status)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def package(d: dict[str, Any], base: str) -> dict[str, Any]:
    """A dataset as CKAN describes a package."""
    org = {"id": d["publisher"], "name": d["publisher"], "title": d["publisher_zh"], "type": "organization",
           "is_organization": True, "state": "active", "description": d["publisher_en"]}
    resources = [{"id": f"{d['name']}-{fmt.lower()}", "package_id": str(d["id"]), "name": f"{d['title_zh']} ({fmt})",
                  "url": dcat.data_api_url(base, d["name"], fmt), "format": fmt, "mimetype": media,
                  "state": "active", "position": i, "created": d["created_at"].isoformat(),
                  "last_modified": d["modified_at"].isoformat()}
                 for i, (fmt, media) in enumerate(dcat.FORMATS.items())]
    extras = {"title_en": d["title_en"], "notes_en": d["description_en"], "theme": d["theme"],
              "frequency": d["frequency"], "spatial_text": d["spatial"], "share_class": d["share_class"],
              "legal_basis": d["legal_basis"], "access_rights": dcat.access_right(d), "source": d["source"],
              "temporal_start": d["temporal_start"].isoformat() if d["temporal_start"] else "",
              "temporal_end": d["temporal_end"].isoformat() if d["temporal_end"] else "",
              "fields": json.dumps([{k: f[k] for k in ("name", "title_zh", "title_en", "type", "sensitivity")}
                                    for f in d["fields"]], ensure_ascii=False)}
    return {"id": str(d["id"]), "name": d["name"], "title": d["title_zh"], "notes": d["description_zh"],
            "type": "dataset", "state": "active", "private": False, "url": dcat.dataset_url(base, d["name"]),
            "owner_org": d["publisher"], "organization": org, "license_id": "notspecified",
            "metadata_created": d["created_at"].isoformat(), "metadata_modified": d["modified_at"].isoformat(),
            "tags": [{"name": k, "display_name": k, "state": "active"} for k in d["keywords"]],
            "num_tags": len(d["keywords"]), "resources": resources, "num_resources": len(resources),
            "extras": [{"key": k, "value": v} for k, v in extras.items()]}


async def _params(request: Request) -> dict[str, Any]:
    """A CKAN call's parameters: the query string, and a POSTed JSON object over it."""
    params: dict[str, Any] = dict(request.query_params)
    if request.method == "POST":
        raw = await request.body()
        if raw.strip():
            try:
                body = parse_json(raw)  # bounded nesting: a body 200,000 deep was a RecursionError, a 500
            except BadJson as exc:
                if exc.too_deep:
                    raise ValidationFailed(f"the body nests deeper than {MAX_DEPTH} levels",
                                           message_zh=f"请求体嵌套超过 {MAX_DEPTH} 层") from None
                raise ValidationFailed("the body is not JSON", message_zh="请求体不是 JSON") from None
            if not isinstance(body, dict):
                raise ValidationFailed("the body is a JSON object", message_zh="请求体须为 JSON 对象")
            params.update(body)
    return params


def _int(params: dict[str, Any], name: str, default: int, top: int) -> int:
    try:
        value = int(params.get(name, default))
    except (TypeError, ValueError):
        raise ValidationFailed(f"{name} is a whole number", message_zh=f"{name} 须为整数") from None
    if not 0 <= value <= top:
        raise ValidationFailed(f"{name} is 0 to {top}", message_zh=f"{name} 应在 0 至 {top} 之间")
    return value


def _filters(fq: str) -> dict[str, str]:
    """CKAN's `fq` as far as this catalogue takes it: `organization:<code>`, `res_format:<fmt>` (every
    dataset has JSON and CSV), `tags:<keyword>`; other terms are refused, not ignored."""
    found: dict[str, str] = {}
    for term in fq.split():
        key, _, value = term.partition(":")
        value = value.strip('"')
        if key.lstrip("+") not in ("organization", "owner_org", "tags", "res_format") or not value:
            raise ValidationFailed(f"fq term {term!r} is not supported; use organization:, tags: or res_format:",
                                   message_zh=f"不支持的 fq 条件 {term!r}")
        found[key.lstrip("+")] = value
    return found


@router.get("/api/3/action/{action}",
            summary="CKAN Action API (read): package_search, package_show, organization_list, package_list")
async def ckan_action_get(request: Request, ctx: Ctx, action: str) -> JSONResponse:
    return await ckan_action(request, ctx, action)


@router.post("/api/3/action/{action}", summary="CKAN Action API (read), parameters as a JSON object")
async def ckan_action_post(request: Request, ctx: Ctx, action: str) -> JSONResponse:
    return await ckan_action(request, ctx, action)


@router.api_route("/api/action/{action}", methods=["GET", "POST"], include_in_schema=False)
async def ckan_action(request: Request, ctx: Ctx, action: str) -> JSONResponse:
    """One CKAN call (also at `/api/action/…`, the path `ckanapi` uses)."""
    await ctx.limits.hit("data_read", client_address(request) or "-")
    if action not in CKAN_ACTIONS:
        raise NotFound(f"action {action!r}: this catalogue answers {', '.join(CKAN_ACTIONS)}",
                       message_zh=f"不支持的操作 {action!r}")
    params = await _params(request)
    base = _base(request)
    result: Any
    if action == "status_show":
        result = {"site_title": "WeCity", "ckan_version": "2.10.0", "api_version": 3, "extensions": ["dcat"]}
    elif action == "package_show":
        d = await ctx.db.read(queries.dataset, str(params.get("id") or params.get("name_or_id") or ""))
        result = package(d, base)
    elif action == "organization_list":
        orgs = await ctx.db.read(queries.publishers)
        all_fields = str(params.get("all_fields", "")).lower() in ("true", "1")
        result = [{"id": o["code"], "name": o["code"], "title": o["name_zh"], "display_name": o["name_zh"],
                   "description": o["name_en"], "package_count": o["datasets"], "is_organization": True}
                  if all_fields else o["code"] for o in orgs]
    elif action == "package_list":
        # Every published name (CKAN pages it only when asked: limit, offset).
        everything = await ctx.db.read(queries.published)
        start = _int(params, "offset", 0, 1_000_000)
        end = start + _int(params, "limit", MAX_ROWS, MAX_ROWS) if "limit" in params else None
        result = [d["name"] for d in everything[start:end]]
    else:
        rows, start = _int(params, "rows", 10, MAX_ROWS), _int(params, "start", 0, 1_000_000)
        fq = _filters(str(params.get("fq", "")))
        q = str(params.get("q", "") or "")[:200]
        q = "" if q in ("*:*", "*") else q
        count, items = 0, list[dict[str, Any]]()  # no dataset has a format other than JSON and CSV
        if "res_format" not in fq or fq["res_format"].upper() in dcat.FORMATS:
            # Filtered first, then counted and paged: the count is every match, however many.
            count, items = await ctx.db.read(lambda c: queries.search_datasets(
                c, text=q or None, publisher=fq.get("organization") or fq.get("owner_org"), tag=fq.get("tags"),
                limit=rows, offset=start))
        result = {"count": count, "results": [package(d, base) for d in items],
                  "sort": "metadata_modified desc", "facets": {}, "search_facets": {}}
    return JSONResponse({"help": f"{base}/api/3/action/help_show?name={action}", "success": True, "result": result})


@router.get("/dcat/catalog.{extension}", summary="The catalogue as DCAT-AP: catalog.ttl (Turtle) or catalog.jsonld")
async def dcat_export(request: Request, ctx: Ctx, extension: str) -> Response:
    await ctx.limits.hit("data_read", client_address(request) or "-")
    formats = {"ttl": ("turtle", "text/turtle"), "jsonld": ("json-ld", "application/ld+json"),
               "rdf": ("xml", "application/rdf+xml")}
    if extension not in formats:
        raise NotFound(f"catalog.{extension}: use catalog.ttl, catalog.jsonld or catalog.rdf",
                       message_zh="请使用 catalog.ttl、catalog.jsonld 或 catalog.rdf")
    fmt, media = formats[extension]
    # The whole catalogue, however large: seconds of CPU for thousands of datasets, so built in a worker
    # thread and kept until the catalogue changes.
    text = await dcat.export(ctx.db, base=_base(request), fmt=fmt)
    return Response(text, media_type=f"{media}; charset=utf-8")


@router.get("/api/v1/datasets", summary="Search the data catalogue")
async def list_datasets(request: Request, ctx: Ctx, q: Annotated[str | None, Query(max_length=100)] = None,
                        publisher: Annotated[str | None, Query(max_length=64)] = None,
                        theme: Annotated[str | None, Query(max_length=10)] = None,
                        open_only: bool = False, limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 50,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    await ctx.limits.hit("data_read", client_address(request) or "-")
    count, items = await ctx.db.read(lambda c: queries.search_datasets(
        c, text=q, publisher=publisher, theme=theme, open_only=open_only, limit=limit, offset=offset))
    return {"count": count, "datasets": items}


@router.get("/api/v1/datasets/{name}", summary="One dataset: metadata, fields and their sensitivity")
async def get_dataset(request: Request, ctx: Ctx, name: str) -> dict[str, Any]:
    await ctx.limits.hit("data_read", client_address(request) or "-")
    return await ctx.db.read(queries.dataset, name[:100])


@router.put("/api/v1/datasets/{name}", summary="Publish or update a dataset (its department's staff, or an administrator)")
async def publish_dataset(ctx: Ctx, user: CurrentStaff, name: str, body: dict[str, Any]) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, Any]:
        if body.get("name") != name:
            raise ValidationFailed("the body's name is the path's", message_zh="请求体中的 name 须与路径一致")
        if "admin" not in user.roles:
            catalogue.may_publish(conn, user.department_id, body, user.roles)
        catalogue.publish(conn, body, now=now)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="dataset.publish", target=f"dataset:{name}")
        return queries.dataset(conn, name)

    published = await ctx.db.write(run)
    await catalogue.forget_cached(ctx.db)
    return published


@router.post("/api/v1/datasets/{name}/rows", summary="Upload a dataset's rows as CSV or XLSX (multipart `file`): "
             "its department's staff, or an administrator; the rows are replaced, or nothing changes")
async def upload_rows(request: Request, ctx: Ctx, user: CurrentStaff, name: str) -> dict[str, Any]:
    d = await ctx.db.read(queries.dataset, name[:100])
    rows = await checked_upload(request, ctx, user, d)
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, Any]:
        count = uploads.replace_rows(conn, d, rows, now=now)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="dataset.upload",
                     target=f"dataset:{d['name']}", detail={"rows": count})
        return {"dataset": d["name"], "rows": count}

    uploaded = await ctx.db.write(run)
    await catalogue.forget_cached(ctx.db)
    return uploaded


async def checked_upload(request: Request, ctx: Any, user: StaffUser, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The checked rows of the file a department's staff member sent for its own uploaded-table dataset."""
    await may_upload(ctx, user, d)
    return await read_upload(request, ctx, d)


async def may_upload(ctx: Any, user: StaffUser, d: dict[str, Any]) -> None:
    """Refuse anyone but the dataset's department (or an administrator), and a dataset not read from an
    uploaded table: before the body is read."""
    own = await ctx.db.read(lambda c: department_of(c, user))
    if "admin" not in user.roles and own != d["publisher"]:
        raise PermissionDenied("a department uploads its own datasets' tables", message_zh="部门只能上传本部门数据集的表格",
                               code="datashare.not_publisher")
    if (d["source"], d["source_ref"]) != ("table", "upload"):
        raise ValidationFailed(f"dataset {d['name']} is read from {d['source']}, not from an uploaded table",
                               message_zh=f"数据集 {d['name']} 的数据来自{d['source']}，不是上传的表格",
                               code="datashare.not_uploaded")


async def read_upload(request: Request, ctx: Any, d: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of the uploaded file, read and checked against the dataset's fields."""
    content, filename = await one_file(request, max_bytes=ctx.settings.max_upload_bytes,
                                       code="datashare.upload_invalid", what_en="table", what_zh="表格文件")
    if len(content) > ctx.settings.max_upload_bytes:
        raise PayloadTooLarge(f"the file is larger than {ctx.settings.max_upload_bytes:,} bytes",
                              message_zh=f"文件超过 {ctx.settings.max_upload_bytes:,} 字节")
    zone = await ctx.db.read(city_timezone)
    return uploads.parse_rows(d, uploads.read_table(content, filename), zone=zone)


# -- the data API ---------------------------------------------------------------------------------------------

# The largest page: CKAN's datastore allows 32,000; a page is one transaction, one audit entry (naming each
# record) and one commit, so large pages are what bulk readers should use.
DATA_PAGE = 10_000
# The furthest offset: sources paged in SQL (cases, a type's history) may hold millions of rows, every one
# reachable; a source read in memory holds at most sources.MAX_ROWS_READ, and an offset past that is refused.
MAX_OFFSET = 2**53 - 1
_PAGING = ("fields", "limit", "offset", "format", "grant", "include_total", "records_format")


@router.get("/api/v1/data/{name}", summary="A dataset's rows: open data to anyone; other data to its publisher's "
            "staff and, within their grant, to departments it was shared with. Filters: any field=value; "
            "fields=a,b; limit, offset; format=json|csv; grant=id (when a department holds several); "
            "include_total=false to skip counting when paging on; records_format=lists for rows as arrays in "
            "`fields` order (both CKAN datastore_search's names)")
async def read_data(request: Request, ctx: Ctx, user: OptionalStaff, name: str,
                    fields: Annotated[str | None, Query(max_length=2000)] = None,
                    limit: Annotated[int, Query(ge=1, le=DATA_PAGE)] = 100,
                    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
                    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
                    grant: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                    include_total: bool = True,
                    records_format: Annotated[str, Query(pattern="^(objects|lists)$")] = "objects") -> Response:
    address = client_address(request)
    await ctx.limits.hit("data_read", address or "-")
    now = ctx.clock.now()
    actor = f"user:{user.username}" if user else f"anonymous:{address or '-'}"

    def look_up(conn: sa.Connection) -> tuple[dict[str, Any], access.Access | access.Refusal]:
        d = queries.dataset(conn, name[:100])
        return d, access.resolve(conn, d, user, now=now, grant_id=grant)

    d, found = await ctx.db.read(look_up)
    if isinstance(found, access.Refusal):
        refusal = found
        await ctx.db.write(lambda c: access.record_refusal(c, d, refusal, user, actor=actor, source_address=address,
                                                           now=now))
        raise access.refusal_error(d, refusal)
    if offset > sources.MAX_ROWS_READ and not sources.paged_in_sql(d):
        raise ValidationFailed(f"offset is 0 to {sources.MAX_ROWS_READ:,} for dataset {d['name']}: its rows are "
                               f"read {sources.MAX_ROWS_READ:,} at most",
                               message_zh=f"数据集 {d['name']} 的 offset 应在 0 至 {sources.MAX_ROWS_READ:,} 之间："
                               f"其数据最多读取 {sources.MAX_ROWS_READ:,} 行", code="datashare.offset_too_large")
    if found.grant_id is not None and found.rate_limit:
        # Each grant is counted on its own, at the rate its provider set.
        await ctx.limits.hit("data_grant", f"grant:{found.grant_id}", parse_rule(found.rate_limit))
    for _ in range(_ATTEMPTS):
        query = await _checked_query(request, ctx, d, found, user, fields=fields, limit=limit, offset=offset,
                                     include_total=include_total, objects=format == "json" and records_format == "objects",
                                     actor=actor, address=address, now=now)
        # The page is read in a read transaction (the source's work never holds the one writer SQLite has),
        # then logged in a short write that finds the same access again: the same grant with the same scope.
        # A grant revoked or expired meanwhile is refused; one whose scope changed is read again within it.
        page = await ctx.db.read(lambda c, q=query: sources.reader(d)(c, d, q, now))
        if found.kind == access.OPEN:
            break
        outcome = await ctx.db.write(lambda c, f=found, q=query, p=page: _logged(
            c, d, user, f, q, p, grant=grant, actor=actor, address=address, now=now, offset=offset))
        if isinstance(outcome, access.Refusal):
            raise access.refusal_error(d, outcome)
        if outcome is None:
            break
        found = outcome
    else:
        raise Conflict("the grant changed while the data was being read: try again",
                       message_zh="读取数据期间授权发生了变化，请重试", code="datashare.grant_changed")
    rows = _objects(query.fields, page.rows) if query.objects else page.rows
    # A source filtered in memory and holding more rows than are read at once says so: the page and its
    # filters cover only the oldest sources.MAX_ROWS_READ rows, and there is no total.
    partial = sources.truncated(page)
    result = {"dataset": d["name"], "count": page.total, "offset": offset, "limit": limit, "fields": query.fields,
              "masked": [f for f in query.fields if f in found.masked], "grant": found.grant_id,
              "truncated": partial, "rows": rows}
    headers = {TRUNCATED_HEADER: str(sources.MAX_ROWS_READ)} if partial else {}
    if format == "csv":
        return Response(_csv(result["fields"], result["rows"]), media_type="text/csv; charset=utf-8", headers={
            **headers, "Content-Disposition": f'attachment; filename="{result["dataset"]}.csv"'})
    # orjson: a page may be a thousand rows, and the standard encoder is several times slower.
    return Response(orjson.dumps(result), media_type="application/json", headers=headers)


TRUNCATED_HEADER = "X-WeCity-Rows-Read"


_ATTEMPTS = 3


async def _checked_query(request: Request, ctx: Any, d: dict[str, Any], found: access.Access, user: StaffUser | None,
                         *, fields: str | None, limit: int, offset: int, include_total: bool, objects: bool,
                         actor: str, address: str | None, now: Any) -> sources.Query:
    """What to read for this call within `found`'s scope; a refusal (logged) for fields or filters outside it."""
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else list(found.fields)
    known = {f["name"] for f in d["fields"]}
    unknown = [f for f in chosen if f not in known]
    filters = {k: v for k, v in request.query_params.items() if k in known}
    extra = [k for k in request.query_params if k not in known and k not in _PAGING]
    if unknown or extra:
        raise ValidationFailed(f"dataset {d['name']} has no field {', '.join(unknown + extra)}",
                               message_zh=f"数据集 {d['name']} 没有字段：{'、'.join(unknown + extra)}",
                               code="datashare.unknown_field")
    # Only the grant's fields are read or searched by: a field of its row filter that it does not name (a
    # phone number the rows were limited to, say) stays unseen, and is no search key either.
    outside = [f for f in [*chosen, *filters] if f not in found.fields]
    if outside:
        await _refuse(ctx, d, found, user, "outside_grant", actor=actor, address=address, now=now)
        raise PermissionDenied(f"outside your grant: {', '.join(dict.fromkeys(outside))}",
                               message_zh=f"超出授权范围的字段：{'、'.join(dict.fromkeys(outside))}",
                               code="datashare.outside_grant")
    # A masked field is not a search key: filtering by a phone number would find a person's records (and
    # tell whether a guessed number is theirs) through a value the grant does not show.
    by_masked = [f for f in filters if f in found.masked]
    if by_masked:
        await _refuse(ctx, d, found, user, "masked_filter", actor=actor, address=address, now=now)
        raise PermissionDenied(f"masked fields cannot be filtered by: {', '.join(by_masked)}",
                               message_zh=f"脱敏字段不能作为筛选条件：{'、'.join(by_masked)}",
                               code="datashare.outside_grant")
    return sources.Query(chosen, access.combined_filter(filters, found.row_filter), limit, offset,
                         with_total=include_total, masked=found.masked, mask=access.mask, objects=objects)


def _logged(conn: sa.Connection, d: dict[str, Any], user: StaffUser | None, found: access.Access,
            query: sources.Query, page: sources.Page, *, grant: int | None, actor: str, address: str | None,
            now: Any, offset: int) -> access.Access | access.Refusal | None:
    """Log a page read under `found`, if the caller's access is still that (None); else the refusal (logged)
    or the access as it is now, not logged: the page must be read again within it."""
    now_found = access.resolve(conn, d, user, now=now, grant_id=grant)
    if isinstance(now_found, access.Refusal):
        access.record_refusal(conn, d, now_found, user, actor=actor, source_address=address, now=now)
        return now_found
    if now_found != found:
        return now_found
    access.record_reading(conn, d, found, page, actor=actor, source_address=address, now=now,
                          detail={"rows": len(page.rows), "offset": offset, "fields": query.fields,
                                  "filters": query.where})
    return None


async def _refuse(ctx: Any, d: dict[str, Any], found: access.Access, user: StaffUser | None, reason: str, *,
                  actor: str, address: str | None, now: Any) -> None:
    """A call asking for more than its access allows, in the audit log and the access log like any refusal."""
    refusal = access.Refusal(reason, found.grant_id)
    await ctx.db.write(lambda c: access.record_refusal(c, d, refusal, user, actor=actor, source_address=address,
                                                       now=now))


def _objects(fields: list[str], rows: list[Any]) -> list[dict[str, Any]]:
    """Rows as objects keyed by field name, unless the source made them so. Every source builds its rows in
    `fields` order, one value per field, so the first row's length is checked once: zip(strict=True) on
    every row took as long again."""
    if not rows or isinstance(rows[0], dict):
        return rows
    if len(rows[0]) != len(fields):
        raise RuntimeError(f"a source gave rows of {len(rows[0])} values for {len(fields)} fields")
    return list(map(dict, map(zip, repeat(fields), rows)))


def _csv(fields: list[str], rows: list[Any]) -> str:
    """CSV (rows in `fields` order) with a byte-order mark, so that spreadsheet programs read the Chinese as
    UTF-8; a geometry or list as its JSON text."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else
                         "" if v is None else spreadsheet_text(v) for v in row])
    return out.getvalue()
