"""Staff pages: the department queue by SLA urgency, the dispatch centre's view, and the case page's actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from wecity.ai import duplicates
from wecity.cases import engine, queries
from wecity.cases.choices import Channel
from wecity.core import csrf
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed, WeCityError
from wecity.core.http import client_address, request_locale
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser, list_departments
from wecity.media import uploads
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect

router = APIRouter(include_in_schema=False)

MAX_NOTE = 2000
QUEUE_PAGE = 500  # cases shown on a queue page, the most urgent first


def sees_every_department(user: StaffUser) -> bool:
    return user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)


@router.get("/staff/queue")
async def queue(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    every_department = sees_every_department(user) and request.query_params.get("all") == "1"
    name = "all" if every_department else "department"
    cases = await ctx.db.read(lambda conn: queries.queue(conn, user, now, name=name, limit=QUEUE_PAGE))
    return page(request, "web/staff_queue.html", user=user, cases=cases, all=every_department,
                can_see_all=sees_every_department(user))


@router.get("/staff/dispatch")
async def dispatch_view(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not sees_every_department(user):
        return _forbidden(request, user)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    cases = await ctx.db.read(lambda conn: queries.queue(conn, user, now, name="dispatch", limit=QUEUE_PAGE))
    return page(request, "web/staff_dispatch.html", user=user, cases=cases)


def _forbidden(request: Request, user: StaffUser | None) -> Response:
    _ = gettext_for(request_locale(request)).gettext
    return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                message=_("This page is for another department or role."))


async def _case_page(request: Request, user: StaffUser, case_id: int, *, status: int = 200,
                     error: str | None = None) -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    try:
        case = await ctx.db.read(lambda conn: queries.case_detail(conn, case_id, now))
    except NotFound:
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such case."))
    if not sees_every_department(user) and case["department_id"] != user.department_id:
        return _forbidden(request, user)
    departments = await ctx.db.read(list_departments)
    proposals = await ctx.db.read(lambda c: duplicates.proposals_for(c, case_id)) if sees_every_department(user) else []
    handler = user.has(Role.HANDLER) and (user.department_id == case["department_id"] or user.has(Role.ADMIN))
    return page(request, "web/staff_case.html", user=user, status=status, case=case, error=error,
                departments=departments, proposals=proposals, is_handler=handler, is_dispatcher=sees_every_department(user),
                is_supervisor=user.has(Role.SUPERVISOR), done=request.query_params.get("done", ""))


@router.get("/staff/cases/{case_id}")
async def case_view(request: Request, user: OptionalStaff, case_id: int) -> Response:
    if user is None:
        return login_redirect(request)
    return await _case_page(request, user, case_id)


def _note(form: FormData, required: bool = False) -> str:
    note = str(form.get("note", "")).strip()[:MAX_NOTE]
    if required and not note:
        raise ValidationFailed("write a note", message_zh="请填写说明", code="case.note")
    return note


def _department(form: FormData) -> int:
    try:
        return int(str(form.get("department_id", "")))
    except ValueError:
        raise ValidationFailed("choose a department", message_zh="请选择部门", code="case.department") from None


def _case_number(form: FormData) -> int:
    try:
        return int(str(form.get("into_case_id", "")).strip().lstrip("#"))
    except ValueError:
        raise ValidationFailed("enter the number of the case to merge into", message_zh="请输入要并入的案件编号",
                               code="case.merge") from None


def _proposal(form: FormData) -> int:
    try:
        return int(str(form.get("proposal_id", "")))
    except ValueError:
        raise ValidationFailed("no duplicate proposal was chosen", message_zh="未选择并单建议",
                               code="ai.duplicate_not_found") from None


# Each action: the engine verb it calls, given (conn, case_id, actor, now, form, evidence media id).
Action = Callable[[Any, int, engine.Actor, Any, FormData, str | None], Any]
ACTIONS: dict[str, Action] = {
    "acknowledge": lambda c, i, a, n, f, m: engine.acknowledge(c, i, a, n),
    "return": lambda c, i, a, n, f, m: engine.return_case(c, i, str(f.get("reason", "")), a, n, _note(f) or None),
    "start": lambda c, i, a, n, f, m: engine.start(c, i, a, n, _note(f) or None),
    "resolve": lambda c, i, a, n, f, m: engine.resolve(c, i, a, n, note=_note(f, True), evidence_media_id=m),
    "dispatch": lambda c, i, a, n, f, m: engine.dispatch(c, i, _department(f), a, n, _note(f) or None),
    "transfer": lambda c, i, a, n, f, m: engine.transfer(c, i, _department(f), a, n, _note(f, True)),
    "verify": lambda c, i, a, n, f, m: engine.verify(c, i, a, n, _note(f) or None),
    "reject": lambda c, i, a, n, f, m: engine.reject_resolution(c, i, a, n, _note(f, True)),
    "close": lambda c, i, a, n, f, m: engine.close(c, i, a, n, _note(f) or None),
    "reopen": lambda c, i, a, n, f, m: engine.reopen(c, i, a, n, _note(f, True)),
    "note": lambda c, i, a, n, f, m: engine.add_note(c, i, a, n, _note(f, True), public=f.get("public") == "1",
                                                     media_id=m),
    "merge": lambda c, i, a, n, f, m: engine.merge(c, i, _case_number(f), a, n),
    "followup": lambda c, i, a, n, f, m: engine.close_followup(c, i, a, n, _note(f, True)),
    "merge-proposal": lambda c, i, a, n, f, m: duplicates.merge_proposal(c, _proposal(f), a, n),
    "not-duplicate": lambda c, i, a, n, f, m: duplicates.dismiss(c, _proposal(f), a, n),
}


@router.post("/staff/cases/{case_id}/{action}")
async def act(request: Request, user: OptionalStaff, case_id: int, action: str) -> Response:
    """Run one case-engine verb as this staff user; the engine checks role, department and state."""
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    settings = ctx.settings
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    verb = ACTIONS.get(action)
    if verb is None:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such action."))
    try:
        form = await request.form(max_files=2, max_fields=50, max_part_size=settings.max_upload_bytes)
    except Exception:  # an oversized or malformed body is shown as a form error, like any other
        return await _case_page(request, user, case_id, status=400,
                                error=_("The photo is too large or the form is damaged."))
    if not csrf.token_is_valid(request, settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _case_page(request, user, case_id, status=403, error=_("The form expired. Please try again."))
    upload = form.get("evidence")
    raw = await upload.read(settings.max_upload_bytes + 1) if isinstance(upload, UploadFile) and upload.filename else None
    await form.close()
    actor = engine.Actor.staff(user, channel=Channel.PORTAL, source_address=client_address(request))
    try:
        if not sees_every_department(user) and action in ("dispatch", "transfer", "verify", "reject", "close",
                                                            "reopen", "merge", "merge-proposal",
                                                            "not-duplicate"):
            raise PermissionDenied("needs the dispatcher or supervisor role", message_zh="需要派遣员或督办角色")
        now = ctx.clock.now()
        async with uploads.staged([raw] if raw else [], ctx, now=now) as evidence:

            def run(conn: Any) -> None:
                media_ids = evidence.record(conn)
                verb(conn, case_id, actor, now, form, media_ids[0] if media_ids else None)

            await ctx.db.write(run)
            evidence.keep()
    except WeCityError as exc:
        if exc.status >= 500:
            raise  # the city's fault, shown as such by the error page, not as a mistake in the form
        return await _case_page(request, user, case_id, status=exc.status, error=exc.localized(locale))
    return RedirectResponse(f"/staff/cases/{case_id}?done={action}", status_code=303)
