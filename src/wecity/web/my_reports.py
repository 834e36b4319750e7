""""My reports": a citizen proves a phone number with a one-time SMS code and sees the reports made with it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from wecity.cases.queries import reports_for_phone
from wecity.core import csrf
from wecity.core.errors import WeCityError
from wecity.core.http import client_address, request_locale, with_retry_after
from wecity.identity.applicants import sign_citizen, sign_out_citizen
from wecity.identity.deps import CITIZEN_COOKIE, OptionalStaff, signed_in_phone
from wecity.web.i18n import gettext_for
from wecity.web.phone_codes import check_code, issue_code, normalise_phone, phone_variants
from wecity.web.render import page, safe_next

router = APIRouter(include_in_schema=False)
CITIZEN_SESSION_SECONDS = 30 * 60


async def _phone_of(request: Request) -> str | None:
    return await signed_in_phone(request.app.state.ctx, request.cookies.get(CITIZEN_COOKIE))


@router.get("/my")
async def my_reports(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    phone = await _phone_of(request)
    after = request.query_params.get("next")
    if phone is None:
        return page(request, "web/my_reports.html", user=user, step="phone", phone="", error=None,
                    next_path=safe_next(after, ""))
    if after:
        return RedirectResponse(safe_next(after, "/my"), status_code=303)
    found = await ctx.db.read(lambda conn: reports_for_phone(conn, phone_variants(phone)))
    masked = phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
    return page(request, "web/my_reports.html", user=user, step="list", reports=found, masked=masked)


@router.post("/my/code")
async def send_code(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    form = await request.form()
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    raw = str(form.get("phone", ""))[:40]
    after = safe_next(str(form.get("next", "")), "")
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/my_reports.html", user=user, status=403, step="phone", phone=raw,
                    error=_("The form expired. Please try again."), next_path=after)
    try:
        phone = normalise_phone(raw)
        # Each SMS costs the city and reaches a stranger's phone: counted per sender address, per number,
        # and for the whole city, the last so that many addresses together still cannot send thousands.
        await ctx.limits.hit("portal_code", client_address(request) or "-")
        await ctx.limits.hit("sms_phone", phone)
        await ctx.limits.hit("sms_total", "all")
        code = await ctx.db.write(lambda conn: issue_code(conn, phone, secret_key=ctx.settings.secret_key,
                                                          now=ctx.clock.now()))
    except WeCityError as exc:
        return with_retry_after(page(request, "web/my_reports.html", user=user, status=exc.status, step="phone",
                                     phone=raw, error=exc.localized(locale), next_path=after), exc)
    # The same answer whether or not the number has reports: the page does not tell who reported what.
    return page(request, "web/my_reports.html", user=user, step="code", phone=phone, error=None, next_path=after,
                demo_code=code if ctx.settings.demo else None)


@router.post("/my/verify")
async def verify_code(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    form = await request.form()
    _ = gettext_for(request_locale(request)).gettext
    phone = str(form.get("phone", ""))[:20]
    code = str(form.get("code", ""))[:10]
    after = safe_next(str(form.get("next", "")), "")
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/my_reports.html", user=user, status=403, step="code", phone=phone,
                    error=_("The form expired. Please try again."), next_path=after)
    now = ctx.clock.now()
    try:
        await ctx.limits.hit("portal_verify", client_address(request) or "-")
    except WeCityError as exc:
        return with_retry_after(page(request, "web/my_reports.html", user=user, status=exc.status, step="code",
                                     phone=phone, error=exc.localized(request_locale(request)), next_path=after), exc)
    good = bool(phone and code) and await ctx.db.write(
        lambda conn: check_code(conn, phone, code, secret_key=ctx.settings.secret_key, now=now))
    if not good:
        return page(request, "web/my_reports.html", user=user, status=400, step="code", phone=phone,
                    error=_("That code is wrong or has expired."), next_path=after)
    response = RedirectResponse(after or "/my", status_code=303)
    expires = int(now.timestamp()) + CITIZEN_SESSION_SECONDS
    response.set_cookie(CITIZEN_COOKIE, sign_citizen(ctx.settings.secret_key, phone, expires),
                        max_age=CITIZEN_SESSION_SECONDS, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.post("/my/forget")
async def forget(request: Request, user: OptionalStaff) -> Response:
    # The sign-in ends now on the server too: a copy of the cookie (a shared kiosk's) no longer works.
    ctx = request.app.state.ctx
    form = await request.form(max_files=0, max_fields=5)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        # Another site's page must not sign a citizen out (nor learn, by the redirect, that one was in).
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=403, title=_("The form expired"),
                    message=_("The form expired. Please try again."))
    token, now = request.cookies.get(CITIZEN_COOKIE), ctx.clock.now()
    await ctx.db.write(lambda conn: sign_out_citizen(conn, ctx.settings.secret_key, token, now))
    response = RedirectResponse("/my", status_code=303)
    response.delete_cookie(CITIZEN_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/my/data-uses")
async def my_data_uses(request: Request, user: OptionalStaff) -> Response:
    """Who read records about the signed-in citizen through the data platform ("who used my data")."""
    from wecity.datashare.access import normal_phone, subject_key
    from wecity.datashare.queries import count_uses_of_my_data, uses_of_my_data

    ctx = request.app.state.ctx
    phone = await _phone_of(request)
    if phone is None:
        return RedirectResponse("/my?next=/my/data-uses", status_code=303)
    now = ctx.clock.now()
    subject = subject_key(ctx.settings.secret_key, normal_phone(phone) or phone)
    asked = request.query_params.get("offset", "")
    offset = min(int(asked), 1_000_000) if asked.isdigit() else 0
    uses, total = await ctx.db.read(lambda conn: (
        uses_of_my_data(conn, subject, now=now, limit=USES_PAGE, offset=offset),
        count_uses_of_my_data(conn, subject, now=now)))
    masked = phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
    return page(request, "web/my_data_uses.html", user=user, uses=uses, masked=masked, total=total, offset=offset,
                first=offset + 1, last=offset + len(uses),
                earlier=offset + USES_PAGE if offset + len(uses) < total else None)


USES_PAGE = 100  # readings on one page of "who used my data"; the page links to the earlier ones
