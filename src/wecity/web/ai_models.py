"""The model cards of the category model, for administrators (`/staff/ai`): every version, when and by
whom it was trained, on how many cases, its figures on the held-back cases beside the serving model's,
per category, and whether it serves."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.ai.duplicates import merge_figures
from wecity.ai.suggest import routing_counts
from wecity.ai.training import model_cards
from wecity.cases.categories import list_categories
from wecity.core.http import request_locale
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect

router = APIRouter(include_in_schema=False)
ROUTING_DAYS = 30


@router.get("/staff/ai")
async def cards(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                    message=_("This page is for another department or role."))
    ctx = request.app.state.ctx
    found = await ctx.db.read(model_cards)
    since = ctx.clock.now() - timedelta(days=ROUTING_DAYS)
    routing = await ctx.db.read(lambda c: routing_counts(c, since=since))
    duplicate_figures = await ctx.db.read(merge_figures)
    names = {c.code: c for c in await ctx.db.read(lambda c: list_categories(c, active_only=False))}
    return page(request, "web/staff_ai.html", user=user, cards=found, categories=names, routing=routing,
                routing_days=ROUTING_DAYS, duplicates=duplicate_figures)
