"""The model cards of the category model, for administrators (`/staff/ai`): every version, when and by
whom it was trained, on how many cases, its figures on the held-back cases beside the serving model's,
per category, and whether it serves."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from wecity.ai.duplicates import merge_figures
from wecity.ai.suggest import routing_counts
from wecity.ai.training import begin_training, model_cards, training_state
from wecity.cases.categories import list_categories
from wecity.core import csrf
from wecity.core.errors import WeCityError
from wecity.core.http import request_locale
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect, not_allowed

router = APIRouter(include_in_schema=False)
ROUTING_DAYS = 30


@router.get("/staff/ai")
async def cards(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    return await _cards_page(request, user, started=request.query_params.get("started") == "1")


@router.post("/staff/ai/train")
async def train(request: Request, user: OptionalStaff) -> Response:
    """"Train a new version now": answered at once, the training runs after the answer (minutes in a big
    city); the page then says it is under way, and lists the new model card when it ends."""
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    ctx = request.app.state.ctx
    form = await request.form(max_files=0, max_fields=10)
    locale = request_locale(request)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _cards_page(request, user, status=403,
                                 error=gettext_for(locale).gettext("The form expired. Please try again."))
    try:
        _, run = await begin_training(ctx, by=f"user:{user.username}")
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _cards_page(request, user, status=exc.status, error=exc.localized(locale))
    return RedirectResponse("/staff/ai?started=1", status_code=303, background=BackgroundTask(run))


async def _cards_page(request: Request, user: StaffUser, *, status: int = 200, error: str | None = None,
                      started: bool = False) -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    found = await ctx.db.read(model_cards)
    training = await ctx.db.read(lambda c: training_state(c, now=now))
    since = now - timedelta(days=ROUTING_DAYS)
    routing = await ctx.db.read(lambda c: routing_counts(c, since=since))
    duplicate_figures = await ctx.db.read(merge_figures)
    names = {c.code: c for c in await ctx.db.read(lambda c: list_categories(c, active_only=False))}
    return page(request, "web/staff_ai.html", user=user, cards=found, categories=names, routing=routing,
                routing_days=ROUTING_DAYS, duplicates=duplicate_figures, training=training, status=status,
                error=error, started=started)
