"""Portal pages of enterprise services.

- `/enterprise` — the enterprise's home, for a citizen who acts for one (its legal representative or an
  agent): what every policy says of the enterprise, benefits received without applying, one click to apply
  where the register lacks something, its applications.
- `/policies`, `/policies/{code}` — the city's support policies, public; signed in for an enterprise, the
  policy's page shows its outcome and why (the trace).
- `/staff/policies`, `/staff/policies/{code}` — the policy officer's pages: every policy with its take-up,
  and one policy's versions, its dry run over the register and what fails or is missing most.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from wecity.core import csrf
from wecity.core.errors import NotFound, WeCityError
from wecity.core.http import request_locale, with_retry_after
from wecity.enterprise import accounts, appeals, benefits, catalogue, queries
from wecity.enterprise import api as enterprise_api
from wecity.geo.service import city_today
from wecity.identity.applicants import Applicant, enterprises_of
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.services import _citizen, _not_found, _over_limit, sign_in_redirect
from wecity.web.views import login_redirect

router = APIRouter(include_in_schema=False)
OUTCOME_LABELS = {"eligible": ("符合条件", "Eligible"), "unknown": ("待补充信息", "Information missing"),
                  "ineligible": ("不符合", "Not eligible")}


async def _firms(request: Request, citizen: Applicant) -> list[Applicant]:
    return list(await request.app.state.ctx.db.read(enterprises_of, citizen.id))


def _chosen(request: Request, firms: list[Applicant]) -> Applicant | None:
    wanted = request.query_params.get("for")
    for firm in firms:
        if wanted is None or str(firm.id) == wanted:
            return firm
    return None


@router.get("/enterprise")
async def home(request: Request, user: OptionalStaff) -> Response:
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    firms = await _firms(request, citizen)
    firm = _chosen(request, firms)
    view, people = None, []
    if firm is not None:
        view = await request.app.state.ctx.db.read(lambda c: queries.enterprise_home(c, firm.id, city_today(c, request.app.state.ctx.clock.now())))
        people = await request.app.state.ctx.db.read(lambda c: accounts.agents(c, firm.id, by=citizen))
    return page(request, "web/enterprise_home.html", user=user, firms=firms, firm=firm, view=view,
                outcome_labels=OUTCOME_LABELS, people=people,
                legal_representative=any(p["me"] and p["role"] == accounts.LEGAL_REPRESENTATIVE for p in people))


# What a signed-in citizen's form on an enterprise's behalf does: (citizen, form) -> the address to go to.
Action = Callable[[Applicant, FormData], Awaitable[str]]


async def _citizen_action(request: Request, user: StaffUser | None, act: Action) -> Response:
    """A form a citizen sends for an enterprise: signed in, the form's CSRF token, the citizen's rate limit,
    then `act`; its refusals (not listed for the enterprise, bad input) as a page in the reader's language."""
    ctx = request.app.state.ctx
    citizen = await _citizen(request)
    if citizen is None:
        return sign_in_redirect(request)
    form = await request.form(max_files=0, max_fields=5)
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                    message=_("The form expired. Please try again."))
    try:
        await ctx.limits.hit("services_write", citizen.phone or str(citizen.id))
        target = await act(citizen, form)
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        if exc.status == 404:
            return _not_found(request, user)
        return with_retry_after(page(request, "web/error.html", user=user, status=exc.status, title=_("Not allowed"),
                                     message=exc.localized(locale)), exc)
    return RedirectResponse(target, status_code=303)


@router.post("/enterprise/{applicant_id}/agents")
async def change_agents(request: Request, user: OptionalStaff, applicant_id: int) -> Response:
    """The legal representative authorises an agent (phone) or withdraws one (withdraw=<citizen id>)."""
    ctx = request.app.state.ctx

    async def act(citizen: Applicant, form: FormData) -> str:
        now = ctx.clock.now()
        withdraw = str(form.get("withdraw", "")).strip()
        phone = str(form.get("phone", "")).strip()[:20]
        if withdraw.isdigit():
            await ctx.db.write(lambda c: accounts.withdraw(c, applicant_id, int(withdraw), by=citizen, now=now))
        else:
            await ctx.db.write(lambda c: accounts.authorise(c, applicant_id, phone, by=citizen, now=now))
        return f"/enterprise?for={applicant_id}#agents"

    return await _citizen_action(request, user, act)


@router.post("/enterprise/{applicant_id}/policies/{code}/apply")
async def quick_apply(request: Request, user: OptionalStaff, applicant_id: int, code: str) -> Response:
    """快申快享 from the enterprise's home or a policy's page: to the pre-filled draft."""
    ctx = request.app.state.ctx

    async def act(citizen: Applicant, form: FormData) -> str:
        draft = await ctx.db.write(lambda c: benefits.quick_apply(
            c, citizen=citizen, enterprise_applicant_id=applicant_id, policy_code=code[:64], now=ctx.clock.now()))
        return str(draft["link"])

    return await _citizen_action(request, user, act)


@router.post("/enterprise/{applicant_id}/requests")
async def file_request(request: Request, user: OptionalStaff, applicant_id: int) -> Response:
    """An enterprise 诉求 from its home page: through the one intake, then to the case's tracking page."""
    ctx = request.app.state.ctx

    async def act(citizen: Applicant, form: FormData) -> str:
        receipt = await appeals.file_request(ctx, citizen=citizen, applicant_id=applicant_id,
                                             service_code=str(form.get("service_code", ""))[:64],
                                             description=str(form.get("description", "")))  # the intake's limit
        return f"/track/{receipt.token}?new={'merged' if receipt.merged else 'case'}"

    return await _citizen_action(request, user, act)


@router.get("/policies")
async def policies(request: Request, user: OptionalStaff) -> Response:
    over = await _over_limit(request, user, "services_read")
    if over is not None:
        return over
    ctx = request.app.state.ctx
    rows = await ctx.db.read(catalogue.policy_rows)
    today = await ctx.db.read(city_today, ctx.clock.now())
    return page(request, "web/policies.html", user=user, policies=[queries.policy_summary(r, today) for r in rows])


@router.get("/policies/{code}")
async def policy(request: Request, user: OptionalStaff, code: str) -> Response:
    over = await _over_limit(request, user, "services_read")
    if over is not None:
        return over
    ctx = request.app.state.ctx
    today = await ctx.db.read(city_today, ctx.clock.now())
    try:
        view = await ctx.db.read(lambda c: queries.policy_view(c, code[:64], today))
    except NotFound:
        return _not_found(request, user)
    mine: list[dict[str, Any]] = []
    citizen = await _citizen(request) if request.cookies else None
    if citizen is not None:
        for firm in await _firms(request, citizen):
            home_view = await ctx.db.read(lambda c, firm=firm: queries.enterprise_home(c, firm.id, today))
            found = next((p for p in home_view["policies"] if p["code"] == view["code"]), None)
            if found is not None:
                mine.append({"firm": firm, "result": found, "labels": home_view["variables"]})
    return page(request, "web/policy.html", user=user, policy=view, mine=mine, outcome_labels=OUTCOME_LABELS)


# -- the policy officer ----------------------------------------------------------------------------------------

@router.get("/staff/policies")
async def staff_policies(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    today = await ctx.db.read(city_today, ctx.clock.now())

    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        return [{**queries.policy_summary(r, today), "take_up": queries.take_up(conn, r["code"])}
                for r in catalogue.policy_rows(conn)]
    return page(request, "web/staff_policies.html", user=user, policies=await ctx.db.read(read))


@router.get("/staff/policies/{code}")
async def staff_policy(request: Request, user: OptionalStaff, code: str) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    try:  # the page runs the policy over the whole register: counted with the API's dry runs
        await ctx.limits.hit("policy_dry_run", f"user:{user.id}", enterprise_api.DRY_RUN_LIMIT)
    except WeCityError as exc:
        return with_retry_after(page(request, "web/error.html", user=user, status=exc.status, title="429",
                                     message=exc.localized(request_locale(request))), exc)
    today = await ctx.db.read(city_today, ctx.clock.now())

    def read(conn: sa.Connection) -> dict[str, Any]:
        view = queries.policy_view(conn, code[:64], today)
        policy = catalogue.load(conn, view["code"], today)
        return {"policy": view, "dry_run": queries.dry_run(conn, policy, today), "take_up": queries.take_up(conn, view["code"]),
                "conditions": {c.id: c for c in policy.conditions}, "labels": queries.variable_labels(conn)}

    try:
        found = await ctx.db.read(read)
    except NotFound:
        return _not_found(request, user)
    return page(request, "web/staff_policy.html", user=user, **found, outcome_labels=OUTCOME_LABELS)
