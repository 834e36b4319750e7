"""HTTP adapter of the case engine: the staff API and the citizen's tracking API under /api/v1."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from wecity.cases import citizen_voice, engine, handling, ngsild, queries, replies, rules_api
from wecity.cases.categories import list_categories
from wecity.cases.choices import CaseStatus, Channel, Priority, ReplyUse, ReturnReason
from wecity.cases.models import cases
from wecity.core.context import AppContext
from wecity.core.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from wecity.core.http import ONE_FILE_BODY, Ctx, client_address, id_param, one_file
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.models import departments
from wecity.identity.service import StaffUser, department_id_by_code, record_audit, works_in_dispatch_centre
from wecity.media import uploads

router = APIRouter(prefix="/api/v1", tags=["cases"])
router.include_router(rules_api.router)  # /api/v1/sensor-rules
CaseId = Annotated[int, id_param("case id")]


async def on_startup(ctx: AppContext) -> None:
    """The cases' NGSI-LD entities are written with the app's @context store (the broker's, loaded first)."""
    store = ctx.services.get("ngsild_contexts")
    if store is not None:
        ngsild.use_store(ctx.db.engine, store)


class CaseSummary(BaseModel):
    id: int
    status: CaseStatus
    category_code: str
    category_zh: str
    category_en: str
    department_id: int | None
    department_zh: str | None
    department_en: str | None
    area_zh: str | None
    area_en: str | None
    lat: float | None
    long: float | None
    address: str | None
    description: str
    source: str
    created_at: datetime
    updated_at: datetime
    ack_due_at: datetime | None
    resolve_due_at: datetime | None
    next_due_at: datetime | None
    seconds_left: int | None = Field(description="until the clock that matters now; negative when overdue")
    overdue: bool
    ack_escalated: bool
    resolve_escalated: bool
    followup_open: bool
    reopen_count: int
    priority: Priority
    assignee_id: int | None


# A standard reply's fields: at most 20, each name up to 40 characters and value up to 500.
ReplyFields = Annotated[dict[Annotated[str, Field(max_length=40)], Annotated[str, Field(max_length=500)]],
                        Field(max_length=replies.MAX_FIELDS)]


class Note(BaseModel):
    note: str | None = Field(default=None, max_length=4000)
    public: bool = False
    template_id: int | None = Field(default=None, description="a standard reply to send (public notes only)")
    fields: ReplyFields = Field(default_factory=dict, description="the values of the template's {{fields}}")


class ReturnIn(BaseModel):
    reason: ReturnReason
    note: str | None = Field(default=None, max_length=4000)


class ResolveIn(BaseModel):
    note: str | None = Field(default=None, max_length=4000,
                             description="what was done; with template_id, words added after the reply")
    evidence_media_id: str | None = Field(default=None, min_length=1, max_length=64)
    evidence_media_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=engine.MAX_EVIDENCE_PHOTOS, description="several evidence photos")
    template_id: int | None = Field(default=None, description="a standard reply to send as the note")
    fields: ReplyFields = Field(default_factory=dict, description="the values of the template's {{fields}}")


class PriorityIn(BaseModel):
    priority: Priority
    note: str | None = Field(default=None, max_length=4000)


class ReplyTemplateIn(BaseModel):
    name: str = Field(min_length=1, max_length=replies.MAX_NAME)
    locale: str = Field(pattern="^(zh_CN|en)$")
    use: ReplyUse
    status: CaseStatus | None = None
    category_code: str | None = Field(default=None, max_length=64)
    body: str = Field(min_length=1, max_length=replies.MAX_BODY)
    active: bool = True


class DepartmentIn(BaseModel):
    department_code: str
    note: str | None = Field(default=None, max_length=4000)


class AssignIn(BaseModel):
    user_id: int = Field(ge=1, le=2**31 - 1, description="an active handler of the case's department")
    note: str | None = Field(default=None, max_length=4000)


class MergeIn(BaseModel):
    into_case_id: CaseId


class OptionalNote(BaseModel):
    note: str | None = Field(default=None, max_length=4000)


class RatingIn(BaseModel):
    stars: int = Field(ge=1, le=5)
    tags: list[str] = Field(default_factory=list, max_length=10)
    comment: str | None = Field(default=None, max_length=1000)


class ReopenIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)


def _actor(request: Request, user: StaffUser) -> engine.Actor:
    return engine.Actor.staff(user, channel=Channel.STAFF_API, source_address=client_address(request))


async def _can_see(ctx: Any, user: StaffUser, case_id: CaseId) -> None:
    """Staff see their department's cases; the dispatch centre, supervisors and admins see all."""
    if user.has(Role.DISPATCHER) or user.has(Role.SUPERVISOR):
        return
    dept = await ctx.db.read(lambda c: c.execute(sa.text("SELECT department_id FROM cases WHERE id = :id"),
                                                 {"id": case_id}).scalar())
    if dept is None and not await ctx.db.read(lambda c: c.execute(
            sa.text("SELECT 1 FROM cases WHERE id = :id"), {"id": case_id}).scalar()):
        raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
    if dept != user.department_id:
        raise PermissionDenied("this case belongs to another department", message_zh="该案件属于其他部门",
                               code="case.not_your_department")


@router.get("/cases", response_model=list[CaseSummary], summary="A queue of cases, most urgent first")
async def list_cases(ctx: Ctx, user: CurrentStaff,
                     queue: Annotated[str, Query(pattern="^(department|dispatch|overdue|all|followup|mine)$")] = "department",
                     status: CaseStatus | None = None,
                     sort: Annotated[str, Query(pattern="^(due|priority)$")] = "due",
                     limit: Annotated[int, Query(ge=1, le=500)] = 200) -> list[dict[str, Any]]:
    return await ctx.db.read(lambda c: queries.queue(c, user, ctx.clock.now(), name=queue, status=status,
                                                     limit=limit, sort=sort))


@router.get("/inbox", summary="催办 (by the SLA clock and by reporters) and low ratings awaiting a follow-up (my department's; "
                            "all for supervisors)")
async def inbox(ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    return await ctx.db.read(lambda c: queries.inbox(c, user, ctx.clock.now()))


@router.get("/cases/{case_id}", summary="Case detail with reports (contacts masked) and timeline")
async def get_case(ctx: Ctx, user: CurrentStaff, case_id: CaseId) -> dict[str, Any]:
    await _can_see(ctx, user, case_id)
    return await ctx.db.read(queries.case_detail, case_id, ctx.clock.now())


def _may_see_contacts(conn: sa.Connection, user: StaffUser, case_id: int) -> bool:
    department = conn.execute(sa.select(cases.c.department_id).where(cases.c.id == case_id)).scalar()
    return department == user.department_id or works_in_dispatch_centre(conn, user)


@router.get("/cases/{case_id}/contacts", summary="The reporters' contact details (audited access)")
async def get_contacts(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId) -> list[dict[str, Any]]:
    await _can_see(ctx, user, case_id)
    now = ctx.clock.now()
    if not await ctx.db.read(_may_see_contacts, user, case_id):
        # Seeing a case is not seeing its reporters: outside the dispatch centre, only its own department.
        await ctx.db.write(lambda conn: record_audit(
            conn, at=now, actor=f"user:{user.id}", action="personal_data.view", target=f"case:{case_id}",
            outcome="denied", source_address=client_address(request)))
        raise PermissionDenied("only the responsible department or the dispatch centre may see the contacts",
                               message_zh="只有责任部门或派遣中心可以查看联系方式", code="case.not_your_department")

    def reveal(conn: sa.Connection) -> list[dict[str, Any]]:
        detail = queries.case_detail(conn, case_id, now, reveal_contacts=True)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="personal_data.view", target=f"case:{case_id}",
                     source_address=client_address(request), detail={"fields": ["name", "phone", "email"]})
        return [{"report_id": r["id"], "name": r["name"], "phone": r["phone"], "email": r["email"]}
                for r in detail["reports"]]

    return await ctx.db.write(reveal)


async def _act(request: Request, ctx: Any, user: StaffUser, case_id: CaseId, verb: Any, *args: Any,
               **kwargs: Any) -> dict[str, Any]:
    """Run one engine verb as this user; refusals are audited too (MLPS asks for failed actions)."""
    now = ctx.clock.now()
    actor = _actor(request, user)
    try:
        await _can_see(ctx, user, case_id)
        await ctx.db.write(lambda conn: verb(conn, case_id, *args, actor, now, **kwargs))
    except (PermissionDenied, ValidationFailed, InvalidTransition) as exc:
        refusal = {"code": exc.code}
        await ctx.db.write(lambda conn: record_audit(
            conn, at=now, actor=actor.id, action=f"case.{verb.__name__}", target=f"case:{case_id}",
            outcome="refused", source_address=actor.source_address, detail=refusal))
        raise
    return await ctx.db.read(queries.case_detail, case_id, ctx.clock.now())


@router.post("/cases/{case_id}/acknowledge", summary="签收: take the case")
async def acknowledge(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.acknowledge)


@router.post("/cases/{case_id}/return", summary="退单: send back to the dispatch centre with a reason")
async def return_case(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: ReturnIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.return_case, body.reason, note=body.note)


@router.post("/cases/{case_id}/start", summary="开始处置")
async def start(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                body: OptionalNote | None = None) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.start, note=body.note if body else None)


@router.post("/cases/{case_id}/resolve", summary="办结: resolved, with a note (or a standard reply) and evidence photos")
async def resolve(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: ResolveIn) -> dict[str, Any]:
    photos = list(dict.fromkeys([*([body.evidence_media_id] if body.evidence_media_id else []),
                                 *body.evidence_media_ids]))
    if len(photos) > engine.MAX_EVIDENCE_PHOTOS:
        raise ValidationFailed(f"at most {engine.MAX_EVIDENCE_PHOTOS} evidence photos",
                               message_zh=f"处置照片最多 {engine.MAX_EVIDENCE_PHOTOS} 张", code="case.evidence")
    for media_id in photos:
        await _check_media(ctx, media_id)
    return await _act(request, ctx, user, case_id, handling.resolve, note=body.note, template_id=body.template_id,
                      fields=body.fields, photos=photos)


@router.post("/cases/{case_id}/verify", summary="核查通过")
async def verify(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                 body: OptionalNote | None = None) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.verify, note=body.note if body else None)


@router.post("/cases/{case_id}/reject", summary="核查不通过: back to the department")
async def reject(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: ReopenIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.reject_resolution, note=body.note)


@router.post("/cases/{case_id}/close", summary="结案")
async def close(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                body: OptionalNote | None = None) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.close, note=body.note if body else None)


@router.post("/cases/{case_id}/reopen", summary="重新打开 (within 7 days of closing)")
async def reopen(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: ReopenIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.reopen, note=body.note)


async def _department(ctx: Any, code: str) -> int:
    return await ctx.db.read(department_id_by_code, code)


@router.post("/cases/{case_id}/dispatch", summary="派遣 / re-dispatch a returned case")
async def dispatch(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: DepartmentIn) -> dict[str, Any]:
    department_id = await _department(ctx, body.department_code)
    return await _act(request, ctx, user, case_id, engine.dispatch, department_id, note=body.note)


@router.post("/cases/{case_id}/transfer", summary="转办 to another department")
async def transfer(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: DepartmentIn) -> dict[str, Any]:
    if not body.note:
        raise ValidationFailed("say why the case is transferred", message_zh="请填写转办原因", code="case.note")
    department_id = await _department(ctx, body.department_code)
    return await _act(request, ctx, user, case_id, engine.transfer, department_id, note=body.note)


class CategoryIn(BaseModel):
    category_code: str = Field(min_length=1, max_length=64)
    note: str | None = Field(default=None, max_length=4000)


@router.post("/cases/{case_id}/recategorise",
             summary="改类: file the case under the right category (dispatch centre; a handler within its department's)")
async def recategorise(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: CategoryIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.recategorise, body.category_code, note=body.note)


@router.post("/cases/{case_id}/priority", summary="优先级: low, normal, high or urgent (the department or the dispatch centre)")
async def set_priority(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                       body: PriorityIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, handling.set_priority, body.priority, note=body.note)


class UrgeIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000, description="what the caller said (kept internal)")


@router.post("/cases/{case_id}/urge",
             summary="来电催办: a caller presses for the case, taken down by the dispatch centre (as a reporter's 催办: "
                     "once a day per case)")
async def urge_for_caller(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                          body: UrgeIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, handling.urge, note=body.note)


@router.get("/cases/{case_id}/assignees", summary="Whom the case may be assigned to: its department's handlers")
async def assignees(ctx: Ctx, user: CurrentStaff, case_id: CaseId) -> list[dict[str, Any]]:
    await _can_see(ctx, user, case_id)
    department = await ctx.db.read(lambda c: c.execute(sa.select(cases.c.department_id)
                                                       .where(cases.c.id == case_id)).scalar())
    return await ctx.db.read(handling.assignable, department)


@router.post("/cases/{case_id}/assign", summary="指派 to a handler of the department (told in-app; webhook case.assigned)")
async def assign(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: AssignIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, handling.assign, body.user_id, note=body.note)


@router.post("/cases/{case_id}/merge", summary="并单: fold this case into another")
async def merge(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: MergeIn) -> dict[str, Any]:
    await _act(request, ctx, user, case_id, engine.merge, body.into_case_id, events=ctx.registry.events)
    return await ctx.db.read(queries.case_detail, body.into_case_id, ctx.clock.now())


class UnmergeIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="why the merge was wrong (kept internal)")


@router.post("/cases/{case_id}/unmerge",
             summary="撤销并单: take a merged case out of its merge, with the reports that were its own (whoever merged it)")
async def unmerge(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: UnmergeIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.unmerge, note=body.note, events=ctx.registry.events)


@router.post("/cases/{case_id}/notes", summary="备注 on the timeline (public notes are shown to citizens)")
async def add_note(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId, body: Note) -> dict[str, Any]:
    if body.template_id is None and not (body.note or "").strip():
        raise ValidationFailed("the note is empty", message_zh="备注为空", code="case.note")
    return await _act(request, ctx, user, case_id, handling.add_note, note=body.note, public=body.public,
                      template_id=body.template_id, fields=body.fields)


@router.get("/cases/{case_id}/reply-templates", tags=["reply templates"],
            summary="The standard replies that fit the case's state and category")
async def case_reply_templates(ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                               use: ReplyUse | None = None) -> list[dict[str, Any]]:
    await _can_see(ctx, user, case_id)

    def run(conn: sa.Connection) -> list[dict[str, Any]]:
        case = conn.execute(sa.select(cases.c.status, cases.c.category_code).where(cases.c.id == case_id)).first()
        if case is None:
            raise NotFound(f"no case {case_id}", message_zh=f"没有案件 {case_id}", code="case.not_found")
        return replies.templates_for(conn, status=case.status, category_code=case.category_code, use=use)

    return await ctx.db.read(run)


def _require_admin(user: StaffUser) -> None:
    if not user.has(Role.ADMIN):
        raise PermissionDenied("administrators only", message_zh="仅限管理员", code="auth.admin_only")


TemplateId = Annotated[int, id_param("reply template id")]


@router.get("/reply-templates", tags=["reply templates"], summary="Every standard reply (administrators)")
async def list_reply_templates(ctx: Ctx, user: CurrentStaff) -> list[dict[str, Any]]:
    _require_admin(user)
    return await ctx.db.read(replies.list_templates)


@router.post("/reply-templates", tags=["reply templates"], status_code=201, summary="Add a standard reply")
async def create_reply_template(request: Request, ctx: Ctx, user: CurrentStaff,
                                body: ReplyTemplateIn) -> dict[str, Any]:
    _require_admin(user)
    now = ctx.clock.now()
    template_id = await ctx.db.write(lambda c: replies.create_template(
        c, user, body.model_dump(mode="json"), now=now, source_address=client_address(request)))
    return await ctx.db.read(replies.get_template, template_id)


@router.put("/reply-templates/{template_id}", tags=["reply templates"], summary="Change a standard reply")
async def update_reply_template(request: Request, ctx: Ctx, user: CurrentStaff, template_id: TemplateId,
                                body: ReplyTemplateIn) -> dict[str, Any]:
    _require_admin(user)
    now = ctx.clock.now()
    await ctx.db.write(lambda c: replies.update_template(
        c, user, template_id, body.model_dump(mode="json"), now=now, source_address=client_address(request)))
    return await ctx.db.read(replies.get_template, template_id)


@router.delete("/reply-templates/{template_id}", tags=["reply templates"], status_code=204,
               summary="Remove a standard reply")
async def delete_reply_template(request: Request, ctx: Ctx, user: CurrentStaff, template_id: TemplateId) -> None:
    _require_admin(user)
    now = ctx.clock.now()
    await ctx.db.write(lambda c: replies.delete_template(c, user, template_id, now=now,
                                                         source_address=client_address(request)))


@router.post("/cases/{case_id}/followup/close", summary="The supervisor's answer to a low rating")
async def close_followup(request: Request, ctx: Ctx, user: CurrentStaff, case_id: CaseId,
                         body: ReopenIn) -> dict[str, Any]:
    return await _act(request, ctx, user, case_id, engine.close_followup, note=body.note)


async def _check_media(ctx: Any, media_id: str) -> None:
    from wecity.media.service import get_media

    if await ctx.db.read(get_media, media_id) is None:
        raise ValidationFailed("evidence_media_id names no uploaded photo", message_zh="处置照片不存在",
                               code="case.evidence")


@router.post("/media", summary="Upload a photo (evidence; multipart `file`); returns its id for resolve",
             openapi_extra=ONE_FILE_BODY)
async def upload_media(request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    data, _ = await one_file(request, max_bytes=ctx.settings.max_upload_bytes, code="media.missing",
                             what_en="photo", what_zh="照片")
    now = ctx.clock.now()
    async with uploads.staged([data], ctx, now=now) as photo:
        ids = await ctx.db.write(photo.record)
        photo.keep()
    return {"id": ids[0], "url": f"/media/{ids[0]}", "thumbnail_url": f"/media/{ids[0]}/thumbnail"}


@router.get("/departments", summary="Departments")
async def list_departments(ctx: Ctx) -> list[dict[str, Any]]:
    return await ctx.db.read(lambda c: [dict(r._mapping) for r in c.execute(
        sa.select(departments.c.id, departments.c.code, departments.c.name_zh, departments.c.name_en,
                  departments.c.is_dispatch_centre).order_by(departments.c.id))])


@router.get("/categories", summary="Service categories with their SLA targets")
async def categories(ctx: Ctx) -> list[dict[str, Any]]:
    rows = await ctx.db.read(list_categories)
    return [{"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "group_zh": c.group_zh,
             "group_en": c.group_en, "keywords": c.keywords, "ack_minutes": c.ack_minutes,
             "resolve_hours": c.resolve_hours, "calendar": c.calendar, "attributes": c.attributes or []}
            for c in rows]


# -- citizens ---------------------------------------------------------------------------------------------

@router.get("/track/{token}", tags=["citizens"], summary="A report's progress by its tracking code")
async def track(ctx: Ctx, token: str) -> dict[str, Any]:
    return await ctx.db.read(queries.tracking_view, token, ctx.clock.now())


@router.post("/track/{token}/rating", tags=["citizens"], summary="好差评: rate the result 1–5")
async def rate(request: Request, ctx: Ctx, token: str, body: RatingIn) -> dict[str, Any]:
    # Counted per address before any work, as every citizen's verb without credentials: each guess at a
    # code is a read, and each rating a write.
    await ctx.limits.hit("case_rating", client_address(request) or "-")
    now = ctx.clock.now()
    await ctx.db.write(lambda c: engine.rate(c, token, body.stars, now, tags=body.tags, comment=body.comment))
    return await ctx.db.read(queries.tracking_view, token, ctx.clock.now())


@router.post("/track/{token}/reopen", tags=["citizens"], summary="Not fixed: reopen within 7 days of closing")
async def citizen_reopen(request: Request, ctx: Ctx, token: str, body: ReopenIn) -> dict[str, Any]:
    await ctx.limits.hit("portal_voice", client_address(request) or "-")  # as the portal's "still not fixed"
    now = ctx.clock.now()
    await ctx.db.write(lambda c: engine.citizen_reopen(c, token, now, body.note))
    return await ctx.db.read(queries.tracking_view, token, ctx.clock.now())


@router.post("/track/{token}/urge", tags=["citizens"],
             summary="催办: ask for an open case to be hurried (after a day, or once a deadline passed; once a day)")
async def citizen_urge(request: Request, ctx: Ctx, token: str) -> dict[str, Any]:
    await ctx.limits.hit("portal_voice", client_address(request) or "-")
    now = ctx.clock.now()
    await ctx.db.write(lambda c: citizen_voice.urge(c, token[:40], now))
    return await ctx.db.read(queries.tracking_view, token[:40], now)


@router.get("/public/cases/{case_id}", tags=["citizens"], summary="A case's public view (no personal data)")
async def public_case(ctx: Ctx, case_id: CaseId) -> dict[str, Any]:
    return await ctx.db.read(queries.public_case, case_id)


@router.get("/public/cases", tags=["citizens"], summary="Open cases near a point: already reported?")
async def nearby(ctx: Ctx, lat: Annotated[float, Query(ge=-90, le=90)], long: Annotated[float, Query(ge=-180, le=180)],
                 service_code: str | None = None,
                 radius_m: Annotated[float, Query(gt=0, le=2000)] = 200) -> list[dict[str, Any]]:
    return await ctx.db.read(lambda c: queries.nearby_open_cases(c, lat=lat, lon=long, category_code=service_code,
                                                                 now=ctx.clock.now(), radius_m=radius_m))
