"""Citizen pages: report a problem (photo, place, category), nearby open cases, tracking, rating."""

from __future__ import annotations

import asyncio
import math
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from wecity.ai.suggest import cache_of, route
from wecity.cases import citizen_voice, engine, queries
from wecity.cases.categories import Category, list_categories
from wecity.cases.choices import Channel
from wecity.cases.citizen_voice import looks_like_email
from wecity.cases.intake import MAX_DESCRIPTION, NewReport
from wecity.cases.receive import idempotency, receive_report
from wecity.core import csrf
from wecity.core.errors import NotFound, RateLimited, ValidationFailed, WeCityError
from wecity.core.http import client_address, request_locale, with_retry_after
from wecity.identity.deps import OptionalStaff
from wecity.web.address import place_line
from wecity.web.address import place_of_address as address_place
from wecity.web.forms import form_text
from wecity.web.i18n import N_, gettext_for
from wecity.web.phone_codes import normalise_phone
from wecity.web.render import city_name, page

# The report form's choice "not sure: let the city tell from my description".
LET_THE_CITY_DECIDE = "__auto"
router = APIRouter(include_in_schema=False)

MAX_PHOTOS = 3
IDEMPOTENCY_SCOPE = "portal.report"
NEARBY_RADIUS_M = 200.0
RATING_TAGS = [("fast", N_("Fast")), ("thorough", N_("Done properly")), ("polite", N_("Polite and clear")),
               ("slow", N_("Too slow")), ("not_fixed", N_("Not really fixed"))]
STAR_LABELS = {1: N_("Very poor"), 2: N_("Poor"), 3: N_("OK"), 4: N_("Good"), 5: N_("Very good")}


def _groups(categories: list[Category], locale: str) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for c in categories:
        name = c.group_zh if locale == "zh_CN" else c.group_en
        groups.setdefault(name, {"name": name, "categories": []})["categories"].append(c)
    return list(groups.values())


async def _report_form(request: Request, user: Any, *, status: int = 200, error: str | None = None,
                       values: dict[str, Any] | None = None, field_errors: dict[str, str] | None = None) -> Response:
    ctx = request.app.state.ctx
    categories = await ctx.db.read(lambda c: list_categories(c, channel=Channel.PORTAL))
    locale = request_locale(request)
    values = values or {}
    # A new key for a new form; a form shown again after an error keeps its key.
    key = values.get("idempotency_key") or uuid.uuid4().hex
    return page(request, "web/report.html", user=user, status=status, error=error, values=values,
                groups=_groups(categories, locale), max_photos=MAX_PHOTOS, idempotency_key=key,
                field_errors=field_errors or {}, max_upload_bytes=ctx.settings.max_upload_bytes,
                max_description=MAX_DESCRIPTION)


@router.get("/report")
async def report_form(request: Request, user: OptionalStaff) -> Response:
    return await _report_form(request, user)


def _text(form: FormData, name: str, limit: int) -> str:
    """A field the form fills itself (a category code, a key, a coordinate): what a browser never sends longer."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


# The fields a citizen types, at most the form's maxlength each (a browser counts a line break as one), and
# the field an error is shown beside. Longer text is refused, never cut: a cut description would lose its
# end while the page says it was sent.
TYPED = {"description": (MAX_DESCRIPTION, "description"), "address": (500, "where"), "phone": (40, "phone"),
         "email": (200, "email")}
MAX_ANSWER = 200  # a typed answer to a category's question


def _typed(form: FormData) -> dict[str, str]:
    """The typed fields, their line breaks as "\n"; ValidationFailed (form.too_long) for one over its limit."""
    return {name: form_text(form, name, limit=limit) for name, (limit, _field) in TYPED.items()}


def _answers(form: FormData, codes: set[str]) -> dict[str, str]:
    """The answers given to the chosen category's questions; ValidationFailed for one over MAX_ANSWER."""
    answers = {code: form_text(form, f"attribute[{code}]", limit=MAX_ANSWER) for code in sorted(codes)}
    return {code: answer for code, answer in answers.items() if answer}


def _too_long(exc: ValidationFailed, form: FormData, locale: str) -> str:
    """form_text's refusal in the words shown beside the field (which names the field already)."""
    _ = gettext_for(locale).gettext
    sent = len(str(form.get(exc.details["field"], "")).replace("\r\n", "\n").strip())
    return _("Too long: at most %(limit)d characters (%(sent)d sent). Shorten it.") % {
        "limit": exc.details["limit"], "sent": sent}


def _number(form: FormData, name: str) -> float | None:
    raw = _text(form, name, 40)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# The intake's errors (worded for API clients: "address_string", "attribute[...]") as the form says them,
# beside the field they are about.
FIELD_OF_ERROR = {"request.location": "where", "request.outside_city": "where", "request.description": "description",
                  "request.description_required": "description", "request.service_code": "category"}
PORTAL_WORDS = {
    "request.location": N_("Say where it is: put the pin on the map, or write the address or a landmark."),
    "request.outside_city": N_("That place is outside %(city)s: move the pin to where the problem is in the city."),
    "request.description": N_("The description is too long: shorten it to 4,000 characters."),
    "request.description_required": N_("Describe the problem: for this kind, the city needs it in words."),
    "request.service_code": N_("This kind of problem cannot be reported here now: choose another."),
}


def _city_name(request: Request) -> str:
    locale = request_locale(request)
    return city_name(request, locale, gettext_for(locale).gettext)


def _unanswered(category: Category | None, given: dict[str, str], locale: str) -> dict[str, str]:
    """The category's required questions left unanswered, each by its field, in the reader's words."""
    _ = gettext_for(locale).gettext
    missing: dict[str, str] = {}
    if category is None:
        return missing
    for a in category.attributes or []:
        if a.get("required") and a.get("variable", True) and not given.get(a["code"]):
            question = (a.get("description_zh") if locale == "zh_CN" else a.get("description_en")) or a["code"]
            missing[f"attr-{category.code}-{a['code']}"] = _("Answer “%(question)s”.") % {"question": question}
    return missing


def _phone(raw: str) -> str | None:
    """The number as "my reports" will look it up; left as typed when it is not a plain phone number."""
    if not raw:
        return None
    try:
        return normalise_phone(raw)
    except ValidationFailed:
        return raw


@router.post("/report")
async def submit(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    settings = ctx.settings
    _ = gettext_for(request_locale(request)).gettext
    # A text field holds at most a form's worth (max_part_size bounds the fields, not the files).
    try:
        form = await request.form(max_files=MAX_PHOTOS + 1, max_fields=100, max_part_size=settings.max_form_bytes)
    except Exception:  # a malformed or oversized body is the sender's problem, shown as a form error
        return await _report_form(request, user, status=400, error=_("The photo is too large or the form is damaged."))
    values = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    if not csrf.token_is_valid(request, settings.secret_key, _text(form, csrf.CSRF_FIELD, 100)):
        return await _report_form(request, user, status=403, values=values,
                                  error=_("The form expired. Please try again."))
    try:
        # Anyone may report without an account, so the address is what a flood is counted by.
        await ctx.limits.hit("portal_report", client_address(request) or "-")
    except RateLimited as exc:
        await form.close()
        shown = await _report_form(request, user, status=exc.status, values=values,
                                   error=exc.localized(request_locale(request)))
        return with_retry_after(shown, exc)
    uploads = [v for k, v in form.multi_items() if k == "photo" and isinstance(v, UploadFile) and v.filename]
    if len(uploads) > MAX_PHOTOS:
        return await _report_form(request, user, status=400, values=values,
                                  field_errors={"photo": _("At most %(n)d photos.") % {"n": MAX_PHOTOS}})
    try:
        raw = [await u.read(settings.max_upload_bytes + 1) for u in uploads]
    finally:
        await form.close()
    try:
        typed = _typed(form)
    except ValidationFailed as exc:
        return await _report_form(request, user, status=400, values=values, field_errors={
            TYPED[exc.details["field"]][1]: _too_long(exc, form, request_locale(request))})
    service_code = _text(form, "service_code", 64)
    if not service_code:
        return await _report_form(request, user, status=400, values=values,
                                  field_errors={"category": _("Choose what kind of problem it is.")})
    routing = None
    if service_code == LET_THE_CITY_DECIDE:
        description = typed["description"]
        if not description:
            return await _report_form(request, user, status=400, values=values, field_errors={
                "description": _("Describe the problem, so that the city can tell what kind it is.")})
        cache, var_dir = cache_of(ctx), settings.var_dir
        decided, routing = await ctx.db.read(lambda c: route(c, cache, var_dir, description, channel=Channel.PORTAL))
        if decided is None:
            return await _report_form(request, user, status=400, values=values, field_errors={
                "category": _("The city could not tell the kind of problem from your words: choose it.")})
        service_code = decided
    email = typed["email"]
    if email and not looks_like_email(email):
        return await _report_form(request, user, status=400, values=values, field_errors={
            "email": _("Check the e-mail address: it should look like name@example.com.")})
    # The form carries every category's detail fields; only the chosen category's are sent on.
    chosen = next((c for c in await ctx.db.read(lambda c: list_categories(c, channel=Channel.PORTAL))
                   if c.code == service_code), None)
    codes = {a["code"] for a in (chosen.attributes or [])} if chosen else set()
    try:
        attributes = _answers(form, codes)
    except ValidationFailed as exc:
        code = exc.details["field"][len("attribute["):-1]
        return await _report_form(request, user, status=400, values=values, field_errors={
            f"attr-{service_code}-{code}": _too_long(exc, form, request_locale(request))})
    missing = _unanswered(chosen, attributes, request_locale(request))
    if chosen and chosen.description_required and not typed["description"]:
        missing["description"] = _("Describe the problem: for this kind, the city needs it in words.")
    if missing:
        return await _report_form(request, user, status=400, values=values, field_errors={
            name: message for name, message in missing.items()})
    lat, lon, address = _number(form, "lat"), _number(form, "long"), typed["address"]
    placed = ""
    if (lat is None or lon is None) and address:
        # No pin but an address in words: placed at the gazetteer's best match in the city, else kept without
        # a place (the dispatch centre reads the words); the tracking page says which.
        found = await asyncio.to_thread(address_place, ctx, address)  # reads the gazetteer: off the event loop
        lat, lon, placed = (found.lat, found.lon, "address") if found else (None, None, "none")
    report = NewReport(
        service_code=service_code, channel=Channel.PORTAL, lat=lat, long=lon,
        address=address or None, place_from_address=placed == "address",
        description=typed["description"], attributes=attributes, phone=_phone(typed["phone"]), email=email or None,
        lang=request_locale(request), routing=routing)
    # A repeated post of the same form (a double tap, a retry on a bad connection) returns the first
    # report instead of making a second one.
    fields = [(name, value) for name, value in values.items() if name not in (csrf.CSRF_FIELD, "idempotency_key")]
    try:
        key = idempotency(IDEMPOTENCY_SCOPE, _text(form, "idempotency_key", 64) or None, fields, raw)
        receipt = await receive_report(ctx, report, photos=raw, idempotency=key)
    except WeCityError as exc:
        if exc.status >= 500:
            raise  # the city's fault, shown as such by the error page, not as a mistake in the form
        error = exc.localized(request_locale(request))
        if exc.code == "request.idempotency_mismatch":
            values.pop("idempotency_key", None)  # the edited form is a new report: give it a new key
            error = _("This form was already sent with other content. Your changes are kept: send it again "
                      "to make a new report.")
        field = FIELD_OF_ERROR.get(exc.code or "") or ("photo" if (exc.code or "").startswith("media.") else None)
        if field:
            message = _(PORTAL_WORDS[exc.code]) % {"city": _city_name(request)} if exc.code in PORTAL_WORDS else error
            return await _report_form(request, user, status=exc.status, values=values,
                                      field_errors={field: message})
        return await _report_form(request, user, status=exc.status, values=values, error=error)
    placed_query = f"&placed={placed}" if placed else ""
    return RedirectResponse(f"/track/{receipt.token}?new={'merged' if receipt.merged else 'case'}{placed_query}",
                            status_code=303)


@router.get("/report/nearby")
async def nearby(request: Request, user: OptionalStaff, service_code: str = "", lat: str = "",
                 long: str = "") -> Response:
    """Open cases of this category near the pin (an htmx fragment shown before the report is sent)."""
    ctx = request.app.state.ctx
    found: list[dict[str, Any]] = []
    try:
        flat, flon = float(lat), float(long)
    except ValueError:
        flat = flon = math.nan
    if service_code and math.isfinite(flat) and math.isfinite(flon) and -90 <= flat <= 90 and -180 <= flon <= 180:
        now = ctx.clock.now()
        found = await ctx.db.read(lambda conn: queries.nearby_open_cases(
            conn, lat=flat, lon=flon, category_code=service_code[:64], now=now, radius_m=NEARBY_RADIUS_M, limit=5))
    return page(request, "web/_nearby.html", user=user, cases=found, radius=int(NEARBY_RADIUS_M),
                asked=bool(service_code and math.isfinite(flat)))


@router.get("/track")
async def track_form(request: Request, user: OptionalStaff, code: str = "") -> Response:
    code = code.strip()
    if code:
        return RedirectResponse(f"/track/{code[:40]}", status_code=303)
    return page(request, "web/track_form.html", user=user, error=None)


@router.get("/track/{token}")
async def track(request: Request, user: OptionalStaff, token: str, new: str = "", placed: str = "") -> Response:
    ctx = request.app.state.ctx
    found = await _tracked(ctx, token)
    if found is None:
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/track_form.html", user=user, status=404,
                    error=_("No report has this tracking code. Check it and try again."))
    report = found["report"]
    # Right after a report sent without a pin: where its address placed it, in words (from the stored place).
    placed_at = (await asyncio.to_thread(place_line, ctx, report["lat"], report["long"], request_locale(request))
                 if placed == "address" and report["lat"] is not None else "")
    return page(request, "web/track.html", user=user, token=token, new=new, tags=RATING_TAGS, star_labels=STAR_LABELS,
                placed=placed if new else "", placed_at=placed_at, **found)


async def _tracked(ctx: Any, token: str) -> dict[str, Any] | None:
    """The reporter's view of their report, or None for a code that names none."""
    now = ctx.clock.now()

    def read(conn: Any) -> dict[str, Any]:
        found = queries.report_by_token(conn, token[:40])
        found["urge"] = citizen_voice.urge_state(conn, found["case"]["id"], now)
        return found

    try:
        found: dict[str, Any] = await ctx.db.read(read)
    except NotFound:
        return None
    found["can_reopen"] = queries.can_say_not_fixed(found["case"], now)
    return found


@router.post("/track/{token}/rate")
async def rate(request: Request, user: OptionalStaff, token: str) -> Response:
    ctx = request.app.state.ctx
    form = await request.form(max_files=0, max_fields=20)
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/error.html", user=user, status=403, title=_("The form expired"),
                    message=_("The form expired. Please try again."))
    known = {code for code, _label in RATING_TAGS}
    tags = [t for t in form.getlist("tags") if isinstance(t, str) and t in known]
    try:
        stars = int(str(form.get("stars", "")))
    except ValueError:
        stars = 0
    try:
        # Counted per address as the API's rating (a tracking code guessed at, a rating pressed again and again).
        await ctx.limits.hit("case_rating", client_address(request) or "-")
    except RateLimited as exc:
        shown = page(request, "web/track_form.html", user=user, status=429, error=exc.localized(locale))
        return with_retry_after(shown, exc)
    try:
        if not 1 <= stars <= 5:
            raise ValidationFailed("choose 1 to 5 stars", message_zh="请选择 1 到 5 星", code="rating.stars")
        comment = form_text(form, "comment", limit=1000)
        await ctx.db.write(lambda conn: engine.rate(conn, token[:40], stars, ctx.clock.now(), tags=tags,
                                                    comment=comment))
    except WeCityError as exc:
        found = await _tracked(ctx, token)
        if found is None:
            return page(request, "web/track_form.html", user=user, status=404,
                        error=_("No report has this tracking code. Check it and try again."))
        return page(request, "web/track.html", user=user, status=exc.status, token=token, new="",
                    tags=RATING_TAGS, star_labels=STAR_LABELS, rating_error=exc.localized(locale), **found)
    return RedirectResponse(f"/track/{token[:40]}?new=rated", status_code=303)


@router.get("/cases/{case_id}")
async def case_page(request: Request, user: OptionalStaff, case_id: int) -> Response:
    """A case as the public sees it (no personal data): what "follow it instead" links to."""
    ctx = request.app.state.ctx
    try:
        case = await ctx.db.read(queries.public_view, case_id)
    except NotFound:
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such case."))
    followed = request.query_params.get("followed")
    return page(request, "web/case_public.html", user=user, case=case,
                followed=followed if followed in ("new", "again") else None)
