"""The citizen's service pages (一网通办): the catalogue, a matter, applying with a form rendered from
its schema and pre-filled once-only, my applications, 补正, rating, my certificates, and the public
certificate check."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from wecity.core import csrf
from wecity.core.errors import NotFound, ValidationFailed, WeCityError
from wecity.core.http import MAX_ID, client_address, request_locale, with_retry_after
from wecity.core.settings import UPLOAD_FILES
from wecity.geo.service import city_timezone, city_today
from wecity.govservice import applications as apply
from wecity.govservice import certificates, queries, ratings
from wecity.govservice.steps import STATUS_LABELS
from wecity.identity.applicants import (
    Applicant,
    citizen_for_phone,
    enterprises_of,
    find_citizen,
)
from wecity.identity.deps import CITIZEN_COOKIE, OptionalStaff, signed_in_phone
from wecity.identity.service import StaffUser
from wecity.media import uploads
from wecity.notify.service import list_notifications
from wecity.web.i18n import gettext_for
from wecity.web.render import page

router = APIRouter(include_in_schema=False)
MESSAGES_SHOWN = 20


async def _phone(request: Request) -> str | None:
    return await signed_in_phone(request.app.state.ctx, request.cookies.get(CITIZEN_COOKIE))


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/my?" + urlencode({"next": here}), status_code=303)


async def _citizen(request: Request) -> Applicant | None:
    phone = await _phone(request)
    if phone is None:
        return None
    ctx = request.app.state.ctx
    found = await ctx.db.read(find_citizen, phone)
    return found or await ctx.db.write(lambda c: citizen_for_phone(c, phone, now=ctx.clock.now()))


def _not_found(request: Request, user: StaffUser | None) -> Response:
    _ = gettext_for(request_locale(request)).gettext
    return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                message=_("There is no such page."))


async def _over_limit(request: Request, user: StaffUser | None, rule: str) -> Response | None:
    """The rate limit `rule` for this client address: None, or the page saying when to come back."""
    try:
        await request.app.state.ctx.limits.hit(rule, client_address(request) or "-")
    except WeCityError as exc:
        return with_retry_after(page(request, "web/error.html", user=user, status=exc.status, title="429",
                                     message=exc.localized(request_locale(request))), exc)
    return None


def coerce_form(schema: dict[str, Any], form: FormData) -> dict[str, Any]:
    """An HTML form's strings as the schema's types; a value that does not convert is kept as typed, so
    the schema check names the field. A field sent empty is None: the applicant cleared it (an optional
    answer withdrawn, a wrong pre-filled value removed); a field not on the form is left out."""
    data: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") if isinstance(prop, dict) else None
        if kind == "boolean":
            if f"f.{name}.present" in form:
                data[name] = form.get(f"f.{name}") == "on"
            continue
        raw = form.get(f"f.{name}")
        if not isinstance(raw, str):
            continue
        if not raw.strip():
            data[name] = None
            continue
        text = raw.strip()
        try:
            data[name] = int(text) if kind == "integer" else float(text) if kind == "number" else text
        except ValueError:
            data[name] = text
        if isinstance(data[name], float) and not math.isfinite(data[name]):
            data[name] = text  # "nan", "inf": not a number, as the schema check then says
    return data


# -- the catalogue -------------------------------------------------------------------------------------------

@router.get("/services")
async def catalogue(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    q = request.query_params.get("q", "")[:100]
    department = request.query_params.get("department", "")[:64] or None
    kind = request.query_params.get("for")
    kind = kind if kind in ("citizen", "enterprise") else None
    refused = await _over_limit(request, user, "services_read")
    if refused is not None:
        return refused
    found = await ctx.db.read(lambda c: queries.search_matters(c, text=q or None, department=department,
                                                               applicant_kind=kind, limit=200))
    departments = await ctx.db.read(queries.departments_with_matters)
    return page(request, "web/services.html", user=user, matters=found, q=q, department=department or "",
                kind=kind or "", departments=departments, signed_in=await _phone(request) is not None)


@router.get("/services/matters/{code}")
async def matter(request: Request, user: OptionalStaff, code: str) -> Response:
    ctx = request.app.state.ctx
    refused = await _over_limit(request, user, "services_read")
    if refused is not None:
        return refused
    try:
        detail = await ctx.db.read(queries.matter_detail, code[:64])
    except NotFound:
        return _not_found(request, user)
    citizen = await _citizen(request)
    firms = await ctx.db.read(enterprises_of, citizen.id) if citizen else []
    return page(request, "web/services_matter.html", user=user, matter=detail, citizen=citizen, enterprises=firms)


@router.post("/services/matters/{code}/apply")
async def start(request: Request, user: OptionalStaff, code: str) -> Response:
    ctx = request.app.state.ctx
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    form = await request.form(max_files=0, max_fields=10)
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                    message=_("The form expired. Please try again."))
    acting = str(form.get("acting_for", "")).strip()
    # An enterprise's id, or nothing (for oneself); anything else is no enterprise's (0: refused as such).
    acting_for = (int(acting) if acting.isascii() and acting.isdigit() and len(acting) <= 10 and int(acting) <= MAX_ID
                  else 0 if acting else None)
    try:
        await ctx.limits.hit("services_write", citizen.phone or str(citizen.id))
        app_id = await ctx.db.write(lambda c: apply.start_application(
            c, citizen=citizen, matter_code=code[:64], acting_for=acting_for,
            now=ctx.clock.now(), idempotency_key=str(form.get("idempotency", ""))[:100] or None))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return with_retry_after(page(request, "web/error.html", user=user, status=exc.status, title=_("Not allowed"),
                                     message=exc.localized(locale)), exc)
    return RedirectResponse(f"/services/applications/{app_id}", status_code=303)


# -- my applications -----------------------------------------------------------------------------------------

@router.get("/services/mine")
async def mine(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    now = ctx.clock.now()

    def read(conn: sa.Connection) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        holders = [citizen.id, *(e.id for e in enterprises_of(conn, citizen.id))]
        wallet = [c for h in holders for c in certificates.wallet(conn, h, now=now)]
        # The notices each step sent to the applicant's inbox (the same ones go out by SMS).
        messages = list_notifications(conn, [f"applicant:{h}" for h in holders], limit=MESSAGES_SHOWN)
        return queries.applications_of(conn, holders, today=city_today(conn, now)), wallet, messages

    found, wallet, messages = await ctx.db.read(read)
    return page(request, "web/services_mine.html", user=user, applications=found, wallet=wallet,
                messages=messages, status_labels=STATUS_LABELS)


async def application_page(request: Request, user: StaffUser | None, citizen: Applicant, app_id: int, *,
                           status: int = 200, error: str | None = None, field_errors: list[dict[str, str]] | None = None,
                           typed: dict[str, Any] | None = None) -> Response:
    ctx = request.app.state.ctx

    def read(conn: sa.Connection) -> dict[str, Any]:
        apply.own_application(conn, app_id, citizen)
        return queries.applicant_view(conn, app_id, now=ctx.clock.now())

    try:
        view = await ctx.db.read(read)
    except NotFound:
        return _not_found(request, user)
    errors = {e["field"]: e for e in field_errors or []}
    values = {**view["form_data"], **(typed or {})}
    return page(request, "web/services_application.html", user=user, status=status, app=view, error=error,
                field_errors=errors, values=values, status_labels=STATUS_LABELS, levels=ratings.LEVELS,
                tags=ratings.TAGS, done=request.query_params.get("done", ""), upload_files=UPLOAD_FILES)


@router.get("/services/applications/{app_id}")
async def application(request: Request, user: OptionalStaff, app_id: int) -> Response:
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    if not 0 < app_id <= MAX_ID:  # no row has it (and PostgreSQL would refuse to compare)
        return _not_found(request, user)
    return await application_page(request, user, citizen, app_id)


def _verb(action: str, citizen: Applicant, app_id: int, form: FormData, schema: dict[str, Any], now: Any) -> Any:
    """The applicant's verb an action button names, given the posted form."""
    data = coerce_form(schema, form)
    if action == "save":
        return lambda c: apply.save_draft(c, app_id, citizen=citizen, form_data=data, now=now)
    if action == "submit":
        def save_and_submit(c: sa.Connection) -> None:
            apply.save_draft(c, app_id, citizen=citizen, form_data=data, now=now)
            apply.submit(c, app_id, citizen=citizen, now=now)
        return save_and_submit
    if action == "supply":
        return lambda c: apply.supply(c, app_id, citizen=citizen, form_data=data, now=now)
    if action == "withdraw":
        return lambda c: apply.withdraw(c, app_id, citizen=citizen, now=now)
    if action == "rate":
        level = str(form.get("level", ""))
        return lambda c: ratings.rate(c, app_id, citizen=citizen, level=int(level) if level.isdigit() else 0,
                                      tags=[str(t) for t in form.getlist("tags")][:8],
                                      comment=str(form.get("comment", "")), now=now)
    return None


@router.post("/services/applications/{app_id}/{action}")
async def act(request: Request, user: OptionalStaff, app_id: int, action: str) -> Response:
    ctx = request.app.state.ctx
    settings = ctx.settings
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    if not 0 < app_id <= MAX_ID:
        return _not_found(request, user)
    try:  # whose application it is (and, to upload, whether it takes files now), before the body is read
        await ctx.db.read(lambda c: apply.uploadable(c, app_id, citizen) if action == "upload"
                          else apply.own_application(c, app_id, citizen))
    except NotFound:
        return _not_found(request, user)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await application_page(request, user, citizen, app_id, status=exc.status,
                                      error=exc.localized(locale))
    # A text field holds at most a form's worth (max_part_size bounds the fields, not the files).
    try:
        form = await request.form(max_files=UPLOAD_FILES, max_fields=200, max_part_size=settings.max_form_bytes)
    except Exception:  # an oversized or malformed body is a form error like any other
        return await application_page(request, user, citizen, app_id, status=400,
                                      error=_("The file is too large or the form is damaged."))
    if not csrf.token_is_valid(request, settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await application_page(request, user, citizen, app_id, status=403,
                                      error=_("The form expired. Please try again."))
    now = ctx.clock.now()
    try:
        row = await ctx.db.read(lambda c: apply.own_application(c, app_id, citizen))
        definition = await ctx.db.read(lambda c: apply.matter_definition(c, row.matter_code, row.matter_version))
        await ctx.limits.hit("services_write", citizen.phone or str(citizen.id))
        if action == "upload":
            await _upload(ctx, citizen, app_id, form, now)
        else:
            verb = _verb(action, citizen, app_id, form, definition["form"], now)
            if verb is None:
                return _not_found(request, user)
            await ctx.db.write(verb)
    except NotFound:
        return _not_found(request, user)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        typed = coerce_form(definition["form"], form) if action in ("save", "submit", "supply") else None
        return with_retry_after(await application_page(
            request, user, citizen, app_id, status=exc.status, error=exc.localized(locale),
            field_errors=exc.details.get("fields"), typed=typed), exc)
    finally:
        await form.close()
    return RedirectResponse(f"/services/applications/{app_id}?done={action}", status_code=303)


async def _upload(ctx: Any, citizen: Applicant, app_id: int, form: FormData, now: Any) -> None:
    material = str(form.get("material", ""))[:64]
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    if not files:
        raise ValidationFailed("choose at least one file to upload", message_zh="请选择要上传的文件",
                               code="govservice.no_files")
    # The material is one the matter asks for, with room left, before any file is read and decoded.
    await ctx.db.read(lambda c: apply.uploadable(c, app_id, citizen, material))
    data = [await f.read(ctx.settings.max_upload_bytes + 1) for f in files[:UPLOAD_FILES]]
    async with uploads.staged(data, ctx, now=now) as staged:
        def write(conn: sa.Connection) -> None:
            ids = staged.record(conn)
            apply.attach_material(conn, app_id, citizen=citizen, material=material, media=ids, now=now)
        await ctx.db.write(write)
        staged.keep()


# -- certificates --------------------------------------------------------------------------------------------

@router.get("/verify")
async def verify_form(request: Request, user: OptionalStaff) -> Response:
    number = request.query_params.get("number", "").strip()[:64]
    if number:
        return RedirectResponse(f"/verify/{number}", status_code=303)
    return page(request, "web/verify.html", user=user, verdict=None, number="")


@router.get("/verify/{number}")
async def verify(request: Request, user: OptionalStaff, number: str) -> Response:
    """The page a certificate's QR code opens: genuine, revoked, expired, unknown or forged."""
    ctx = request.app.state.ctx
    refused = await _over_limit(request, user, "certificate_verify")
    if refused is not None:
        return refused
    verdict = (await ctx.db.read(certificates.verify_number, number[:64], ctx.clock.now())).public()
    face = verdict["certificate"]
    if face:
        # The signed document keeps UTC instants; a reader wants the city's calendar day.
        zone = await ctx.db.read(city_timezone)
        for key in ("issued_at", "valid_until"):
            if face[key]:
                face[key] = datetime.fromisoformat(face[key]).astimezone(zone).date().isoformat()
    return page(request, "web/verify.html", user=user, verdict=verdict, number=number[:64])
