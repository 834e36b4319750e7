"""The operations page (运营中心): today's figures, closure rates, satisfaction, open cases on a map, trend, tables."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from wecity.ai.forecasts import forecast
from wecity.ai.hotspots import hotspots
from wecity.cases.categories import list_categories
from wecity.cases.figures import WINDOW_DAYS, open_cases_geojson, overview
from wecity.core.http import request_locale
from wecity.geo.service import list_areas
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.web.i18n import gettext_for
from wecity.web.render import STATUS_LABELS, page
from wecity.web.views import login_redirect, not_allowed, require_supervisor

router = APIRouter(include_in_schema=False)
HOTSPOT_PERIODS = ("7", "30", "90")


@router.get("/ops")
async def operations(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.SUPERVISOR):
        return not_allowed(request, user)
    ctx = request.app.state.ctx
    await ctx.limits.hit("ai_figures", f"user:{user.id}")  # the page computes hot spots and a forecast
    now = ctx.clock.now()
    figures = await ctx.db.read(lambda conn: overview(conn, now))
    # Hot spots of one category or all, over the period chosen (the form under the map; the URL keeps them).
    known = {c.code: c for c in await ctx.db.read(list_categories)}
    category = request.query_params.get("hot_category") or None
    category = category if category in known else None
    period = request.query_params.get("hot_days", "")
    days = int(period) if period in HOTSPOT_PERIODS else WINDOW_DAYS
    hot = await ctx.db.read(lambda conn: hotspots(conn, now=now, days=days, category=category))
    # The forecast for the city or one district (its own select; the URL keeps it with the others).
    districts = await ctx.db.read(list_areas)
    district = request.query_params.get("forecast_district") or None
    district = district if district in {a["code"] for a in districts} else None
    ahead = await ctx.db.read(lambda conn: forecast(conn, now=now, category=category, district=district))
    _ = gettext_for(request_locale(request)).gettext
    labels = {code: _(label) for code, label in STATUS_LABELS.items()}
    return page(request, "web/operations.html", user=user, figures=figures, window=WINDOW_DAYS,
                statuses_translated=labels, hot=hot, hot_categories=list(known.values()), hot_category=category,
                hot_days=days, hot_periods=HOTSPOT_PERIODS, ahead=ahead, districts=districts,
                forecast_district=district)


@router.get("/ops/open-cases.geojson")
async def open_cases(request: Request, user: OptionalStaff) -> Response:
    require_supervisor(user)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    return JSONResponse(await ctx.db.read(lambda conn: open_cases_geojson(conn, now)),
                        headers={"Cache-Control": "no-store"})
