"""Data sharing pages for staff: request a dataset (from its catalogue page), my department's requests and
grants and who used its data, one request with its timeline and the provider's decision, and the
coordinating department's overview. The citizen's "who used my data" page is in `my_data.py`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData

from wecity.core import csrf
from wecity.core.errors import NotFound, WeCityError
from wecity.core.http import MAX_ID, request_locale
from wecity.datashare import queries, requests, sources
from wecity.geo.service import city_today
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser
from wecity.web.forms import form_text
from wecity.web.i18n import gettext_for
from wecity.web.render import page
from wecity.web.views import login_redirect

router = APIRouter(include_in_schema=False)
MAX_TEXT = 2000


def _error(request: Request, user: StaffUser | None, status: int, message: str) -> Response:
    _ = gettext_for(request_locale(request)).gettext
    titles = {403: _("Not allowed"), 404: _("Not found")}
    return page(request, "web/error.html", user=user, status=status, title=titles.get(status, str(status)),
                message=message)


def _text(form: FormData, name: str) -> str:
    return form_text(form, name, limit=MAX_TEXT)


def _kept(form: FormData, name: str) -> str:
    """What was typed, shown again beside the error (an over-long text too, so that it can be shortened)."""
    return str(form.get(name, "")).strip()


def _int(form: FormData, name: str) -> int | None:
    raw = _text(form, name)
    return int(raw) if raw.isdigit() else None


def _id(form: FormData, name: str) -> int | None:
    """A database id from the form; None for one no row can have (PostgreSQL would refuse to compare it)."""
    value = _int(form, name)
    return value if value is not None and 0 < value <= MAX_ID else None


def _values(form: FormData, name: str) -> list[str]:
    return [str(v)[:100] for v in form.getlist(name)][:200]


def _row_filter(d: dict[str, Any], form: FormData) -> dict[str, list[str]]:
    """`filter_<field>` inputs: ticked values (fields whose values the platform knows), or values typed
    comma- or line-separated; nothing given is no filter."""
    found = {}
    for f in d["fields"]:
        values = [v.strip() for raw in form.getlist(f"filter_{f['name']}")
                  for v in str(raw)[:MAX_TEXT].replace("，", ",").replace("\n", ",").split(",") if v.strip()]
        if values:
            found[f["name"]] = list(dict.fromkeys(values))[:100]
    return found


def _titles(d: dict[str, Any], locale: str) -> dict[str, str]:
    """A dataset's field names as people read them, in this language."""
    return {f["name"]: f["title_zh"] if locale == "zh_CN" else f["title_en"] for f in d["fields"]}


# -- request a dataset --------------------------------------------------------------------------------------

async def _request_form(request: Request, user: StaffUser, name: str, *, status: int = 200,
                        error: str | None = None, form: FormData | None = None) -> Response:
    ctx = request.app.state.ctx
    try:
        d = await ctx.db.read(queries.dataset, name[:100])
    except NotFound:
        return _error(request, user, 404, gettext_for(request_locale(request)).gettext("There is no such dataset."))
    own, vocab = await ctx.db.read(lambda c: (requests.department_of(c, user), sources.vocabularies(c, d)))
    # Nothing is ticked to begin with: the officer asks for what the duty needs, field by field.
    kept = {"fields": form.getlist("fields") if form else [],
            "clear_fields": form.getlist("clear_fields") if form else [],
            "purpose": _kept(form, "purpose") if form else "", "basis": _kept(form, "basis") if form else "",
            "days": _kept(form, "days") if form else "90",
            "filters": _row_filter(d, form) if form else {}}
    return page(request, "web/sharing_new.html", user=user, status=status, d=d, error=error, kept=kept,
                own_department=own, answer_days=requests.ANSWER_DAYS.get(d["share_class"]), vocab=vocab)


@router.get("/data/{name}/request")
async def request_form(request: Request, user: OptionalStaff, name: str) -> Response:
    if user is None:
        return login_redirect(request)
    return await _request_form(request, user, name)


@router.post("/data/{name}/request")
async def submit_request(request: Request, user: OptionalStaff, name: str) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    form = await request.form(max_files=0, max_fields=500)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _request_form(request, user, name, status=403, error=_("The form expired. Please try again."),
                                   form=form)
    now = ctx.clock.now()
    try:
        d = await ctx.db.read(queries.dataset, name[:100])
        row_filter = _row_filter(d, form)
        # Rows are limited only by fields the grant shows: a field chosen to limit rows by is asked for with
        # the fields ticked (a personal one still has to be asked for in clear, which the verb says). With
        # none ticked nothing is added: the request asks for no data, which the verb refuses with its reason.
        ticked = _values(form, "fields")
        fields = list(dict.fromkeys([*ticked, *row_filter])) if ticked else []
        # "In clear" ticked for a field not asked for means nothing: it is dropped, not an error.
        body = {"dataset": d["name"], "purpose": _text(form, "purpose"), "basis": _text(form, "basis"),
                "fields": fields, "clear_fields": [f for f in _values(form, "clear_fields") if f in fields],
                "row_filter": row_filter, "days": _int(form, "days") or 0}
        request_id = await ctx.db.write(lambda c: requests.submit_request(c, user, body, now=now))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _request_form(request, user, name, status=exc.status, error=exc.localized(locale), form=form)
    return RedirectResponse(f"/sharing/requests/{request_id}?done=submitted", status_code=303)


# -- my department's requests, grants and accesses ----------------------------------------------------------

@router.get("/sharing")
async def sharing(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    locale = request_locale(request)

    offsets = {name: _offset(request, name) for name in SHARING_LISTS}

    def read(conn: sa.Connection) -> dict[str, Any]:
        today = city_today(conn, now)
        own = requests.department_of(conn, user)
        if own is None:
            return {"department": None}
        # Each list is read and counted on its own: the open requests to decide are never crowded out by
        # answered ones, and nothing is cut at the newest few hundred.
        found: dict[str, tuple[list[dict[str, Any]], int]] = {}
        for name, side, state in (("incoming", "provider", requests.OPEN), ("decided", "provider", ANSWERED),
                                  ("made", "requester", None)):
            found[name] = (queries.data_requests_for(conn, today=today, department=own, side=side, state=state,
                                                     limit=SHARING_PAGE, offset=offsets[name]),
                           queries.count_data_requests(conn, today=today, department=own, side=side, state=state))
        for name, side in (("held", "grantee"), ("given", "provider")):
            found[name] = (queries.data_grants_for(conn, now=now, department=own, side=side, limit=SHARING_PAGE,
                                                   offset=offsets[name]),
                           queries.count_data_grants(conn, department=own, side=side))
        total, accesses = queries.data_accesses_for(conn, publisher=own, limit=SHARING_PAGE, offset=offsets["accesses"])
        found["accesses"] = (accesses, total)
        return {"department": own, "to_decide": found["incoming"][0], "decided": found["decided"][0],
                "made": found["made"][0], "held": found["held"][0], "given": found["given"][0], "accesses": accesses,
                "paging": {name: _paging(offsets[name], len(items), total) for name, (items, total) in found.items()},
                "titles": {d["name"]: _titles(d, locale) for d in queries.published(conn)},
                "coordinator": own == ctx.settings.data_coordinator or "admin" in user.roles}

    return page(request, "web/sharing.html", user=user, **await ctx.db.read(read))


SHARING_PAGE = 50  # items of each list on /sharing; each links to its earlier ones
SHARING_LISTS = ("incoming", "decided", "made", "held", "given", "accesses")
ANSWERED = tuple(s for s in requests.STATES if s != requests.OPEN)


def _offset(request: Request, name: str) -> int:
    """Where the list `name` starts on this page (its query parameter, the list's own)."""
    asked = request.query_params.get(name, "")
    return min(int(asked), 1_000_000) if asked.isdigit() and len(asked) <= 7 else 0


def _paging(offset: int, shown: int, total: int) -> dict[str, Any]:
    return {"offset": offset, "first": offset + 1, "last": offset + shown, "total": total,
            "earlier": offset + SHARING_PAGE if offset + shown < total else None}


@router.get("/sharing/overview")
async def overview(request: Request, user: OptionalStaff) -> Response:
    """The coordinating department's view of every department's requests: counts by state, and the late ones."""
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    _ = gettext_for(request_locale(request)).gettext
    state = request.query_params.get("state", "")
    state = state if state in requests.STATES else ""

    def read(conn: sa.Connection) -> dict[str, Any] | None:
        today = city_today(conn, now)
        if "admin" not in user.roles and requests.department_of(conn, user) != ctx.settings.data_coordinator:
            return None
        return {"counts": queries.request_counts(conn, today=today), "state": state,
                "overdue": queries.data_requests_for(conn, today=today, overdue_only=True),
                "recent": queries.data_requests_for(conn, today=today, state=state or None, limit=100)}

    found = await ctx.db.read(read)
    if found is None:
        return _error(request, user, 403, _("This page is for the department that coordinates data sharing."))
    return page(request, "web/sharing_overview.html", user=user, **found)


# -- one request ---------------------------------------------------------------------------------------------

async def _request_page(request: Request, user: StaffUser, request_id: int, *, status: int = 200,
                        error: str | None = None, form: FormData | None = None, action: str = "") -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    _ = gettext_for(request_locale(request)).gettext
    if not 0 < request_id <= MAX_ID:  # no row has it (and PostgreSQL would refuse to compare)
        return _error(request, user, 404, _("There is no such request."))

    def read(conn: sa.Connection) -> dict[str, Any] | None:
        today = city_today(conn, now)
        found = queries.data_request(conn, request_id, today=today)
        if not requests.may_see(conn, user, requester=found["requester"], provider=found["provider"],
                                coordinator=ctx.settings.data_coordinator):
            return None
        own = requests.department_of(conn, user)
        grant = queries.data_grant(conn, found["grant"]["id"], now=now) if found["grant"] else None
        accesses = queries.data_accesses_for(conn, grant_id=grant["id"], limit=50)[1] if grant else []
        d = queries.dataset_by_id(conn, found["dataset_id"])
        vocab = sources.vocabularies(conn, d)
        return {"req": found, "d": d, "grant": grant, "accesses": accesses, "vocab": vocab,
                "titles": _titles(d, request_locale(request)),
                # The grant form offers a row filter for the fields whose values are known, and for those
                # the request already filtered on.
                "filterable": [f for f in d["fields"] if f["name"] in vocab or f["name"] in found["row_filter"]],
                "decides": "admin" in user.roles or (own == found["provider"] and "supervisor" in user.roles),
                "coordinates": "admin" in user.roles or own == ctx.settings.data_coordinator,
                "requester_side": "admin" in user.roles or own == found["requester"]}

    try:
        found = await ctx.db.read(read)
    except NotFound:
        return _error(request, user, 404, _("There is no such request."))
    if found is None:
        return _error(request, user, 403, _("This request is between two other departments."))
    kept = None
    if form is not None and action == "decide":
        kept = {"fields": form.getlist("fields"), "clear_fields": form.getlist("clear_fields"),
                "filters": _row_filter(found["d"], form), "days": _kept(form, "days"),
                "reasons": _kept(form, "reasons"), "basis": _kept(form, "basis"),
                "rate_limit": _kept(form, "rate_limit"), "decision": _kept(form, "decision")}
    return page(request, "web/sharing_request.html", user=user, status=status, error=error, action=action,
                kept=kept, done=request.query_params.get("done", ""), **found)


@router.get("/sharing/requests/{request_id}")
async def request_page(request: Request, user: OptionalStaff, request_id: int) -> Response:
    if user is None:
        return login_redirect(request)
    return await _request_page(request, user, request_id)


def _decision(conn: sa.Connection, request_id: int, user: StaffUser, form: FormData, now: Any) -> None:
    req = queries.data_request(conn, request_id, today=city_today(conn, now))
    d = queries.dataset_by_id(conn, req["dataset_id"])
    body: dict[str, Any] = {"decision": _text(form, "decision"), "reasons": _text(form, "reasons"),
                            "basis": _text(form, "basis")}
    if body["decision"] == "grant":
        # Boxes left unticked narrow the grant (none ticked is refused by the verb, with its reason); "in
        # clear" for a field no longer granted means nothing and is dropped.
        fields = _values(form, "fields")
        body.update(fields=fields, clear_fields=[f for f in _values(form, "clear_fields") if f in fields],
                    row_filter=_row_filter(d, form), days=_int(form, "days") or req["days"])
        if _text(form, "rate_limit"):
            body["rate_limit"] = _text(form, "rate_limit")
    requests.decide(conn, request_id, user, body, now=now)


# Each action on a request page: the verb it runs, given (conn, request id, staff, form, now).
Action = Callable[[sa.Connection, int, StaffUser, FormData, Any], Any]
ACTIONS: dict[str, Action] = {
    "decide": _decision,
    "withdraw": lambda c, i, u, f, n: requests.withdraw(c, i, u, now=n),
    "revoke": lambda c, i, u, f, n: requests.revoke(c, _id(f, "grant") or 0, u, _text(f, "reason"), now=n),
    "delay": lambda c, i, u, f, n: requests.delay_disclosure(c, _id(f, "grant") or 0, u, days=_int(f, "days") or 0,
                                                             basis=_text(f, "basis"), now=n),
}


def _urge(request: Request) -> Action:
    coordinator = request.app.state.ctx.settings.data_coordinator
    return lambda c, i, u, f, n: requests.urge(c, i, u, _text(f, "note"), now=n, coordinator=coordinator)


@router.post("/sharing/requests/{request_id}/{action}")
async def act(request: Request, user: OptionalStaff, request_id: int, action: str) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    verb = _urge(request) if action == "urge" else ACTIONS.get(action)
    if verb is None:
        return _error(request, user, 404, _("There is no such action."))
    if not 0 < request_id <= MAX_ID:
        return _error(request, user, 404, _("There is no such request."))
    form = await request.form(max_files=0, max_fields=500)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _request_page(request, user, request_id, status=403, error=_("The form expired. Please try again."))
    now = ctx.clock.now()
    try:
        await ctx.db.write(lambda c: verb(c, request_id, user, form, now))
    except NotFound:
        return _error(request, user, 404, _("There is no such request."))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        return await _request_page(request, user, request_id, status=exc.status, error=exc.localized(locale),
                                   form=form, action=action)
    return RedirectResponse(f"/sharing/requests/{request_id}?done={action}", status_code=303)
