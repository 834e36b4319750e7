"""Staff pages of the service loop: the department's applications by due date, the review page with its
actions (受理, 补正, 并联审查, 决定, special procedures, extension, revocation) and rectifications."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from wecity.core import csrf
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed, WeCityError
from wecity.core.http import MAX_ID, client_address, request_locale
from wecity.geo.service import city_today
from wecity.govservice import approvals, queries, ratings
from wecity.identity.audit import record_audit, record_refusal
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser
from wecity.web.forms import form_text
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect, not_allowed

router = APIRouter(include_in_schema=False)
MAX_TEXT = 2000


@router.get("/staff/applications")
async def queue(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    which = request.query_params.get("queue", "open")
    which = which if which in queries.QUEUES else "open"

    def read(conn: sa.Connection) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
        dept = approvals.staff_department(conn, user)
        if dept is None:
            return None, [], []
        return dept, queries.department_queue(conn, dept, which=which, today=city_today(conn, ctx.clock.now())), \
            queries.open_rectifications(conn, dept)

    dept, rows, rects = await ctx.db.read(read)
    return page(request, "web/staff_applications.html", user=user, department=dept, applications=rows,
                queue=which, queues=queries.QUEUES, rectifications=rects)


def _text(form: FormData, name: str, *, required: bool = False) -> str:
    value = form_text(form, name, limit=MAX_TEXT)
    if required and not value:
        raise ValidationFailed(f"fill in {name.replace('_', ' ')}", message_zh="请填写必填项", code="govservice.reason_required")
    return value


def _days(form: FormData) -> int:
    try:
        return int(str(form.get("days", "")))
    except ValueError:
        raise ValidationFailed("enter a number of working days", message_zh="请输入工作日天数",
                               code="govservice.bad_extension") from None


# Each action: the verb it runs, given (conn, application id, staff, now, form, key folder).
Action = Callable[[sa.Connection, int, StaffUser, Any, FormData, Any], Any]
ACTIONS: dict[str, Action] = {
    "accept": lambda c, i, u, n, f, k: approvals.accept(c, i, staff=u, now=n),
    "not-accept": lambda c, i, u, n, f, k: approvals.not_accept(
        c, i, staff=u, reason=_text(f, "reason", required=True), legal_basis=_text(f, "legal_basis", required=True), now=n),
    "supplement": lambda c, i, u, n, f, k: approvals.request_supplement(
        c, i, staff=u, note=_text(f, "note", required=True), materials=[str(m)[:64] for m in f.getlist("materials")][:50],
        now=n),
    "review": lambda c, i, u, n, f, k: approvals.review(c, i, staff=u, outcome=_text(f, "outcome"),
                                                        note=_text(f, "note") or None, now=n),
    "decide": lambda c, i, u, n, f, k: approvals.decide(
        c, i, staff=u, outcome=_text(f, "outcome"), reason=_text(f, "reason") or None,
        legal_basis=_text(f, "legal_basis") or None, now=n, key_dir=k),
    "special": lambda c, i, u, n, f, k: approvals.start_special_procedure(
        c, i, staff=u, kind=_text(f, "kind"), reason=_text(f, "reason", required=True), now=n),
    "special-end": lambda c, i, u, n, f, k: approvals.end_special_procedure(c, i, staff=u, now=n),
    "extend": lambda c, i, u, n, f, k: approvals.extend(c, i, staff=u, days=_days(f),
                                                        reason=_text(f, "reason", required=True), now=n),
    "revoke": lambda c, i, u, n, f, k: approvals.revoke_certificate(
        c, _text(f, "number", required=True), staff=u, reason=_text(f, "reason", required=True), now=n),
}


async def _application_page(request: Request, user: StaffUser, app_id: int, *, status: int = 200,
                            error: str | None = None) -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    _ = gettext_for(request_locale(request)).gettext

    def read(conn: sa.Connection) -> tuple[bool, dict[str, Any], str | None]:
        allowed = approvals.may_see(conn, user, app_id)
        # The form holds the applicant's personal data: every look by staff is in the audit log.
        record_audit(conn, at=now, actor=f"user:{user.username}", action="personal_data.view",
                     target=f"application:{app_id}", outcome="ok" if allowed else "denied",
                     source_address=client_address(request))
        if not allowed:
            return False, {}, None
        return True, queries.application_view(conn, app_id, today=city_today(conn, now)), \
            approvals.staff_department(conn, user)

    try:
        allowed, view, dept = await ctx.db.write(read)
    except NotFound:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such application."))
    if not allowed:
        return not_allowed(request, user)
    mine = dept == view["department"] or "admin" in user.roles
    my_review = next((r for r in view["reviews"] if r["department_code"] == dept and r["outcome"] is None), None)
    return page(request, "web/staff_application.html", user=user, status=status, app=view, error=error,
                owner=mine, my_review=my_review, department=dept, done=request.query_params.get("done", ""),
                is_supervisor=user.has("supervisor"))


@router.get("/staff/applications/{app_id}")
async def application(request: Request, user: OptionalStaff, app_id: int) -> Response:
    if user is None:
        return login_redirect(request)
    if not 0 < app_id <= MAX_ID:  # no row has it (and PostgreSQL would refuse to compare)
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such application."))
    return await _application_page(request, user, app_id)


@router.post("/staff/applications/{app_id}/{action}")
async def act(request: Request, user: OptionalStaff, app_id: int, action: str) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    if not 0 < app_id <= MAX_ID:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such application."))
    verb = ACTIONS.get(action)
    if verb is None:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such action."))
    form = await request.form(max_files=0, max_fields=100)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _application_page(request, user, app_id, status=403, error=_("The form expired. Please try again."))
    now = ctx.clock.now()
    try:
        if not await ctx.db.read(lambda c: approvals.may_see(c, user, app_id)):
            raise PermissionDenied("this application belongs to another department", message_zh="该申请不属于您的部门")
        await ctx.db.write(lambda c: verb(c, app_id, user, now, form, ctx.settings.var_dir))
    except NotFound:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such application."))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        # The step's transaction rolled back with its audit entry; the refusal is recorded on its own, as
        # the API's are (failed operations belong on the record).
        await record_refusal(ctx, actor=f"user:{user.username}", action=f"application.{action.replace('-', '_')}",
                             target=f"application:{app_id}", error=exc, source_address=client_address(request))
        return await _application_page(request, user, app_id, status=exc.status, error=exc.localized(locale))
    return RedirectResponse(f"/staff/applications/{app_id}?done={action}", status_code=303)


@router.post("/staff/rectifications/{rect_id}/close")
async def close_rectification(request: Request, user: OptionalStaff, rect_id: int) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    form = await request.form(max_files=0, max_fields=10)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                    message=_("The form expired. Please try again."))
    if not 0 < rect_id <= MAX_ID:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such page."))
    # The form's maxlength is the verb's limit: more is refused by the verb (govservice.note_too_long, as
    # through the API), never cut short; the bound here only keeps a field from being huge.
    limit = 10 * ratings.MAX_RECTIFICATION_TEXT
    try:
        await ctx.db.write(lambda c: ratings.close_rectification(
            c, rect_id, staff=user, department_code=approvals.staff_department(c, user),
            callback_note=form_text(form, "callback_note", limit=limit),
            measures=form_text(form, "measures", limit=limit), now=ctx.clock.now()))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        await record_refusal(ctx, actor=f"user:{user.username}", action="rectification.close",
                             target=f"rectification:{rect_id}", error=exc, source_address=client_address(request))
        return page(request, "web/error.html", user=user, status=exc.status, title=_("Not allowed"),
                    message=exc.localized(locale))
    return RedirectResponse("/staff/applications?done=rectification", status_code=303)
