"""The data catalogue's pages: browse and search the departments' datasets, and one dataset's fields,
share class and ways to read it (CKAN, DCAT-AP, the data API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from wecity.core.errors import NotFound, WeCityError
from wecity.core.http import client_address, request_locale, with_retry_after
from wecity.datashare import queries, sources
from wecity.datashare.catalogue import THEMES, forget_cached
from wecity.datashare.dcat import access_right, data_api_url
from wecity.datashare.requests import department_of
from wecity.identity.deps import OptionalStaff
from wecity.web.i18n import gettext_for
from wecity.web.render import page

router = APIRouter(include_in_schema=False)


async def _limited(request: Request) -> WeCityError | None:
    try:
        await request.app.state.ctx.limits.hit("data_read", client_address(request) or "-")
    except WeCityError as exc:
        return exc
    return None


@router.get("/data")
async def catalogue(request: Request, user: OptionalStaff) -> Response:
    ctx = request.app.state.ctx
    refused = await _limited(request)
    if refused is not None:
        return with_retry_after(page(request, "web/error.html", user=user, status=refused.status, title="429",
                                     message=refused.localized(request_locale(request))), refused)
    q = request.query_params.get("q", "")[:100]
    publisher = request.query_params.get("publisher", "")[:64] or None
    asked_theme = request.query_params.get("theme", "")
    theme = asked_theme if asked_theme in THEMES else None
    open_only = request.query_params.get("open") == "1"
    count, found = await ctx.db.read(lambda c: queries.search_datasets(
        c, text=q or None, publisher=publisher, theme=theme, open_only=open_only, limit=200))
    publishers = await ctx.db.read(queries.publishers)
    return page(request, "web/data.html", user=user, datasets=found, count=count, q=q, publisher=publisher or "",
                theme=theme or "", open_only=open_only, publishers=publishers, themes=THEMES)


@router.get("/data/{name}")
async def dataset(request: Request, user: OptionalStaff, name: str) -> Response:
    ctx = request.app.state.ctx
    refused = await _limited(request)
    if refused is not None:
        return with_retry_after(page(request, "web/error.html", user=user, status=refused.status, title="429",
                                     message=refused.localized(request_locale(request))), refused)
    try:
        d = await ctx.db.read(queries.dataset, name[:100])
    except NotFound:
        _ = gettext_for(request_locale(request)).gettext
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such dataset."))
    base = str(request.base_url).rstrip("/")
    own = await ctx.db.read(lambda c: department_of(c, user)) if user else None
    return page(request, "web/dataset.html", user=user, d=d, access=access_right(d), own_department=own,
                sample=await _sample(ctx, d), json_url=data_api_url(base, d["name"], "JSON"),
                csv_url=data_api_url(base, d["name"], "CSV"))


SAMPLE_ROWS = 5


async def _sample(ctx: Any, d: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The first rows of open data, as the data API serves them; None for data that is not open (a sample
    of it would be a reading like any other) or not served yet."""
    if not d["open_data"]:
        return None
    fields = [f["name"] for f in d["fields"] if f["type"] != "geometry"]
    query = sources.Query(fields, {}, SAMPLE_ROWS, 0, with_total=False)  # a sample shows rows, not a count
    try:
        found = await ctx.db.read(lambda c: sources.reader(d)(c, d, query, ctx.clock.now()))
    except NotFound:
        return None
    return [dict(zip(found.columns, row, strict=True)) for row in found.rows]


@router.post("/data/{name}/rows")
async def upload_rows(request: Request, user: OptionalStaff, name: str) -> Response:
    """A department's staff replace the rows of one of its uploaded-table datasets (CSV or XLSX)."""
    from fastapi.responses import RedirectResponse

    from wecity.core import csrf
    from wecity.datashare import uploads
    from wecity.datashare.api import may_upload, read_upload
    from wecity.identity.audit import record_audit
    from wecity.web.views import login_redirect

    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    try:
        d = await ctx.db.read(queries.dataset, name[:100])
        await may_upload(ctx, user, d)  # before the body is read
        form = await request.form(max_files=1, max_fields=5)
        try:
            if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
                return page(request, "web/error.html", user=user, status=403, title=_("Not allowed"),
                            message=_("The form expired. Please try again."))
            rows = await read_upload(request, ctx, d)  # reads the same (parsed once) form
        finally:
            await form.close()
        now = ctx.clock.now()

        def run(conn: Any) -> int:
            count = uploads.replace_rows(conn, d, rows, now=now)
            record_audit(conn, at=now, actor=f"user:{user.username}", action="dataset.upload",
                         target=f"dataset:{d['name']}", detail={"rows": count})
            return count

        count = await ctx.db.write(run)
        await forget_cached(ctx.db)
    except NotFound:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such dataset."))
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        errors = exc.details.get("errors_zh" if locale == "zh_CN" else "errors") or []
        return page(request, "web/error.html", user=user, status=exc.status, title=_("The table was not uploaded"),
                    message=exc.localized(locale) + ("" if not errors else " " + "; ".join(errors[:10])))
    return RedirectResponse(f"/data/{d['name']}?uploaded={count}", status_code=303)
