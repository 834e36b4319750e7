"""The citizen after submitting: "still not fixed" (重办), an update or a photo, "please hurry" (催办), and
"me too" (关注 / +1).

The tracking code is the reporter's key (as for rating); following needs no key at all, so each of these is
counted per client address (`portal_voice`) before any work is done.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from wecity.cases import citizen_voice, engine
from wecity.core import csrf
from wecity.core.errors import NotFound, ValidationFailed, WeCityError
from wecity.core.http import client_address, request_locale, with_retry_after
from wecity.identity.applicants import keyed_hash
from wecity.identity.deps import OptionalStaff
from wecity.media import uploads
from wecity.web.citizen import RATING_TAGS, STAR_LABELS, _tracked
from wecity.web.forms import form_text
from wecity.web.i18n import gettext_for
from wecity.web.render import page

router = APIRouter(include_in_schema=False)

FOLLOW_COOKIE = "wecity_follow"
FOLLOW_COOKIE_SECONDS = 365 * 24 * 3600
MAX_NOTE = 1000


async def _track_page_again(request: Request, user: Any, token: str, status: int, error: str,
                            where: str) -> Response:
    """The tracking page with the error beside the form that caused it (`where`: reopen or update)."""
    ctx = request.app.state.ctx
    found = await _tracked(ctx, token)
    if found is None:
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/track_form.html", user=user, status=404,
                    error=_("No report has this tracking code. Check it and try again."))
    return page(request, "web/track.html", user=user, status=status, token=token, new="", tags=RATING_TAGS,
                star_labels=STAR_LABELS, voice_error={where: error}, **found)


async def _say(request: Request, user: Any, token: str, where: str, done: str,
               verb: Callable[[Any, str, FormData], Awaitable[None]]) -> Response:
    """A small form on the tracking page (`where`): its form token checked and the client address counted
    before `verb(ctx, token, form)` runs; an error is shown beside that form, success goes to `?new=done`."""
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    token = token[:40]
    form = await request.form(max_files=0, max_fields=10)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _track_page_again(request, user, token, 403, _("The form expired. Please try again."), where)
    try:
        await ctx.limits.hit("portal_voice", client_address(request) or "-")
        await verb(ctx, token, form)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        shown = await _track_page_again(request, user, token, exc.status, exc.localized(locale), where)
        return with_retry_after(shown, exc)
    return RedirectResponse(f"/track/{token}?new={done}", status_code=303)


async def _reopen(ctx: Any, token: str, form: FormData) -> None:
    note = form_text(form, "note", limit=MAX_NOTE)
    if not note:
        raise ValidationFailed("say what is still wrong", message_zh="请说明仍未解决的问题", code="case.note")
    await ctx.db.write(lambda conn: engine.citizen_reopen(conn, token, ctx.clock.now(), note))


async def _urge(ctx: Any, token: str, form: FormData) -> None:
    await ctx.db.write(lambda conn: citizen_voice.urge(conn, token, ctx.clock.now()))


@router.post("/track/{token}/reopen")
async def still_not_fixed(request: Request, user: OptionalStaff, token: str) -> Response:
    return await _say(request, user, token, "reopen", "reopened", _reopen)


@router.post("/track/{token}/urge")
async def urge(request: Request, user: OptionalStaff, token: str) -> Response:
    return await _say(request, user, token, "urge", "urged", _urge)


@router.post("/track/{token}/update")
async def add_update(request: Request, user: OptionalStaff, token: str) -> Response:
    ctx = request.app.state.ctx
    settings = ctx.settings
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    token = token[:40]
    # The code is the reporter's key: a photo is taken in and decoded only for one that names a report whose
    # case is still open.
    try:
        await ctx.db.read(lambda conn: citizen_voice.updatable_case(conn, token))
    except NotFound:
        return page(request, "web/track_form.html", user=user, status=404,
                    error=_("No report has this tracking code. Check it and try again."))
    except WeCityError as exc:
        return await _track_page_again(request, user, token, exc.status, exc.localized(locale), "update")
    # A text field holds at most a form's worth (max_part_size bounds the fields, not the files).
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=settings.max_form_bytes)
    except Exception:  # an oversized or malformed body is the sender's problem, shown beside the form
        return await _track_page_again(request, user, token, 400,
                                       _("The photo is too large or the form is damaged."), "update")
    if not csrf.token_is_valid(request, settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        await form.close()
        return await _track_page_again(request, user, token, 403, _("The form expired. Please try again."), "update")
    upload = form.get("photo")
    try:
        await ctx.limits.hit("portal_voice", client_address(request) or "-")
        raw = await upload.read(settings.max_upload_bytes + 1) if isinstance(upload, UploadFile) and upload.filename \
            else None
        await form.close()
        note = form_text(form, "note", limit=MAX_NOTE)
        now = ctx.clock.now()
        async with uploads.staged([raw] if raw else [], ctx, now=now) as photo:

            def run(conn: Any) -> None:
                media = photo.record(conn)
                citizen_voice.add_update(conn, token, now, note, media_id=media[0] if media else None)

            await ctx.db.write(run)
            photo.keep()
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        shown = await _track_page_again(request, user, token, exc.status, exc.localized(locale), "update")
        return with_retry_after(shown, exc)
    return RedirectResponse(f"/track/{token}?new=updated", status_code=303)


@router.post("/cases/{case_id}/follow")
async def follow(request: Request, user: OptionalStaff, case_id: int) -> Response:
    """关注 / +1 on a case's public page: counted once per person (their e-mail address if they give one,
    else this browser), and told by e-mail when it is fixed if they gave an address."""
    ctx = request.app.state.ctx
    settings = ctx.settings
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    form = await request.form(max_files=0, max_fields=10)
    if not csrf.token_is_valid(request, settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/error.html", user=user, status=403, title=_("The form expired"),
                    message=_("The form expired. Please try again."))
    browser = request.cookies.get(FOLLOW_COOKIE) or secrets.token_hex(16)
    try:
        await ctx.limits.hit("portal_voice", client_address(request) or "-")
        email = form_text(form, "email", limit=200) or None
        key = keyed_hash(settings.secret_key, "follow", email.lower() if email else f"browser:{browser[:64]}")
        added = await ctx.db.write(lambda conn: citizen_voice.follow(
            conn, case_id, follower_key=key, now=ctx.clock.now(), email=email, lang=locale))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return with_retry_after(page(request, "web/error.html", user=user, status=exc.status,
                                     title=_("Not followed"), message=exc.localized(locale)), exc)
    response = RedirectResponse(f"/cases/{case_id}?followed={'new' if added else 'again'}", status_code=303)
    response.set_cookie(FOLLOW_COOKIE, browser[:64], max_age=FOLLOW_COOKIE_SECONDS, httponly=True, samesite="lax",
                        path="/", secure=request.url.scheme == "https")
    return response
