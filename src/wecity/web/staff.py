"""Staff pages: the department queue by SLA urgency (or priority), the dispatch centre's view, the inbox of
escalations and low ratings, the case page's actions, and the standard replies administrators keep."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from wecity.ai import duplicates
from wecity.cases import engine, handling, queries, replies
from wecity.cases.categories import list_categories
from wecity.cases.choices import CaseStatus, Channel, ReplyUse
from wecity.cases.models import reports
from wecity.core import csrf
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed, WeCityError
from wecity.core.http import client_address, request_locale
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.identity.service import StaffUser, list_departments, record_audit, works_in_dispatch_centre
from wecity.media import uploads
from wecity.web.forms import form_text
from wecity.web.i18n import gettext_for
from wecity.web.labels import PRIORITY_LABELS, REPLY_USES
from wecity.web.render import page
from wecity.web.views import login_redirect, not_allowed

router = APIRouter(include_in_schema=False)

MAX_NOTE = 2000
QUEUE_PAGE = 500  # cases shown on a queue page, the most urgent first
NEARBY_M = 300.0  # open cases of the same category this near are offered for merging
MAX_FORM_FILES = engine.MAX_EVIDENCE_PHOTOS + 1


def sees_every_department(user: StaffUser) -> bool:
    return user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR)


async def count_inbox(request: Request, user: StaffUser) -> None:
    """The inbox's counts, for the staff menu of the page being rendered."""
    ctx = request.app.state.ctx
    counts = await ctx.db.read(lambda conn: queries.inbox_counts(conn, user))
    request.state.inbox_count = sum(counts.values())


@router.get("/staff/queue")
async def queue(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    every_department = sees_every_department(user) and request.query_params.get("all") == "1"
    mine = not every_department and request.query_params.get("mine") == "1"
    sort = "priority" if request.query_params.get("sort") == "priority" else "due"
    name = "all" if every_department else "mine" if mine else "department"
    cases = await ctx.db.read(lambda conn: queries.queue(conn, user, now, name=name, limit=QUEUE_PAGE, sort=sort))
    await count_inbox(request, user)
    return page(request, "web/staff_queue.html", user=user, cases=cases, all=every_department, mine=mine, sort=sort,
                can_see_all=sees_every_department(user), priorities=PRIORITY_LABELS)


@router.get("/staff/inbox")
async def inbox_view(request: Request, user: OptionalStaff) -> Response:
    """催办 (by the SLA clock and by reporters) and low ratings waiting for a follow-up: the department's, or
    every department's for supervisors and dispatchers."""
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    found = await ctx.db.read(lambda conn: queries.inbox(conn, user, now))
    request.state.inbox_count = sum(len(part) for part in found.values())
    return page(request, "web/staff_inbox.html", user=user, escalated=found["escalated"], urged=found["urged"],
                followups=found["followups"], every_department=sees_every_department(user), priorities=PRIORITY_LABELS)


@router.get("/staff/dispatch")
async def dispatch_view(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not sees_every_department(user):
        return not_allowed(request, user)
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    cases = await ctx.db.read(lambda conn: queries.queue(conn, user, now, name="dispatch", limit=QUEUE_PAGE))
    await count_inbox(request, user)
    return page(request, "web/staff_dispatch.html", user=user, cases=cases, priorities=PRIORITY_LABELS)


async def _case_page(request: Request, user: StaffUser, case_id: int, *, status: int = 200,
                     error: str | None = None) -> Response:
    ctx = request.app.state.ctx
    now = ctx.clock.now()
    locale = request_locale(request)
    try:
        case = await ctx.db.read(lambda conn: queries.case_detail(conn, case_id, now))
    except NotFound:
        _ = gettext_for(locale).gettext
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such case."))
    if not sees_every_department(user) and case["department_id"] != user.department_id:
        return not_allowed(request, user)
    handler = user.has(Role.HANDLER) and (user.department_id == case["department_id"] or user.has(Role.ADMIN))
    in_department = user.department_id == case["department_id"]

    def gather(conn: Any) -> dict[str, Any]:
        found: dict[str, Any] = {"departments": list_departments(conn)}
        found["categories"] = [c for c in list_categories(conn) if c.active and c.code != case["category_code"]
                               and (user.has(Role.DISPATCHER) or c.department_id == case["department_id"])]
        found["assignees"] = handling.assignable(conn, case["department_id"])
        found["candidates"] = _merge_candidates(conn, user, case, now, handler)
        found["templates"] = {use: replies.templates_for(conn, status=case["status"], category_code=case["category_code"],
                                                         use=use, locale="zh_CN" if locale == "zh_CN" else "en")
                              for use in ReplyUse}
        found["centre"] = works_in_dispatch_centre(conn, user)
        found["may_call"] = in_department or found["centre"]
        return found

    found = await ctx.db.read(gather)
    chosen = _chosen_template(request, found["templates"])
    await count_inbox(request, user)
    return page(request, "web/staff_case.html", user=user, status=status, case=case, error=error,
                departments=found["departments"], candidates=found["candidates"], is_handler=handler,
                is_dispatcher=sees_every_department(user), is_supervisor=user.has(Role.SUPERVISOR),
                done=request.query_params.get("done", ""), categories=found["categories"],
                assignees=found["assignees"],
                # As handling.set_priority and handling.assign decide: the department, or the dispatch centre.
                may_organise=handler or (found["centre"] and sees_every_department(user))
                or (user.has(Role.SUPERVISOR) and in_department),
                may_recategorise=user.has(Role.DISPATCHER) or handler, templates=found["templates"], chosen=chosen,
                priorities=PRIORITY_LABELS, may_call=found["may_call"], max_photos=engine.MAX_EVIDENCE_PHOTOS,
                navigation_links=navigation_links(case))


def _chosen_template(request: Request, templates: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The standard reply picked for each form (`?resolve_template=…`, `?note_template=…`), so the page
    shows its fields to fill without JavaScript."""
    chosen: dict[str, Any] = {}
    for use, offered in templates.items():
        wanted = request.query_params.get(f"{use}_template", "")
        chosen[use] = next((t for t in offered if str(t["id"]) == wanted), None)
    return chosen


def navigation_links(case: dict[str, Any]) -> dict[str, str] | None:
    """Links that open the case's place in a maps app: a `geo:` URI (the phone's own choice of app) and
    Amap's marker page, which takes WGS-84 coordinates with `coordinate=wgs84`. Nothing is fetched."""
    if case.get("lat") is None or case.get("long") is None:
        return None
    lat, lon = f"{case['lat']:.6f}", f"{case['long']:.6f}"
    return {"geo": f"geo:{lat},{lon}?q={lat},{lon}",
            "amap": f"https://uri.amap.com/marker?position={lon},{lat}&coordinate=wgs84&callnative=1"}


def _merge_candidates(conn: Any, user: StaffUser, case: dict[str, Any], now: Any, handler: bool) -> list[dict[str, Any]]:
    """Cases this one may duplicate, to merge in one click: the AI platform's proposals (with their score),
    then open cases of the same category nearby, each with its distance and first photo. A handler is
    offered only its own department's cases (the only ones it may merge)."""
    if case["status"] in ("closed", "merged", "resolved", "verified") or not (handler or sees_every_department(user)):
        return []
    found: list[dict[str, Any]] = []
    for p in duplicates.proposals_for(conn, case["id"]):
        found.append({"case_id": p["other_case_id"], "score": p["score"], "distance_m": p["distance_m"],
                      "proposal_id": p["id"], "newer": p["case_id"], "older": p["candidate_id"],
                      "category_zh": p["other"]["category_zh"], "category_en": p["other"]["category_en"],
                      "description": p["other"]["description"], "same_category": p["same_category"],
                      "text_similarity": p["text_similarity"], "photo_similarity": p["photo_similarity"]})
    if case["lat"] is not None:
        seen = {c["case_id"] for c in found} | {case["id"]}
        for n in queries.nearby_open_cases(conn, lat=case["lat"], lon=case["long"], category_code=case["category_code"],
                                           now=now, radius_m=NEARBY_M, published_only=False):  # staff merge any
            if n["case_id"] in seen:
                continue
            newer, older = max(n["case_id"], case["id"]), min(n["case_id"], case["id"])
            found.append({"case_id": n["case_id"], "score": None, "distance_m": n["distance_m"], "proposal_id": None,
                          "newer": newer, "older": older, "category_zh": n["category_zh"],
                          "category_en": n["category_en"], "description": n.get("description", ""),
                          "same_category": True, "text_similarity": None, "photo_similarity": None})
    departments = queries.case_departments(conn, [c["case_id"] for c in found])
    if not sees_every_department(user):
        found = [c for c in found if departments.get(c["case_id"]) == case["department_id"]]
    photos = queries.first_photos(conn, [c["case_id"] for c in found])
    for c in found:
        c["photo"] = photos.get(c["case_id"])
    return found[:10]


@router.get("/staff/cases/{case_id}")
async def case_view(request: Request, user: OptionalStaff, case_id: int) -> Response:
    if user is None:
        return login_redirect(request)
    return await _case_page(request, user, case_id)


def _note(form: FormData, required: bool = False) -> str:
    note = form_text(form, "note", limit=MAX_NOTE)
    if required and not note:
        raise ValidationFailed("write a note", message_zh="请填写说明", code="case.note")
    return note


def _department(form: FormData) -> int:
    try:
        return int(str(form.get("department_id", "")))
    except ValueError:
        raise ValidationFailed("choose a department", message_zh="请选择部门", code="case.department") from None


def _case_number(form: FormData) -> int:
    try:
        return int(str(form.get("into_case_id", "")).strip().lstrip("#"))
    except ValueError:
        raise ValidationFailed("enter the number of the case to merge into", message_zh="请输入要并入的案件编号",
                               code="case.merge") from None


def _proposal(form: FormData) -> int:
    try:
        return int(str(form.get("proposal_id", "")))
    except ValueError:
        raise ValidationFailed("no duplicate proposal was chosen", message_zh="未选择并单建议",
                               code="ai.duplicate_not_found") from None


def _template_id(form: FormData) -> int | None:
    raw = str(form.get("template_id", "")).strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed("no standard reply was chosen", message_zh="未选择标准回复",
                               code="reply.not_applicable") from None


def _template_fields(form: FormData) -> dict[str, str]:
    """The values of a standard reply's fields: the form's `field:<name>` entries."""
    return {key[len("field:"):]: str(value)[:replies.MAX_VALUE + 1] for key, value in form.multi_items()
            if key.startswith("field:") and isinstance(value, str)}


def _resolve(c: Any, i: int, a: engine.Actor, n: Any, f: FormData, media: list[str]) -> None:
    template = _template_id(f)
    handling.resolve(c, i, a, n, note=_note(f, template is None), template_id=template, fields=_template_fields(f),
                 photos=media)


def _add_note(c: Any, i: int, a: engine.Actor, n: Any, f: FormData, media: list[str]) -> None:
    template = _template_id(f)
    handling.add_note(c, i, a, n, note=_note(f, template is None), public=f.get("public") == "1" or template is not None,
              template_id=template, fields=_template_fields(f), media_id=media[0] if media else None)


def _user_id(form: FormData) -> int:
    try:
        return int(str(form.get("user_id", "")))
    except ValueError:
        raise ValidationFailed("choose a person", message_zh="请选择人员", code="case.assignee") from None


# Each action: the verb it calls, given (conn, case_id, actor, now, form, the ids of the photos sent); a verb
# that returns a case id sends the browser to that case (the one a merge kept).
Action = Callable[[Any, int, engine.Actor, Any, FormData, list[str]], Any]
ACTIONS: dict[str, Action] = {
    "acknowledge": lambda c, i, a, n, f, m: engine.acknowledge(c, i, a, n),
    "return": lambda c, i, a, n, f, m: engine.return_case(c, i, str(f.get("reason", "")), a, n, _note(f) or None),
    "start": lambda c, i, a, n, f, m: engine.start(c, i, a, n, _note(f) or None),
    "resolve": _resolve,
    "dispatch": lambda c, i, a, n, f, m: engine.dispatch(c, i, _department(f), a, n, _note(f) or None),
    "transfer": lambda c, i, a, n, f, m: engine.transfer(c, i, _department(f), a, n, _note(f, True)),
    "verify": lambda c, i, a, n, f, m: engine.verify(c, i, a, n, _note(f) or None),
    "reject": lambda c, i, a, n, f, m: engine.reject_resolution(c, i, a, n, _note(f, True)),
    "close": lambda c, i, a, n, f, m: engine.close(c, i, a, n, _note(f) or None),
    "reopen": lambda c, i, a, n, f, m: engine.reopen(c, i, a, n, _note(f, True)),
    "note": _add_note,
    "followup": lambda c, i, a, n, f, m: engine.close_followup(c, i, a, n, _note(f, True)),
    "not-duplicate": lambda c, i, a, n, f, m: duplicates.dismiss(c, _proposal(f), a, n, case_id=i),
    "recategorise": lambda c, i, a, n, f, m: engine.recategorise(c, i, str(f.get("category_code", "")), a, n,
                                                                 _note(f) or None),
    "priority": lambda c, i, a, n, f, m: handling.set_priority(c, i, str(f.get("priority", "")), a, n),
    "assign": lambda c, i, a, n, f, m: handling.assign(c, i, _user_id(f), a, n, _note(f) or None),
    "urge": lambda c, i, a, n, f, m: handling.urge(c, i, a, n, _note(f) or None),
}


def _merge(events: Any) -> Action:
    """并单 from the case page: this case into the one typed or offered (`into_case_id`), or an offered newer
    case (`from_case_id`) into this one; the AI platform hears of it (`cases.merged`)."""
    def run(c: Any, i: int, a: engine.Actor, n: Any, f: FormData, m: list[str]) -> int:
        into = _case_number(f)
        raw = str(f.get("from_case_id", "")).strip()
        source = int(raw) if raw.isdigit() else i
        if i not in (source, into):
            raise ValidationFailed("one of the two cases must be this one", message_zh="并单须包含本案件",
                                   code="case.merge")
        return engine.merge(c, source, into, a, n, events=events)
    return run


MERGES: dict[str, Callable[[Any], Action]] = {
    "merge": _merge,
    "merge-proposal": lambda events: lambda c, i, a, n, f, m: duplicates.merge_proposal(c, _proposal(f), a, n),
    # 撤销并单: this merged case out of its merge; the AI platform hears of it (`cases.unmerged`)
    "unmerge": lambda events: lambda c, i, a, n, f, m: engine.unmerge(c, i, a, n, _note(f, True), events=events),
}
# Dispatch-centre work: refused to others before the form is read.
CENTRE_ONLY = ("dispatch", "transfer", "verify", "reject", "close", "reopen", "not-duplicate", "urge")
# Actions that take photos, and how many.
PHOTOS = {"resolve": engine.MAX_EVIDENCE_PHOTOS, "note": 1}


@router.post("/staff/cases/{case_id}/call")
async def call_reporter(request: Request, user: OptionalStaff, case_id: int) -> Response:
    """Call a reporter: the number is revealed only here, with the access written to the audit log (as the
    staff API's contacts are), and the browser is sent to `tel:` with it."""
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    form = await request.form(max_files=0, max_fields=5)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _case_page(request, user, case_id, status=403, error=_("The form expired. Please try again."))
    try:
        report_id = int(str(form.get("report_id", "")))
    except ValueError:
        report_id = 0
    now = ctx.clock.now()
    address = client_address(request)

    def reveal(conn: Any) -> str | None:
        row = conn.execute(sa.select(reports.c.phone, reports.c.case_id).where(reports.c.id == report_id)).first()
        department = conn.execute(sa.text("SELECT department_id FROM cases WHERE id = :id"), {"id": case_id}).first()
        if department is None or row is None or row.case_id != case_id or not row.phone:
            raise NotFound("no reporter's phone on this case", message_zh="该案件没有报告人电话", code="case.no_phone")
        if department.department_id != user.department_id and not works_in_dispatch_centre(conn, user):
            return None
        record_audit(conn, at=now, actor=f"user:{user.id}", action="personal_data.view", target=f"case:{case_id}",
                     source_address=address, detail={"fields": ["phone"], "report_id": report_id, "purpose": "call"})
        return str(row.phone)

    try:
        phone = await ctx.db.write(reveal)
    except NotFound as exc:
        return await _case_page(request, user, case_id, status=404, error=exc.localized(locale))
    if phone is None:
        await ctx.db.write(lambda conn: record_audit(
            conn, at=now, actor=f"user:{user.id}", action="personal_data.view", target=f"case:{case_id}",
            outcome="denied", source_address=address, detail={"fields": ["phone"], "purpose": "call"}))
        return not_allowed(request, user)
    number = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    response = RedirectResponse(f"tel:{number}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _refused(request: Request, user: StaffUser, case_id: int, action: str, code: str) -> None:
    """A refused action is on the record as a done one is (as the staff API writes it: MLPS asks for failed
    operations too), with the reason's code."""
    ctx = request.app.state.ctx
    now, address = ctx.clock.now(), client_address(request)
    await ctx.db.write(lambda conn: record_audit(
        conn, at=now, actor=f"user:{user.id}", action=f"case.{action}", target=f"case:{case_id}", outcome="refused",
        source_address=address, detail={"code": code}))


def _photo_refusal(conn: Any, actor: engine.Actor, case_id: int, action: str) -> WeCityError | None:
    """Why the actor may not `action` (resolve or note, the actions that take photos) the case, as the
    engine judges it (`engine.check_may`), or None: asked before the form is read."""
    try:
        engine.check_may(conn, case_id, actor, action)
    except WeCityError as exc:
        return exc
    return None


@router.post("/staff/cases/{case_id}/{action}")
async def act(request: Request, user: OptionalStaff, case_id: int, action: str) -> Response:
    """Run one case-engine verb as this staff user; the engine checks role, department and state."""
    if user is None:
        return login_redirect(request)
    ctx = request.app.state.ctx
    settings = ctx.settings
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    verb = ACTIONS.get(action) or (MERGES[action](ctx.registry.events) if action in MERGES else None)
    if verb is None:
        return page(request, "web/error.html", user=user, status=404, title=_("Not found"),
                    message=_("There is no such action."))
    if action in CENTRE_ONLY and not sees_every_department(user):
        await _refused(request, user, case_id, action, "case.role_required")
        return await _case_page(request, user, case_id, status=403,
                                error=PermissionDenied("needs the dispatcher or supervisor role",
                                                       message_zh="需要派遣员或督办角色").localized(locale))
    actor = engine.Actor.staff(user, channel=Channel.PORTAL, source_address=client_address(request))
    if action in PHOTOS and (refusal := await ctx.db.read(_photo_refusal, actor, case_id, action)) is not None:
        await _refused(request, user, case_id, action, refusal.code)
        return await _case_page(request, user, case_id, status=refusal.status, error=refusal.localized(locale))
    # A text field holds at most a form's worth (max_part_size bounds the fields, not the files).
    try:
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=80, max_part_size=settings.max_form_bytes)
    except Exception:  # an oversized or malformed body is shown as a form error, like any other
        return await _case_page(request, user, case_id, status=400,
                                error=_("The photo is too large or the form is damaged."))
    if not csrf.token_is_valid(request, settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _case_page(request, user, case_id, status=403, error=_("The form expired. Please try again."))
    raw: list[bytes] = []
    for upload in form.getlist("evidence"):
        if isinstance(upload, UploadFile) and upload.filename:
            raw.append(await upload.read(settings.max_upload_bytes + 1))
    await form.close()
    try:
        if len(raw) > PHOTOS.get(action, 0):
            raise ValidationFailed(f"at most {PHOTOS.get(action, 0)} photos here",
                                   message_zh=f"此处最多 {PHOTOS.get(action, 0)} 张照片", code="case.evidence")
        now = ctx.clock.now()
        async with uploads.staged(raw, ctx, now=now) as evidence:

            def run(conn: Any) -> Any:
                return verb(conn, case_id, actor, now, form, evidence.record(conn))

            kept = await ctx.db.write(run)
            evidence.keep()
    except WeCityError as exc:
        if exc.status >= 500:
            raise  # the city's fault, shown as such by the error page, not as a mistake in the form
        await _refused(request, user, case_id, action, exc.code)
        return await _case_page(request, user, case_id, status=exc.status, error=exc.localized(locale))
    target = kept if isinstance(kept, int) and action.startswith("merge") else case_id
    return RedirectResponse(f"/staff/cases/{target}?done={action}", status_code=303)


# -- standard replies (administrators) -------------------------------------------------------------------

async def _replies_page(request: Request, user: StaffUser, *, status: int = 200, error: str | None = None,
                        draft: dict[str, Any] | None = None) -> Response:
    ctx = request.app.state.ctx

    def gather(conn: Any) -> tuple[list[dict[str, Any]], list[Any]]:
        return replies.list_templates(conn), [c for c in list_categories(conn) if c.active]

    templates, categories = await ctx.db.read(gather)
    editing = None
    wanted = request.query_params.get("edit", "")
    if draft is None and wanted.isdigit():
        editing = next((t for t in templates if t["id"] == int(wanted)), None)
    return page(request, "web/staff_replies.html", user=user, status=status, error=error, templates=templates,
                categories=categories, editing=draft or editing, uses=REPLY_USES, case_statuses=[s.value for s in CaseStatus],
                done=request.query_params.get("done", ""))


@router.get("/staff/replies")
async def replies_view(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    return await _replies_page(request, user)


@router.post("/staff/replies/{action}")
async def replies_act(request: Request, user: OptionalStaff, action: str) -> Response:
    """new, <id> (save), <id>-delete: administrators only, refused before the form is read."""
    if user is None:
        return login_redirect(request)
    if not user.has(Role.ADMIN):
        return not_allowed(request, user)
    ctx = request.app.state.ctx
    locale = request_locale(request)
    _ = gettext_for(locale).gettext
    form = await request.form(max_files=0, max_fields=20, max_part_size=replies.MAX_BODY * 4)
    if not csrf.token_is_valid(request, ctx.settings.secret_key, str(form.get(csrf.CSRF_FIELD, ""))):
        return await _replies_page(request, user, status=403, error=_("The form expired. Please try again."))
    values: dict[str, Any] = {k: str(form.get(k, "")) for k in ("name", "locale", "use", "status", "category_code",
                                                                "body")}
    values["active"] = form.get("active") == "1"
    now = ctx.clock.now()
    address = client_address(request)
    try:
        if action == "new":
            await ctx.db.write(lambda c: replies.create_template(c, user, values, now=now, source_address=address))
        elif action.endswith("-delete") and action[:-len("-delete")].isdigit():
            template_id = int(action[:-len("-delete")])
            await ctx.db.write(lambda c: replies.delete_template(c, user, template_id, now=now, source_address=address))
        elif action.isdigit():
            await ctx.db.write(lambda c: replies.update_template(c, user, int(action), values, now=now,
                                                                 source_address=address))
        else:
            raise NotFound("there is no such action", message_zh="没有该操作", code="reply.not_found")
    except WeCityError as exc:
        if exc.status >= 500:
            raise
        draft = {**values, "id": int(action) if action.isdigit() else None}
        return await _replies_page(request, user, status=exc.status, error=exc.localized(locale), draft=draft)
    return RedirectResponse("/staff/replies?done=1", status_code=303)
