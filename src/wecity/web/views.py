"""The portal's pages: home, city map, language switch, staff login/logout and the staff desk."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Connection

from wecity.cases import queries as case_queries
from wecity.cases.categories import list_categories
from wecity.cases.choices import Channel
from wecity.core import csrf
from wecity.core.context import AppContext
from wecity.core.errors import AuthenticationRequired, PermissionDenied, RateLimited, WeCityError
from wecity.core.http import client_address, problem_response, renderer_for, request_locale, with_retry_after
from wecity.geo.service import get_jurisdiction, list_areas
from wecity.identity.choices import Role
from wecity.identity.deps import SESSION_COOKIE, OptionalStaff
from wecity.identity.service import SESSION_LIFETIME, StaffUser, department_names, end_session, record_audit
from wecity.identity.signin import sign_in
from wecity.web.i18n import N_, gettext_for
from wecity.web.render import page, safe_next

router = APIRouter(include_in_schema=False)
STATIC_DIR = Path(__file__).parent / "static"
LANG_COOKIE_AGE = 365 * 24 * 3600
MAX_USERNAME = 64
MAX_PASSWORD = 256

ROLE_LABELS = {Role.HANDLER: N_("Case handler"), Role.DISPATCHER: N_("Dispatcher"),
               Role.SUPERVISOR: N_("Supervisor"), Role.ADMIN: N_("Administrator")}


def register(app: FastAPI) -> None:
    from wecity.web import (
        ai_models,
        api_docs,
        citizen,
        citizen_voice,
        data,
        enterprise,
        insight,
        my_reports,
        operations,
        public_map,
        robots,
        sensors,
        services,
        services_staff,
        sharing,
        staff,
    )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Pages answer errors with a page in the reader's language; machine paths keep problem+json.
    app.state.error_renderers["/"] = error_page
    for prefix in ("/api", "/media", "/static", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        app.state.error_renderers.setdefault(prefix, problem_response)
    _answer_invalid_requests_with_a_page(app)
    app.include_router(router)
    app.include_router(citizen.router)
    app.include_router(citizen_voice.router)
    app.include_router(public_map.router)
    app.include_router(my_reports.router)
    app.include_router(staff.router)
    app.include_router(operations.router)
    app.include_router(api_docs.router)
    app.include_router(sensors.router)
    app.include_router(services.router)
    app.include_router(services_staff.router)
    app.include_router(sharing.router)  # before data: /data/{name}/request is more specific than /data/{name}
    app.include_router(data.router)
    app.include_router(enterprise.router)
    app.include_router(ai_models.router)
    app.include_router(robots.router)
    app.include_router(insight.router)


def error_page(request: Request, exc: WeCityError) -> Response:
    """An error on a portal path (an unknown address, say) as a page, not JSON."""
    _ = gettext_for(request_locale(request)).gettext
    if exc.status == 404:
        title = _("Not found")
    elif exc.status in (401, 403):
        title = _("Not allowed")
    else:
        title = exc.localized(request_locale(request))
    return page(request, "web/error.html", user=None, status=exc.status, title=title,
                message=exc.localized(request_locale(request)))


def _answer_invalid_requests_with_a_page(app: FastAPI) -> None:
    """A page's address or form that the framework cannot read (/cases/abc) is answered with a page in the
    reader's words: the framework's own message (English, naming its types) is for the APIs' answers."""
    for_the_apis = app.exception_handlers.get(RequestValidationError, request_validation_exception_handler)

    async def invalid(request: Request, exc: Exception) -> Response:
        if renderer_for(request) is not error_page:
            answered = for_the_apis(request, exc)
            return answered if isinstance(answered, Response) else await answered
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=None, status=400, title=_("Not a valid address"),
                    message=_("Part of this address or form is not valid. Check it and try again."))

    app.add_exception_handler(RequestValidationError, invalid)


def login_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)


def not_allowed(request: Request, user: StaffUser | None) -> Response:
    """The page a signed-in staff member gets for a page of another department or role (403)."""
    _ = gettext_for(request_locale(request)).gettext
    return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                message=_("This page is for another department or role."))


def require_supervisor(user: StaffUser | None) -> StaffUser:
    """The signed-in supervisor, for the data behind the operations pages' maps. A script asks for it, so a
    missing session is a 401 rather than a redirect; both refusals are the platform's errors, rendered like
    any other error on a portal path."""
    if user is None:
        raise AuthenticationRequired("sign in as a supervisor", message_zh="请以督办身份登录")
    if not user.has(Role.SUPERVISOR):
        raise PermissionDenied("needs the supervisor role", message_zh="需要督办角色", code="auth.supervisor_only")
    return user


@router.get("/")
async def home(request: Request, user: OptionalStaff) -> Response:
    return page(request, "web/home.html", user=user)


@router.get("/map")
async def city_map(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    areas = await ctx.db.read(list_areas)
    categories = await ctx.db.read(lambda conn: list_categories(conn, channel=Channel.PORTAL))
    return page(request, "web/map.html", user=user, areas=areas, categories=categories)


@router.get("/lang")
async def switch_language(request: Request, to: str = "zh_CN", next: str = "/") -> Response:
    """Remember the chosen language in the `lang` cookie and go back to the page."""
    locale = "en" if to.lower().startswith("en") else "zh_CN"
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie("lang", locale, max_age=LANG_COOKIE_AGE, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/login")
async def login_form(request: Request, user: OptionalStaff, next: str = "/staff") -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next, "/staff"), status_code=303)
    return page(request, "web/login.html", user=None, next=safe_next(next, "/staff"), username="", error=None)


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = request.app.state.ctx
    form = await request.form()
    username = str(form.get("username", "")).strip()[:MAX_USERNAME]
    password = str(form.get("password", ""))[:MAX_PASSWORD]
    next_path = safe_next(str(form.get("next", "")), "/staff")
    _ = gettext_for(request_locale(request)).gettext
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/login.html", user=None, status=403, next=next_path, username=username,
                    error=_("The form expired. Please try again."))
    if not username or not password:
        return page(request, "web/login.html", user=None, status=400, next=next_path, username=username,
                    error=_("Enter your username and password."))
    try:
        done = await sign_in(ctx, username, password, address=client_address(request), via="portal")
    except AuthenticationRequired:
        return page(request, "web/login.html", user=None, status=401, next=next_path, username=username,
                    error=_("Wrong username or password."))
    except RateLimited as exc:  # the account or this address must wait; the page says how long
        return with_retry_after(page(request, "web/login.html", user=None, status=exc.status, next=next_path,
                                     username=username, error=exc.localized(request_locale(request))), exc)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(SESSION_COOKIE, done.token, max_age=int(SESSION_LIFETIME.total_seconds()), httponly=True,
                        samesite="lax", path="/", secure=request.url.scheme == "https")
    return response


def _logout(conn: Connection, token: str, user: StaffUser | None, now: Any, address: str | None) -> None:
    end_session(conn, token)
    if user is not None:
        record_audit(conn, at=now, actor=user.username, action="staff.logout", target=f"user:{user.id}",
                     outcome="ok", source_address=address)


@router.post("/logout")
async def logout(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    form = await request.form()
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=403, title=_("The form expired"),
                    message=_("The form expired. Please try again."))
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await ctx.db.write(_logout, token, user, ctx.clock.now(), client_address(request))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
    return response


@router.get("/staff")
async def staff_desk(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    department = await ctx.db.read(department_names, user.department_id)
    roles = [ROLE_LABELS[Role(r)] for r in sorted(user.roles) if r in Role.__members__.values()]
    links = [{"href": "/staff/queue", "title": N_("Case queue"),
              "text": N_("Your department's cases, most urgent first.")},
             {"href": "/staff/inbox", "title": N_("Inbox"),
              "text": N_("Escalated and urged cases (催办) and low ratings waiting for a follow-up.")}]
    counts = await ctx.db.read(lambda conn: case_queries.inbox_counts(conn, user))
    request.state.inbox_count = sum(counts.values())  # every part of the inbox waits for someone
    if user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR):
        links.append({"href": "/staff/dispatch", "title": N_("Dispatch centre"),
                      "text": N_("Returned and unassigned cases, resolutions to verify, follow-ups.")})
    if user.has(Role.SUPERVISOR):
        links.append({"href": "/ops", "title": N_("Operations"),
                      "text": N_("Today's figures, closure rates, satisfaction, the map and the trend.")})
        links.append({"href": "/insight", "title": N_("KPIs"),
                      "text": N_("Every KPI with its definition, for any period, district, department, category "
                                 "and channel; drill down to the cases; export.")})
    links.append({"href": "/staff/me", "title": N_("My account and group robots"),
                  "text": N_("The mobile number the group robots @mention you by.")})
    if user.has(Role.ADMIN):
        links.append({"href": "/staff/robots", "title": N_("Group robots"),
                      "text": N_("WeCom and DingTalk group robots and webhooks: which departments, which events.")})
    if user.has(Role.ADMIN):
        links.append({"href": "/staff/replies", "title": N_("Standard replies"),
                      "text": N_("The replies handlers start from, per state and category, with fields to fill.")})
    return page(request, "web/staff.html", user=user, department=department, role_labels=roles, staff_links=links)


async def on_startup(ctx: AppContext) -> None:
    await load_jurisdiction(ctx)


async def load_jurisdiction(ctx: AppContext) -> None:
    """The city's names and time zone, for every page. Read once at start: the jurisdiction is set up with
    the city (the demo seeds it) before the portal serves, not while it runs."""
    row = await ctx.db.read(get_jurisdiction)
    if row is not None:
        ctx.services["web.city_names"] = {"zh_CN": row.name_zh, "en": row.name_en}
        ctx.services["web.city_zone"] = ZoneInfo(row.timezone)
