"""Group robots in the staff portal: a staff member's own page (`/staff/me`: the mobile number and WeCom
userid the robots @mention them by) and the administrators' page of robots (`/staff/robots`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from wecity.core import csrf
from wecity.core.errors import WeCityError
from wecity.core.http import client_address, request_locale
from wecity.core.outbound import OutboundPolicy
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser, list_departments, record_audit
from wecity.notify import robots
from wecity.notify.choices import RobotEvent, RobotKind
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect, not_allowed

router = APIRouter(include_in_schema=False)


async def _form(request: Request) -> tuple[Any, bool]:
    form = await request.form(max_files=0, max_fields=100)
    ctx = request.app.state.ctx
    return form, csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, "")))


async def _me_page(request: Request, user: StaffUser, *, status: int = 200, error: str | None = None,
                   done: bool = False) -> Response:
    ctx = request.app.state.ctx
    link = await ctx.db.read(lambda c: robots.get_link(c, user.id))
    return page(request, "web/staff_me.html", user=user, link=link or {}, status=status, error=error, done=done)


@router.get("/staff/me")
async def me(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    return await _me_page(request, user, done=request.query_params.get("done") == "1")


@router.post("/staff/me")
async def set_me(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    _ = gettext_for(request_locale(request)).gettext
    form, fresh = await _form(request)
    if not fresh:
        return await _me_page(request, user, status=403, error=_("The form expired. Please try again."))
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    try:
        await ctx.db.write(lambda c: robots.set_link(
            c, user_id=user.id, mobile=str(form.get("mobile", ""))[:40], now=now,
            wecom_userid=str(form.get("wecom_userid", ""))[:100], source_address=client_address(request)))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _me_page(request, user, status=exc.status, error=exc.localized(request_locale(request)))
    return RedirectResponse("/staff/me?done=1", status_code=303)


async def _robots_page(request: Request, user: StaffUser, *, status: int = 200, error: str | None = None,
                       secret: str | None = None) -> Response:
    ctx = request.app.state.ctx
    listed = [robots.public_robot(r) for r in await ctx.db.read(robots.list_robots)]
    departments = await ctx.db.read(list_departments)
    return page(request, "web/staff_robots.html", user=user, robots=listed, departments=departments,
                kinds=list(RobotKind), events=list(RobotEvent), status=status, error=error, secret=secret,
                public_url=ctx.settings.public_url)


@router.get("/staff/robots")
async def robots_page(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    return await _robots_page(request, user)


@router.post("/staff/robots")
async def add_robot(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    _ = gettext_for(request_locale(request)).gettext
    form, fresh = await _form(request)
    if not fresh:
        return await _robots_page(request, user, status=403, error=_("The form expired. Please try again."))
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    kind = str(form.get("kind", ""))
    secret = str(form.get("secret", "")).strip()[:300] or None

    def write(conn: Any) -> dict[str, Any]:
        robot = robots.set_robot(
            conn, name=str(form.get("name", ""))[:200], kind=kind, url=str(form.get("url", "")).strip()[:600],
            secret=secret, department_ids=[int(d) for d in form.getlist("departments") if str(d).isdigit()],
            events=[str(e) for e in form.getlist("events")], locale=str(form.get("locale", "zh_CN")), now=now,
            policy=OutboundPolicy.from_settings(ctx.settings))
        record_audit(conn, at=now, actor=f"user:{user.id}", action="robot.set", target=f"robot:{robot['id']}",
                     source_address=client_address(request),
                     detail={"name": robot["name"], "kind": robot["kind"], "departments": robot["department_ids"],
                             "events": robot["events"], "active": robot["active"]})
        return robot

    try:
        robot = await ctx.db.write(write)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _robots_page(request, user, status=exc.status, error=exc.localized(request_locale(request)))
    if kind == RobotKind.WEBHOOK and not secret:
        return await _robots_page(request, user, secret=robot["secret"])  # generated: shown this once
    return RedirectResponse("/staff/robots", status_code=303)


@router.post("/staff/robots/{robot_id}/remove")
async def remove_robot(request: Request, robot_id: int, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    _ = gettext_for(request_locale(request)).gettext
    _form_data, fresh = await _form(request)
    if not fresh:
        return await _robots_page(request, user, status=403, error=_("The form expired. Please try again."))
    ctx = request.app.state.ctx
    now = ctx.clock.now()

    def write(conn: Any) -> None:
        robot = robots.remove_robot(conn, robot_id)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="robot.remove", target=f"robot:{robot_id}",
                     source_address=client_address(request), detail={"name": robot["name"]})

    try:
        await ctx.db.write(write)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _robots_page(request, user, status=exc.status, error=exc.localized(request_locale(request)))
    return RedirectResponse("/staff/robots", status_code=303)
