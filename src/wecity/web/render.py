"""Rendering a portal page: the Jinja2 environment, the per-request context, and safe response headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlparse
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from wecity.core import csrf
from wecity.core.http import request_locale
from wecity.geo.basemap import current_basemap
from wecity.geo.service import DEFAULT_TIMEZONE
from wecity.govservice.forms import answer_label
from wecity.identity.choices import Role
from wecity.identity.deps import CITIZEN_COOKIE
from wecity.identity.service import StaffUser
from wecity.web.i18n import N_, gettext_for
from wecity.web.labels import (
    ACCESS_OUTCOMES,
    ACTOR_LABELS,
    APPLICATION_EVENTS,
    CHANNEL_LABELS,
    EVENT_LABELS,
    FREQUENCIES,
    GRANT_STATES,
    REQUEST_EVENTS,
    REQUEST_STATES,
    RETURN_REASONS,
    REVIEW_OUTCOMES,
    SENSITIVITIES,
    SHARE_CLASSES,
    SPECIAL_PROCEDURES,
    THEMES,
    VERDICTS,
)
from wecity.web.timefmt import FORMATS, LEFT, OVERDUE, countdown
from wecity.web.vendor import VENDOR

_env = Environment(loader=PackageLoader("wecity.web", "templates"), autoescape=select_autoescape(("html",)),
                   trim_blocks=True, lstrip_blocks=True)


@pass_context
def _local(context: Context, value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as people in the city read it: on its clocks, in the zone `page` puts in the context."""
    return value.astimezone(context["city_zone"]).strftime(fmt) if value else ""


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


_env.filters["local"] = _local
_env.filters["iso"] = _iso


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    current: bool
    count: int | None = None  # waiting items, where the page that renders knows them (the inbox)


# (href, English label, who sees it). Labels are msgids; "anyone" pages are the citizen's.
_NAV: list[tuple[str, str, str]] = [
    ("/", N_("Home"), "anyone"),
    ("/report", N_("Report a problem"), "anyone"),
    ("/track", N_("Track a report"), "anyone"),
    ("/my", N_("My reports"), "anyone"),
    ("/services", N_("Services"), "anyone"),
    ("/policies", N_("Business support"), "anyone"),
    ("/data", N_("Data catalogue"), "anyone"),
    ("/map", N_("City map"), "anyone"),
    ("/staff", N_("Staff desk"), "staff"),
    ("/staff/queue", N_("Case queue"), "staff"),
    ("/staff/inbox", N_("Inbox"), "staff"),
    ("/staff/dispatch", N_("Dispatch"), "dispatch"),
    ("/staff/applications", N_("Applications"), "staff"),
    ("/sharing", N_("Data sharing"), "staff"),
    ("/staff/policies", N_("Policies"), "staff"),
    ("/staff/ai", N_("Category model"), "admin"),
    ("/staff/replies", N_("Standard replies"), "admin"),
    ("/ops", N_("Operations"), "operations"),
    ("/insight", N_("KPIs"), "operations"),
    ("/ops/sensors", N_("Sensors"), "operations"),
]


# Case states as the portal names them (msgids; the case engine's own labels are the reference).
STATUS_LABELS = {
    "submitted": N_("Submitted"), "dispatched": N_("Dispatched"), "acknowledged": N_("Acknowledged"),
    "returned": N_("Returned"), "in_progress": N_("In progress"), "resolved": N_("Resolved"),
    "verified": N_("Verified"), "closed": N_("Closed"), "merged": N_("Merged"),
}

# The same states as a citizen reads them: plain words for what is happening to the problem, not the
# office's steps (已派遣/已签收/已办结/已核查/已结案 mean little to a reporter).
CITIZEN_STATUS_LABELS = {
    "submitted": N_("Received by the city"), "dispatched": N_("Passed to the department"),
    "acknowledged": N_("The department has it"), "returned": N_("Finding the right department"),
    "in_progress": N_("Being fixed"), "resolved": N_("Fixed, being checked"),
    "verified": N_("Fixed"), "closed": N_("Fixed"), "merged": N_("Joined a report of the same problem"),
}


def _allowed(who: str, user: StaffUser | None) -> bool:
    if who == "anyone":
        return True
    if user is None:
        return False
    if who == "staff":
        return True
    if who == "operations":
        return user.has(Role.SUPERVISOR)
    if who == "dispatch":
        return user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)
    return user.has(who)


def navigation(request: Request, user: StaffUser | None, _: Any) -> list[NavItem]:
    path = request.url.path
    items = []
    # Staff see their work only: the citizen's pages stay a URL away, not in a menu that grows with every role.
    for href, label, who in _NAV:
        if (user is None and who == "anyone") or (user is not None and who != "anyone" and _allowed(who, user)):
            current = path == href if href in ("/", "/staff", "/ops") else path.startswith(href)
            count = getattr(request.state, "inbox_count", None) if href == "/staff/inbox" else None
            items.append(NavItem(href, _(label), current, count))
    return items


def safe_next(target: str | None, default: str = "/") -> str:
    """A same-site path to go back to; anything else (another host, a scheme) falls back to `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc:
        return default
    return target


def content_security_policy(tile_url: str | None) -> str:
    img = "'self' data: blob:"
    if tile_url:
        # The one external origin a city may choose: its own (or a contracted) tile server. A {s}
        # subdomain placeholder becomes a wildcard.
        parsed = urlparse(tile_url.replace("{s}", "tile-subdomain"))
        if parsed.scheme and parsed.netloc:
            img += f" {parsed.scheme}://{parsed.netloc.replace('tile-subdomain', '*')}"
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src {img}; connect-src 'self'; worker-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")


def protect(response: HTMLResponse, tile_url: str | None) -> None:
    """The headers every page of the platform is served with: its CSP, no sniffing, no framing."""
    response.headers["Content-Security-Policy"] = content_security_policy(tile_url)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"


def bare_page(request: Request, template: str, **values: Any) -> HTMLResponse:
    """A page outside the portal's frame (no navigation, no session), with the same headers."""
    html_lang = "zh-CN" if request_locale(request) == "zh_CN" else "en"
    response = HTMLResponse(_env.get_template(template).render(vendor=VENDOR, html_lang=html_lang, **values))
    protect(response, request.app.state.ctx.settings.tile_url)
    return response


def city_name(request: Request, locale: str, _: Any) -> str:
    """The jurisdiction's name in this language (kept by views.on_startup; a neutral name before)."""
    names: dict[str, str] = request.app.state.ctx.services.get("web.city_names") or {}
    return names.get(locale) or _("City services")


def city_zone(request: Request) -> ZoneInfo:
    """The jurisdiction's time zone (kept by views.on_startup; the platform's default before)."""
    zone: ZoneInfo | None = request.app.state.ctx.services.get("web.city_zone")
    return zone or ZoneInfo(DEFAULT_TIMEZONE)


def citizen_signed_in(request: Request) -> bool:
    """Whether a citizen's sign-in came with the request (the cookie, or an app's bearer token): the page may
    then show their own data (their reports, applications, certificates), which no cache may keep."""
    return bool(request.cookies.get(CITIZEN_COOKIE)) or \
        request.headers.get("authorization", "").lower().startswith("bearer ")


def page(request: Request, template: str, *, user: StaffUser | None, status: int = 200,
         **values: Any) -> HTMLResponse:
    """Render `template` for this request's language and user, with security headers and the CSRF cookie."""
    ctx = request.app.state.ctx
    locale = request_locale(request)
    translations = gettext_for(locale)
    _ = translations.gettext
    other = "en" if locale == "zh_CN" else "zh_CN"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context = {
        "request": request,
        "_": _,
        "ngettext": translations.ngettext,
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh_CN" else "en",
        "user": user,
        "nav": navigation(request, user, _),
        "csrf_field": csrf.CSRF_FIELD,
        "csrf_token": csrf.token_for(request, ctx.settings.secret_key),
        "switch_href": "/lang?" + urlencode({"to": other, "next": here}),
        "switch_label": "English" if other == "en" else "简体中文",
        "switch_lang": "en" if other == "en" else "zh-CN",
        "vendor": VENDOR,
        "tile_url": ctx.settings.tile_url,
        "basemap": current_basemap(ctx.settings.var_dir, ctx.services),
        "roles": sorted(user.roles) if user else [],
        "city_name": city_name(request, locale, _),
        "city_zone": city_zone(request),
        "statuses": STATUS_LABELS,
        "citizen_statuses": CITIZEN_STATUS_LABELS,
        "countdown": lambda seconds: countdown(seconds, _),
        "time_formats": {k: _(v) for k, v in FORMATS.items()} | {"left": _(LEFT), "overdue": _(OVERDUE)},
        "event_labels": EVENT_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "actor_labels": ACTOR_LABELS,
        "reasons": RETURN_REASONS,
        "application_events": APPLICATION_EVENTS,
        "review_labels": REVIEW_OUTCOMES,
        "special_labels": SPECIAL_PROCEDURES,
        "verdict_labels": VERDICTS,
        "answer_label": answer_label,
        "share_labels": SHARE_CLASSES,
        "theme_labels": THEMES,
        "frequency_labels": FREQUENCIES,
        "sensitivity_labels": SENSITIVITIES,
        "request_states": REQUEST_STATES,
        "grant_states": GRANT_STATES,
        "request_events": REQUEST_EVENTS,
        "access_outcomes": ACCESS_OUTCOMES,
        "now": ctx.clock.now(),
        **values,
    }
    response = HTMLResponse(_env.get_template(template).render(context), status_code=status)
    protect(response, ctx.settings.tile_url)
    response.headers["Cache-Control"] = "no-store" if user or citizen_signed_in(request) else "no-cache"
    response.headers["Content-Language"] = context["html_lang"]
    response.headers["Vary"] = "Accept-Language, Cookie"
    csrf.set_cookie_if_new(request, response)
    return response
