"""The KPI pages of the operations centre (/insight): the KPIs for a period and filter with their
definitions and the previous period, the drill-down city → district → department → category → the cases
→ one case, and exports. The URL holds the filter, so a view can be shared."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.cases.categories import list_categories
from wecity.core.errors import NotFound, ValidationFailed
from wecity.core.http import request_locale
from wecity.geo.models import areas
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.identity.models import departments
from wecity.insight import queries
from wecity.insight.api import FIRST_DAY, LAST_DAY, briefing_response, export_response, filters_of
from wecity.insight.frame import frame_of
from wecity.insight.loops import loop_figures
from wecity.web.i18n import N_, gettext_for
from wecity.web.render import STATUS_LABELS, page
from wecity.web.views import login_redirect, not_allowed

router = APIRouter(include_in_schema=False)
FILTER_NAMES = ("from", "to", "district", "department", "category", "channel")
CHANNEL_LABELS = {"portal": N_("Report form"), "open311": N_("Open311 partners"), "hotline": N_("Hotline"),
                  "sensor": N_("Sensors"), "enterprise": N_("Enterprises")}


def _day(value: str | None) -> date | None:
    try:
        found = date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a hand-edited URL with a bad date shows the default period, not an error page
    return found if found is not None and FIRST_DAY <= found <= LAST_DAY else None


def _asked(request: Request) -> tuple[Any, ...]:
    q = request.query_params

    def code(name: str) -> str | None:
        value = (q.get(name) or "").strip()
        return value[:64] if value and all(c.isalnum() or c in "_.-" for c in value) else None

    return (_day(q.get("from")), _day(q.get("to")), code("district"), code("department"), code("category"),
            code("channel"))


def _not_a_leader(request: Request, user: Any) -> Response | None:
    """The answer for someone who may not see the KPI pages (the sign-in page, or 403), else None."""
    if user is None:
        return login_redirect(request)
    if user.has(Role.SUPERVISOR):
        return None
    return not_allowed(request, user)


def _choices(conn: sa.Connection) -> dict[str, Any]:
    return {"districts": [dict(r._mapping) for r in conn.execute(
                sa.select(areas.c.code, areas.c.name_zh, areas.c.name_en).order_by(areas.c.id))],
            "departments": [dict(r._mapping) for r in conn.execute(
                sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en).order_by(departments.c.id))],
            "categories": list_categories(conn)}


def link(f: queries.Filters, path: str = "/insight", **changes: Any) -> str:
    """A URL of the view `f` with some filters changed (None removes one)."""
    params = f.params()
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return f"{path}?{urlencode(params)}" if params else path


async def _view(request: Request, user: Any, template: str, extra: Any) -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    asked = _asked(request)
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    try:
        def run(conn: sa.Connection) -> dict[str, Any]:
            f = filters_of(conn, now, *asked)
            return {"f": f, **extra(conn, f, now), **_choices(conn)}
        found = await ctx.db.read(run)
        status = 200
        error = None
    except ValidationFailed as exc:  # a period too long or upside down: the default view, and why
        def fallback(conn: sa.Connection) -> dict[str, Any]:
            f = queries.default_filters(conn, now)
            return {"f": f, **extra(conn, f, now), **_choices(conn)}
        found, status, error = await ctx.db.read(fallback), 400, exc.localized(locale)
    f = found["f"]
    names = {"district": {d["code"]: d for d in found["districts"]},
             "department": {d["code"]: d for d in found["departments"]},
             "category": {c.code: c for c in found["categories"]}}
    trail = [(_("Whole city"), link(f, district=None, department=None, category=None))]
    if f.district:
        d = names["district"].get(f.district)
        trail.append((d["name_zh"] if d and locale == "zh_CN" else d["name_en"] if d else f.district,
                      link(f, department=None, category=None)))
    if f.department:
        d = names["department"].get(f.department)
        trail.append((d["name_zh"] if d and locale == "zh_CN" else d["name_en"] if d else f.department,
                      link(f, category=None)))
    if f.category:
        c = names["category"].get(f.category)
        trail.append((c.name(locale) if c else f.category, link(f)))
    return page(request, template, user=user, status=status, error=error, link=link, trail=trail,
                channel_labels={k: _(v) for k, v in CHANNEL_LABELS.items()},
                statuses_translated={k: _(v) for k, v in STATUS_LABELS.items()}, **found)


@router.get("/insight")
async def insight_page(request: Request, user: OptionalStaff) -> Response:
    if (refused := _not_a_leader(request, user)) is not None:
        return refused
    return await _view(request, user, "web/insight.html",
                       lambda conn, f, now: {"figures": queries.figures(
                           conn, f, now, frame_of(request.app.state.ctx).current(conn)),
                           "loops": loop_figures(conn, f, now)})


@router.get("/insight/cases")
async def insight_cases(request: Request, user: OptionalStaff) -> Response:
    if (refused := _not_a_leader(request, user)) is not None:
        return refused
    which = request.query_params.get("which", "received")
    which = which if which in ("received", "open", "overdue") else "received"
    return await _view(request, user, "web/insight_cases.html",
                       lambda conn, f, now: {"which": which, "cases": queries.case_list(conn, f, now, which=which)})


@router.get("/insight/export.{extension}")
async def insight_export(request: Request, user: OptionalStaff, extension: str) -> Response:
    if (refused := _not_a_leader(request, user)) is not None:
        return refused
    if extension not in ("csv", "xlsx"):
        raise NotFound(f"no export as {extension}", message_zh=f"不支持导出为 {extension}", code="insight.format")
    q = request.query_params
    table = q.get("table", "breakdown")
    which = q.get("which", "received")
    return await export_response(request.app.state.ctx, request_locale(request), extension,
                                 table if table in ("kpis", "breakdown", "cases") else "breakdown",
                                 which if which in ("received", "open", "overdue") else "received", _asked(request))


@router.get("/insight/briefing.pdf")
async def insight_briefing(request: Request, user: OptionalStaff) -> Response:
    if (refused := _not_a_leader(request, user)) is not None:
        return refused
    return await briefing_response(request.app.state.ctx, _day(request.query_params.get("day")))
