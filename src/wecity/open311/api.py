"""HTTP adapter: Open311 GeoReport v2 under /open311/v2/, in XML and JSON, with the common extensions."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile

from wecity.cases import engine
from wecity.cases.choices import Channel, ReturnReason
from wecity.cases.citizen_voice import looks_like_email, looks_like_phone
from wecity.cases.intake import NewReport
from wecity.cases.models import reports
from wecity.cases.receive import Receipt, idempotency, receive_report
from wecity.core.clock import isoformat
from wecity.core.context import AppContext
from wecity.core.errors import (
    AuthenticationRequired,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    WeCityError,
)
from wecity.core.http import MAX_ID, amend_openapi, get_ctx, request_locale
from wecity.core.settings import UPLOAD_FILES, Settings
from wecity.identity.keys import OPEN311_WRITE, api_key_grant
from wecity.identity.service import StaffUser, api_key_user
from wecity.open311 import evidence, service
from wecity.open311.render import errors_body, respond

PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["open311"])
FORMATS = ("json", "xml")
SPEC_URL = "http://wiki.open311.org/GeoReport_v2"


def register(app: FastAPI) -> None:
    app.state.error_renderers[PREFIX] = render_error
    app.include_router(router)
    amend_openapi(app, _add_schemas)


def _format(request: Request) -> str:
    path = request.url.path
    return "xml" if path.endswith(".xml") else "json"


def render_error(request: Request, exc: WeCityError) -> Response:
    """The spec's errors: 403 for a missing or bad api_key, 404 for unknown resources, 400 otherwise. A wrong
    method stays 405, the one status its Allow header means something with, and a body over the size limit
    413, which says to send less rather than to send something else."""
    status = exc.status
    if isinstance(exc, AuthenticationRequired | PermissionDenied):
        status = 403
    elif status not in (404, 405, 413, 422, 503, 429):
        status = 400 if status < 500 else status
    description = exc.localized(request_locale(request))
    if request_locale(request).startswith("zh") and exc.message != exc.message_zh:
        description = f"{exc.message_zh} / {exc.message}"
    body, media_type = errors_body(_format(request), status, description)
    return Response(body, status_code=status, media_type=media_type)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise NotFound(f"unknown format {fmt!r}; use .json or .xml", message_zh=f"不支持的格式 {fmt}，请用 .json 或 .xml",
                       code="open311.format")
    return fmt


async def _check_jurisdiction(request: Request, ctx: AppContext, params: Any) -> None:
    given = params.get("jurisdiction_id")
    if not given:
        return
    if "jurisdiction_id" not in ctx.services:
        from wecity.geo.service import get_jurisdiction

        row = await ctx.db.read(get_jurisdiction)
        ctx.services["jurisdiction_id"] = row.id if row else None
    if given != ctx.services["jurisdiction_id"]:
        raise NotFound(f"unknown jurisdiction_id {given!r}", message_zh=f"未知的 jurisdiction_id：{given}",
                       code="open311.jurisdiction")


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _parse_time(params: Any, name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValidationFailed(f"{name} must be an ISO 8601 date-time with a zone", code="open311.datetime",
                               message_zh=f"{name} 必须是带时区的 ISO 8601 时间") from None
    if value.tzinfo is None:
        raise ValidationFailed(f"{name} must include a time zone, e.g. 2026-11-01T08:00:00+08:00",
                               code="open311.datetime", message_zh=f"{name} 必须包含时区")
    return value


def _parse_int(params: Any, name: str, default: int | None, *, minimum: int = 1,
               maximum: int | None = None) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number", code="open311.param",
                               message_zh=f"{name} 必须是整数") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValidationFailed(f"{name} must be between {minimum} and {maximum}", code="open311.param",
                               message_zh=f"{name} 必须在 {minimum} 与 {maximum} 之间")
    return value


# -- discovery and services ---------------------------------------------------------------------------------

@router.get("/discovery.{fmt}", summary="Open311 discovery document")
async def discovery(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    base = _base_url(request)
    data = {
        "changeset": "2026-11-01T00:00:00+08:00",
        "contact": "12345 市民服务热线 / 12345 citizen hotline",
        "key_service": f"{base}/docs",
        "endpoints": [{
            "specification": SPEC_URL,
            "url": f"{base}{PREFIX}",
            "changeset": "2026-11-01T00:00:00+08:00",
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    }
    if fmt == "xml":
        from wecity.open311.render import to_xml

        xml = to_xml("discovery", None, data, {"endpoints": "endpoint", "formats": "format"})
        return Response(xml, media_type="text/xml; charset=utf-8")
    return respond(fmt, data, root="discovery")


@router.get("/services.{fmt}", summary="List service types (categories)")
async def list_services(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    await _check_jurisdiction(request, ctx, request.query_params)
    data = await ctx.db.read(service.services, request_locale(request))
    return respond(fmt, data, root="services", item="service")


@router.get("/services/{service_code}.{fmt}", summary="Service definition (attributes)")
async def service_definition(request: Request, service_code: str, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    await _check_jurisdiction(request, ctx, request.query_params)
    data = await ctx.db.read(service.service_definition, service_code, request_locale(request))
    return respond(fmt, data, root="service_definition")


# -- creating requests --------------------------------------------------------------------------------------

def _attributes(form: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key.startswith("attribute[") and isinstance(value, str):
            code = key[len("attribute["):].split("]", 1)[0]
            if key.endswith("[]"):
                out.setdefault(code, []).append(value)
            else:
                out[code] = value
    return out


def _float(form: FormData, name: str) -> float | None:
    raw = form.get(name)
    if raw is None or raw == "":
        return None
    try:
        return float(str(raw))
    except ValueError:
        raise ValidationFailed(f"{name} must be a number", code="request.location",
                               message_zh=f"{name} 必须是数字") from None


def _text(form: FormData, name: str, limit: int = 200) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(f"{name} is longer than {limit} characters", code="request.field",
                               message_zh=f"{name} 不能超过 {limit} 个字符")
    return value or None


def _contact(form: FormData) -> tuple[str | None, str | None]:
    """The reporter's e-mail address and phone number, each one address as the portal takes them: they become
    a mail header's recipient and an SMS gateway's number, where "a@x.cn, b@y.cn" is a list and a line break
    a second header."""
    email, phone = _text(form, "email"), _text(form, "phone", 40)
    if email is not None and not looks_like_email(email):
        raise ValidationFailed("email must be one e-mail address, like name@example.com", code="request.email",
                               message_zh="email 须为一个电子邮箱地址，如 name@example.com")
    if phone is not None and not looks_like_phone(phone):
        raise ValidationFailed("phone must be one phone number (digits, perhaps with +, spaces or dashes)",
                               code="request.phone", message_zh="phone 须为一个电话号码（数字，可含 +、空格或连字符）")
    return email, phone


def _report(form: FormData) -> NewReport:
    service_code = _text(form, "service_code", 64)
    if not service_code:
        raise ValidationFailed("service_code is required", code="request.service_code",
                               message_zh="必须提供 service_code")
    email, phone = _contact(form)
    return NewReport(
        service_code=service_code, channel=Channel.OPEN311, lat=_float(form, "lat"), long=_float(form, "long"),
        coord_system=_text(form, "coord_system", 10) or "wgs84",
        address=_text(form, "address_string", 500), address_id=_text(form, "address_id", 100),
        description=_text(form, "description", 4000) or "", attributes=_attributes(form),
        media_url=_text(form, "media_url", 1000), email=email, phone=phone,
        first_name=_text(form, "first_name", 100), last_name=_text(form, "last_name", 100),
        device_id=_text(form, "device_id"), account_id=_text(form, "account_id"),
    )


@asynccontextmanager
async def _request_form(request: Request, settings: Settings) -> AsyncIterator[FormData]:
    """The form with its spooled uploads, closed on leaving; a body that does not parse is a 400."""
    try:
        # A text field holds at most a form's worth (max_part_size bounds the fields; the photos are read apart).
        form = await request.form(max_files=UPLOAD_FILES, max_fields=200, max_part_size=settings.max_form_bytes)
    except Exception as exc:  # malformed bodies are the client's error, whatever the parser raised
        if isinstance(exc, WeCityError):
            raise
        raise ValidationFailed(f"cannot read the form body: {exc}", code="request.body",
                               message_zh="无法解析表单内容") from None
    try:
        yield form
    finally:
        await form.close()


async def _checked_api_key(ctx: AppContext, form: FormData) -> str:
    """The digest of the form's api_key once it is known valid and within its rate limit."""
    api_key = _text(form, "api_key") or ""
    if not api_key:
        raise AuthenticationRequired("api_key is required to create a request", code="open311.api_key",
                                     message_zh="创建诉求需要 api_key")
    grant = await ctx.db.read(api_key_grant, api_key)
    if grant is None:
        raise AuthenticationRequired("invalid api_key", code="open311.api_key", message_zh="api_key 无效")
    if not grant.allows(OPEN311_WRITE):
        raise PermissionDenied("this api_key may not file requests (it lacks the open311:write scope)",
                               code="open311.scope", message_zh="该 api_key 无权提交诉求（缺少 open311:write 权限）")
    return await _within_rate_limit(ctx, api_key)


async def _within_rate_limit(ctx: AppContext, api_key: str) -> str:
    """Count a POST against its key (WECITY_RATE_LIMIT_OPEN311): one partner's flood must not fill every
    department's queue. Returns the key's digest, the name the key goes by from here on."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
    await ctx.limits.hit("open311", digest)
    return digest


@router.post("/requests.{fmt}", summary="Create a service request (form-urlencoded or multipart with media)",
             openapi_extra={"requestBody": {"content": {
                 "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Open311NewRequest"}},
                 "multipart/form-data": {"schema": {"$ref": "#/components/schemas/Open311NewRequest"}}}}})
async def create_request(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    limit = ctx.settings.max_upload_bytes
    async with _request_form(request, ctx.settings) as form:
        await _check_jurisdiction(request, ctx, form)
        # Credentials and the rate limit before any photo is read or decoded: a wrong key, or one past its
        # limit, costs the sender, not the city.
        key_digest = await _checked_api_key(ctx, form)
        report = _report(form)
        if report.service_code == LET_THE_CITY_DECIDE:
            await _route_by_description(ctx, report)
        photos = [await value.read(limit + 1) for name, value in form.multi_items()
                  if name in ("media", "media[]") and isinstance(value, UploadFile)]
    scope = "open311.requests:" + key_digest
    fields = [(name, value) for name, value in form.multi_items() if isinstance(value, str) and name != "api_key"]
    key = idempotency(scope, request.headers.get("idempotency-key"), fields, photos)
    receipt = await receive_report(ctx, report, photos=photos, idempotency=key)
    entry = {"service_request_id": str(receipt.report_id), "token": receipt.token,
             "service_notice": _notice(receipt), "account_id": report.account_id}
    return respond(fmt, [entry], root="service_requests", item="request")


# An extension of GeoReport v2 for back offices that do not know the city's codes (a hotline, another
# city's system): service_code=auto files the request under the category the city's model finds in the
# description when it is sure enough, else under "other" for the dispatch centre to sort; counted either way.
LET_THE_CITY_DECIDE = "auto"


async def _route_by_description(ctx: AppContext, report: NewReport) -> None:
    from wecity.ai.suggest import cache_of, route

    if not report.description.strip():
        raise ValidationFailed("service_code=auto needs a description to tell the category from",
                               code="request.description", message_zh="service_code=auto 需要描述，平台据此判断类别")
    cache, var_dir, text = cache_of(ctx), ctx.settings.var_dir, report.description
    decided, routing = await ctx.db.read(lambda c: route(c, cache, var_dir, text, channel=Channel.OPEN311))
    if decided is None:
        raise ValidationFailed("the city cannot choose a category for this description; send a service_code",
                               code="request.service_code", message_zh="平台无法据描述判断类别，请提供 service_code")
    report.service_code, report.routing = decided, routing


def _notice(result: Receipt) -> str:
    expected = isoformat(result.expected_at) or ""
    if result.merged:
        return ("附近已有同类问题正在处理，您的诉求已并入该案件（并单），可凭查询码跟踪进度。 / "
                "This problem was already reported nearby; your report joined that case and can be followed "
                "with its tracking code.")
    return (f"已受理并派遣至责任部门，预计 {expected} 前办结。 / "
            f"Accepted and sent to the responsible department; expected to be resolved by {expected}.")


# -- reading requests ---------------------------------------------------------------------------------------

@router.get("/requests.{fmt}", summary="Query service requests")
async def list_requests(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    params = request.query_params
    await _check_jurisdiction(request, ctx, params)
    ids: list[int] | None = None
    if params.get("service_request_id"):
        try:
            ids = [int(x) for x in params["service_request_id"].split(",") if x.strip()]
        except ValueError:
            ids = [-1]  # ids are numbers; a non-number matches nothing
        ids = [i if 0 < i <= MAX_ID else -1 for i in ids]
    statuses = [s.strip() for s in params.get("status", "").split(",") if s.strip()]
    for s in statuses:
        if s not in ("open", "closed"):
            raise ValidationFailed("status must be open, closed or both", code="open311.status",
                                   message_zh="status 只能是 open、closed 或二者")
    q = service.RequestQuery(
        ids=ids, service_codes=[c for c in params.get("service_code", "").split(",") if c] or None,
        start=_parse_time(params, "start_date"), end=_parse_time(params, "end_date"), statuses=statuses or None,
        updated_after=_parse_time(params, "updated_after"), updated_before=_parse_time(params, "updated_before"),
        page=_parse_int(params, "page", 1) or 1,
        page_size=_parse_int(params, "page_size", None, maximum=service.MAX_PAGE_SIZE),
    )
    if q.start and q.end and q.start > q.end:
        raise ValidationFailed("start_date is after end_date", code="open311.dates",
                               message_zh="start_date 晚于 end_date")
    if q.start and q.end and (q.end - q.start) > service.DEFAULT_WINDOW:
        raise ValidationFailed("start_date and end_date may be at most 90 days apart", code="open311.dates",
                               message_zh="start_date 与 end_date 相隔不能超过 90 天")
    extensions = params.get("extensions", "").lower() == "true"
    locale = request_locale(request)
    now = ctx.clock.now()

    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        rows = service.find_requests(conn, q, now)
        notes = service.public_notes(conn, list({r.case_id for r in rows})) if extensions else {}
        return [service.request_entry(r, locale, _base_url(request), extensions=extensions,
                                      notes=notes.get(r.case_id)) for r in rows]

    data = await ctx.db.read(read)
    return respond(fmt, data, root="service_requests", item="request")


@router.get("/requests/{service_request_id}.{fmt}", summary="One service request")
async def get_request(request: Request, service_request_id: str, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    await _check_jurisdiction(request, ctx, request.query_params)
    extensions = request.query_params.get("extensions", "").lower() == "true"
    locale = request_locale(request)
    try:
        report_id = int(service_request_id)
    except ValueError:
        report_id = -1
    if not 0 < report_id <= MAX_ID:
        report_id = -1  # no such request, rather than a number the database cannot hold

    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        rows = service.find_requests(conn, service.RequestQuery(ids=[report_id]), ctx.clock.now())
        if not rows:
            raise NotFound(f"no service request {service_request_id}", code="open311.request_not_found",
                           message_zh=f"没有编号为 {service_request_id} 的诉求")
        notes = service.public_notes(conn, [rows[0].case_id]) if extensions else {}
        return [service.request_entry(rows[0], locale, _base_url(request), extensions=extensions,
                                      notes=notes.get(rows[0].case_id))]

    return respond(fmt, await ctx.db.read(read), root="service_requests", item="request")


@router.get("/tokens/{token}.{fmt}", summary="Service request id for a token")
async def get_token(request: Request, token: str, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    row = await ctx.db.read(service.request_by_token, token)
    if row is None:
        raise NotFound("unknown token", message_zh="未知的 token", code="open311.token_not_found")
    return respond(fmt, [{"service_request_id": str(row.id), "token": row.token}], root="service_requests",
                   item="request")


# -- mySociety request updates ------------------------------------------------------------------------------

@router.get("/servicerequestupdates.{fmt}", summary="Status updates of service requests (mySociety extension)")
async def list_updates(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    params = request.query_params
    await _check_jurisdiction(request, ctx, params)
    start, end = _parse_time(params, "start_date"), _parse_time(params, "end_date")
    data = await ctx.db.read(lambda conn: service.request_updates(conn, start=start, end=end, now=ctx.clock.now()))
    return respond(fmt, data, root="service_request_updates", item="request_update")


def _back_office_user(conn: sa.Connection, api_key: str) -> StaffUser | None:
    """The staff user a back office acts as: its key's, when the key is live and may write Open311."""
    grant = api_key_grant(conn, api_key)
    return api_key_user(conn, api_key) if grant is not None and grant.allows(OPEN311_WRITE) else None


# Back-office statuses -> the case engine's verb.
_UPDATE_ACTIONS = {
    "INVESTIGATING": "acknowledge", "ACTION_SCHEDULED": "acknowledge", "IN_PROGRESS": "start", "FIXED": "resolve",
    "CLOSED": "close", "NOT_COUNCILS_RESPONSIBILITY": "return", "INTERNAL_REFERRAL": "return", "OPEN": "note",
    "NO_FURTHER_ACTION": "note",
}


@router.post("/servicerequestupdates.{fmt}", summary="Push a status update from a department's back office",
             openapi_extra={"requestBody": {"content": {
                 "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/Open311Update"}}}}})
async def post_update(request: Request, fmt: str) -> Response:
    _check_format(fmt)
    ctx = get_ctx(request)
    form = await request.form(max_files=0, max_fields=50)
    api_key = str(form.get("api_key") or "")
    if not api_key:
        raise AuthenticationRequired("api_key is required", code="open311.api_key", message_zh="需要 api_key")
    # The key is checked by a read, before it is counted or anything is written: a made-up key would have a
    # count of its own (as many as a sender can make up), and would take the writer to be refused.
    user = await ctx.db.read(_back_office_user, api_key)
    if user is None:
        raise AuthenticationRequired("invalid api_key, or it lacks open311:write or belongs to no staff user",
                                     code="open311.api_key", message_zh="api_key 无效或未关联工作人员")
    await _within_rate_limit(ctx, api_key)
    try:
        report_id = int(str(form.get("service_request_id") or ""))
        if not 0 < report_id <= MAX_ID:
            raise ValueError
    except ValueError:
        raise ValidationFailed("service_request_id is required", code="open311.update",
                               message_zh="必须提供 service_request_id") from None
    status = str(form.get("status") or "").strip().upper()
    action = _UPDATE_ACTIONS.get(status)
    if action is None:
        raise ValidationFailed(f"status must be one of {', '.join(_UPDATE_ACTIONS)}", code="open311.update",
                               message_zh="status 无效")
    description = (_text(form, "description", 4000) or "").strip()
    media_url = _text(form, "media_url", 1000)
    evidence_ref = evidence.check_form(media_url, request.url.hostname) if media_url else None
    now = ctx.clock.now()
    address = request.client.host if request.client else None

    def apply(conn: sa.Connection) -> int:
        row = conn.execute(sa.select(reports.c.case_id).where(reports.c.id == report_id)).first()
        if row is None:
            raise NotFound(f"no service request {report_id}", code="open311.request_not_found",
                           message_zh=f"没有编号为 {report_id} 的诉求")
        actor = engine.Actor.staff(user, channel=Channel.OPEN311, source_address=address)
        case_id = row.case_id
        if action == "acknowledge":
            engine.acknowledge(conn, case_id, actor, now)
        elif action == "start":
            engine.start(conn, case_id, actor, now, note=description or None)
        elif action == "resolve":
            engine.resolve(conn, case_id, actor, now, note=description,
                           evidence_media_id=evidence_ref and evidence.check_stored(conn, evidence_ref))
        elif action == "close":
            engine.close(conn, case_id, actor, now, note=description or None)
        elif action == "return":
            reason = ReturnReason.NOT_OUR_DUTY if status == "NOT_COUNCILS_RESPONSIBILITY" else ReturnReason.OTHER
            engine.return_case(conn, case_id, reason, actor, now, note=description or status)
        else:
            return engine.add_note(conn, case_id, actor, now, description, public=True)
        from wecity.cases.models import timeline

        return int(conn.execute(sa.select(sa.func.max(timeline.c.id)).where(timeline.c.case_id == case_id))
                   .scalar_one())

    event_id = await ctx.db.write(apply)
    return respond(fmt, [{"update_id": f"{event_id}-{report_id}"}], root="service_request_updates",
                   item="request_update")


def _add_schemas(doc: dict[str, Any]) -> None:
    doc.setdefault("components", {}).setdefault("schemas", {}).update(_openapi_schemas())


def _openapi_schemas() -> dict[str, Any]:
    props = {name: {"type": "string"} for name in (
        "api_key", "jurisdiction_id", "service_code", "address_string", "address_id", "email", "device_id",
        "account_id", "first_name", "last_name", "phone", "description", "media_url", "coord_system")}
    props["lat"] = {"type": "number"}
    props["long"] = {"type": "number"}
    props["media"] = {"type": "string", "format": "binary"}
    props["service_code"]["description"] = (
        "a code from services.json, or `auto` (an extension): the city's model files the request under the "
        "category it finds in the description when it is at least 60% sure, else under `other` for the "
        "dispatch centre to sort")
    update = {name: {"type": "string"} for name in ("api_key", "service_request_id", "status", "description",
                                                    "updated_datetime", "media_url")}
    update["media_url"]["description"] = ("FIXED's evidence photo: the id of a photo uploaded here, or an http(s) URL "
                                          f"of one elsewhere (at most {evidence.MAX_LENGTH} characters)")
    return {"Open311NewRequest": {"type": "object", "required": ["api_key", "service_code"], "properties": props},
            "Open311Update": {"type": "object", "required": ["api_key", "service_request_id", "status"],
                              "properties": update}}

