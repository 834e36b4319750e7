"""HTTP API of digital government under /api/v1: the public catalogue and certificate verification, the
applicant's verbs (signed in as a citizen) and the departments' verbs (signed in as staff)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.datastructures import UploadFile as StarletteUpload

from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed, WeCityError
from wecity.core.http import MAX_ID, Ctx, client_address, id_param
from wecity.core.limits import parse_rule
from wecity.core.settings import UPLOAD_FILES
from wecity.geo.service import city_timezone, city_today
from wecity.govservice import applications as apply
from wecity.govservice import approvals, catalogue, certificates, queries, ratings
from wecity.govservice.certificate_pdf import render_pdf
from wecity.identity.applicants import Applicant, citizen_for_phone, enterprises_of, find_citizen
from wecity.identity.audit import record_audit, record_refusal
from wecity.identity.deps import CurrentCitizen, CurrentStaff
from wecity.identity.service import StaffUser
from wecity.media import uploads

router = APIRouter(prefix="/api/v1", tags=["services"])
AppId = Annotated[int, id_param("application id")]
# Matter codes, certificate numbers and material codes: short, and from a small alphabet.
CodeText = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
FormData = dict[str, Any]
# Certificate PDFs a citizen may have drawn (each about half a second of CPU): a wallet holds a few.
CERTIFICATE_PDF_LIMIT = parse_rule("10/minute,100/day")


class NewApplication(BaseModel):
    matter_code: str = Field(min_length=1, max_length=64)
    acting_for: int | None = Field(default=None, ge=1, le=MAX_ID, description="an enterprise's applicant id, to apply for it")
    form_data: FormData | None = Field(default=None, description="answers to keep in the draft at once")
    submit: bool = Field(default=False, description="submit at once (all in one transaction): an app that "
                         "collected the answers itself applies in one call")


class FormIn(BaseModel):
    form_data: FormData = Field(default_factory=dict)


class ServiceRatingIn(BaseModel):
    level: int = Field(ge=1, le=5, description="5 非常满意 … 1 非常不满意")
    tags: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=8)
    comment: str | None = Field(default=None, max_length=1000)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)
    legal_basis: str = Field(min_length=1, max_length=2000)


class SupplementIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)
    materials: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)
    fields: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=100)


class ReviewIn(BaseModel):
    outcome: Literal["approve", "refuse"]
    note: str | None = Field(default=None, max_length=2000)


class DecisionIn(BaseModel):
    outcome: Literal["approve", "refuse"]
    reason: str | None = Field(default=None, max_length=2000)
    legal_basis: str | None = Field(default=None, max_length=2000)


class SpecialIn(BaseModel):
    kind: Literal["hearing", "inspection", "expert_review", "public_notice"]
    reason: str = Field(min_length=1, max_length=2000)


class ExtensionIn(BaseModel):
    days: int = Field(ge=1, le=approvals.MAX_EXTENSION_DAYS)
    reason: str = Field(min_length=1, max_length=2000)


class RevokeIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class RectificationIn(BaseModel):
    # Empty or over-long texts are the verb's to refuse (govservice.reason_required, govservice.note_too_long),
    # so that the refusal is on the audit record; the bound here only keeps a body from being huge.
    callback_note: str = Field(max_length=10 * ratings.MAX_RECTIFICATION_TEXT)
    measures: str = Field(max_length=10 * ratings.MAX_RECTIFICATION_TEXT)


class VerifyIn(BaseModel):
    document: dict[str, Any]
    signature: str = Field(min_length=1, max_length=200)


# -- public --------------------------------------------------------------------------------------------------

@router.get("/matters", summary="Search the catalogue of matters (事项)")
async def search_matters(request: Request, ctx: Ctx, q: Annotated[str | None, Query(max_length=100)] = None,
                         department: Annotated[str | None, Query(max_length=64)] = None,
                         applicant: Literal["citizen", "enterprise"] | None = None,
                         online_level: Literal["full_online", "at_most_once"] | None = None,
                         limit: Annotated[int, Query(ge=1, le=200)] = 50,
                         offset: Annotated[int, Query(ge=0, le=100_000)] = 0) -> list[dict[str, Any]]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return await ctx.db.read(lambda c: queries.search_matters(c, text=q, department=department, applicant_kind=applicant,
                                                              online_level=online_level, limit=limit, offset=offset))


@router.get("/matters/{code}", summary="One matter: limits, materials, form (JSON Schema), fees, process")
async def get_matter(request: Request, ctx: Ctx, code: CodeText) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return await ctx.db.read(queries.matter_detail, code)


@router.get("/catalogue", summary="The whole catalogue in its import format (wecity-matters/1)")
async def export_catalogue(request: Request, ctx: Ctx) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return await ctx.db.read(catalogue.export_catalogue)


@router.post("/catalogue", summary="Import a catalogue (administrators)")
async def import_catalogue(ctx: Ctx, user: CurrentStaff, body: dict[str, Any]) -> dict[str, int]:
    if "admin" not in user.roles:
        raise PermissionDenied("importing the catalogue needs the admin role", message_zh="导入事项目录需要管理员角色")
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, int]:
        counts = catalogue.import_catalogue(conn, body, now=now)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="catalogue.import", target="matters",
                     detail=counts)
        return counts

    counts = await ctx.db.write(run)
    await catalogue.forget_cached(ctx.db)
    return counts


@router.get("/certificates/verify/{number}", summary="Is this certificate genuine? valid / revoked / expired / unknown / forged")
async def verify_number(request: Request, ctx: Ctx, number: CodeText) -> dict[str, Any]:
    await ctx.limits.hit("certificate_verify", client_address(request) or "-")
    verdict = await ctx.db.read(certificates.verify_number, number, ctx.clock.now())
    return verdict.public()


@router.post("/certificates/verify", summary="Check a certificate document and its signature")
async def verify_document(request: Request, ctx: Ctx, body: VerifyIn) -> dict[str, Any]:
    await ctx.limits.hit("certificate_verify", client_address(request) or "-")
    verdict = await ctx.db.read(certificates.verify, body.document, body.signature, ctx.clock.now())
    return verdict.public()


@router.get("/certificates/keys", summary="The city's certificate signing keys (JWK set, RFC 8037)")
async def signing_keys(request: Request, ctx: Ctx) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return {"keys": await ctx.db.read(certificates.public_keys)}


# -- applicants ----------------------------------------------------------------------------------------------

async def _citizen(ctx: Any, phone: str) -> Applicant:
    """The signed-in citizen's applicant record: read, and written only the first time they come."""
    found = await ctx.db.read(find_citizen, phone)
    return found or await ctx.db.write(lambda c: citizen_for_phone(c, phone, now=ctx.clock.now()))


async def _view(ctx: Any, citizen: Applicant, app_id: int) -> dict[str, Any]:
    def read(conn: sa.Connection) -> dict[str, Any]:
        apply.own_application(conn, app_id, citizen)
        return queries.applicant_view(conn, app_id, now=ctx.clock.now())
    return await ctx.db.read(read)


async def _applicant_step(ctx: Any, phone: str, app_id: int, verb: Any) -> dict[str, Any]:
    """One applicant's verb `verb(conn, citizen, now)`: counted against their limit, run in one
    transaction, answered with the application as it now is."""
    await ctx.limits.hit("services_write", phone)
    citizen = await _citizen(ctx, phone)
    await ctx.db.write(lambda c: verb(c, citizen, ctx.clock.now()))
    return await _view(ctx, citizen, app_id)


@router.get("/applicant", tags=["applicants"], summary="The signed-in citizen and the enterprises they may act for")
async def signed_in_applicant(ctx: Ctx, phone: CurrentCitizen) -> dict[str, Any]:
    citizen = await _citizen(ctx, phone)
    firms = await ctx.db.read(enterprises_of, citizen.id)
    return {"id": citizen.id, "display_name": citizen.display_name, "kind": citizen.kind,
            "enterprises": [{"id": e.id, "display_name": e.display_name, "credit_code": e.credit_code} for e in firms]}


@router.post("/applications", tags=["applicants"], status_code=201,
             summary="Start an application: a draft pre-filled once-only from what the city holds")
async def start_application(ctx: Ctx, phone: CurrentCitizen, body: NewApplication,
                            idempotency_key: Annotated[str | None, Header(max_length=100)] = None) -> dict[str, Any]:
    await ctx.limits.hit("services_write", phone)
    citizen = await _citizen(ctx, phone)
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> int:
        app_id = apply.start_application(conn, citizen=citizen, matter_code=body.matter_code,
                                         acting_for=body.acting_for, now=now, idempotency_key=idempotency_key)
        if apply.own_application(conn, app_id, citizen).submitted_at is not None:
            return app_id  # a replay of an idempotency key whose application went in already
        if body.form_data:
            apply.save_draft(conn, app_id, citizen=citizen, form_data=body.form_data, now=now)
        if body.submit:
            apply.submit(conn, app_id, citizen=citizen, now=now)
        return app_id

    app_id = await ctx.db.write(run)
    return await _view(ctx, citizen, app_id)


@router.get("/applications", tags=["applicants"], summary="My applications (and my enterprises'), newest first")
async def my_applications(ctx: Ctx, phone: CurrentCitizen) -> list[dict[str, Any]]:
    citizen = await _citizen(ctx, phone)

    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        ids = [citizen.id, *(e.id for e in enterprises_of(conn, citizen.id))]
        return queries.applications_of(conn, ids, today=city_today(conn, ctx.clock.now()))
    return await ctx.db.read(read)


@router.get("/applications/{app_id}", tags=["applicants"], summary="One of my applications, with its timeline")
async def my_application(ctx: Ctx, phone: CurrentCitizen, app_id: AppId) -> dict[str, Any]:
    return await _view(ctx, await _citizen(ctx, phone), app_id)


@router.patch("/applications/{app_id}", tags=["applicants"], summary="Save the draft's form")
async def save_draft(ctx: Ctx, phone: CurrentCitizen, app_id: AppId, body: FormIn) -> dict[str, Any]:
    return await _applicant_step(ctx, phone, app_id, lambda c, who, now: apply.save_draft(
        c, app_id, citizen=who, form_data=body.form_data, now=now))


@router.post("/applications/{app_id}/materials/{material}", tags=["applicants"],
             summary="Upload a material (a photo or scan of the document; multipart `files`, up to "
             f"{UPLOAD_FILES})",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["files"], "properties": {"files": {
                     "type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
async def upload_material(request: Request, ctx: Ctx, phone: CurrentCitizen, app_id: AppId,
                          material: CodeText) -> dict[str, Any]:
    await ctx.limits.hit("services_write", phone)
    citizen = await _citizen(ctx, phone)
    # Rights before the body is read (as a declared `UploadFile` parameter FastAPI would take in the whole
    # upload before the credentials were looked at), and before the costly decoding of images: whose
    # application, whether it takes uploads now, and whether the matter asks for this material.
    await ctx.db.read(lambda c: apply.uploadable(c, app_id, citizen, material))
    # A text field holds at most a form's worth (max_part_size bounds the fields; the files are read below).
    form = await request.form(max_files=UPLOAD_FILES, max_fields=5, max_part_size=ctx.settings.max_form_bytes)
    try:
        files = [f for f in form.getlist("files") if isinstance(f, StarletteUpload)]
        if not files:
            raise ValidationFailed("send the files as the multipart field `files`",
                                   message_zh="请以 files 字段上传材料文件", code="govservice.no_files")
        data = [await f.read(ctx.settings.max_upload_bytes + 1) for f in files[:UPLOAD_FILES]]
    finally:
        await form.close()
    now = ctx.clock.now()
    async with uploads.staged(data, ctx, now=now) as staged:
        def write(conn: sa.Connection) -> None:
            ids = staged.record(conn)
            apply.attach_material(conn, app_id, citizen=citizen, material=material, media=ids, now=now)
        await ctx.db.write(write)
        staged.keep()
    return await _view(ctx, citizen, app_id)


@router.post("/applications/{app_id}/submit", tags=["applicants"], summary="Submit (idempotent)")
async def submit(ctx: Ctx, phone: CurrentCitizen, app_id: AppId) -> dict[str, Any]:
    return await _applicant_step(ctx, phone, app_id, lambda c, who, now: apply.submit(c, app_id, citizen=who, now=now))


@router.post("/applications/{app_id}/supply", tags=["applicants"], summary="补正: supply what was asked for")
async def supply(ctx: Ctx, phone: CurrentCitizen, app_id: AppId, body: FormIn) -> dict[str, Any]:
    return await _applicant_step(ctx, phone, app_id, lambda c, who, now: apply.supply(
        c, app_id, citizen=who, form_data=body.form_data, now=now))


@router.post("/applications/{app_id}/withdraw", tags=["applicants"], summary="Withdraw the application")
async def withdraw(ctx: Ctx, phone: CurrentCitizen, app_id: AppId) -> dict[str, Any]:
    return await _applicant_step(ctx, phone, app_id, lambda c, who, now: apply.withdraw(c, app_id, citizen=who,
                                                                                           now=now))


@router.post("/applications/{app_id}/rating", tags=["applicants"], summary="好差评 of a finished application")
async def rate(ctx: Ctx, phone: CurrentCitizen, app_id: AppId, body: ServiceRatingIn) -> dict[str, Any]:
    return await _applicant_step(ctx, phone, app_id, lambda c, who, now: ratings.rate(
        c, app_id, citizen=who, level=body.level, tags=body.tags, comment=body.comment, now=now))


@router.get("/certificates", tags=["applicants"], summary="My certificates (电子证照), with their status")
async def wallet(ctx: Ctx, phone: CurrentCitizen) -> list[dict[str, Any]]:
    citizen = await _citizen(ctx, phone)

    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for holder in [citizen.id, *(e.id for e in enterprises_of(conn, citizen.id))]:
            out += certificates.wallet(conn, holder, now=ctx.clock.now())
        return out
    return await ctx.db.read(read)


async def _held(ctx: Any, phone: str, number: str) -> dict[str, Any]:
    citizen = await _citizen(ctx, phone)

    def read(conn: sa.Connection) -> dict[str, Any]:
        holders = {citizen.id, *(e.id for e in enterprises_of(conn, citizen.id))}
        found = certificates.get_certificate(conn, number)
        if found["holder_id"] not in holders:
            raise NotFound(f"no certificate {number} in your wallet", message_zh=f"您的证照夹中没有证照 {number}")
        return found
    return await ctx.db.read(read)


@router.get("/certificates/{number}/signed", tags=["applicants"],
            summary="My certificate as a signed document anyone can verify offline")
async def signed_certificate(ctx: Ctx, phone: CurrentCitizen, number: CodeText) -> dict[str, Any]:
    held = await _held(ctx, phone, number)
    return await ctx.db.read(lambda c: certificates.export_certificate(c, number, holder_id=held["holder_id"]))


@router.get("/certificates/{number}/pdf", tags=["applicants"], summary="My certificate as a PDF with its QR code")
async def certificate_pdf(request: Request, ctx: Ctx, phone: CurrentCitizen,
                          number: CodeText) -> Response:
    # Drawing a PDF takes about half a second of CPU: counted per citizen, and drawn off the event loop.
    await ctx.limits.hit("certificate_pdf", phone, CERTIFICATE_PDF_LIMIT)
    held = await _held(ctx, phone, number)
    url = str(request.base_url).rstrip("/") + f"/verify/{number}"
    pdf = await asyncio.to_thread(render_pdf, held, url, zone=await ctx.db.read(city_timezone))
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{number}.pdf"'})


# -- departments ---------------------------------------------------------------------------------------------

async def _staff_view(request: Request, ctx: Any, user: StaffUser, app_id: int) -> dict[str, Any]:
    """The application for staff: its form is personal data, so every look is in the audit log."""
    now = ctx.clock.now()

    def read(conn: sa.Connection) -> dict[str, Any]:
        allowed = approvals.may_see(conn, user, app_id)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="personal_data.view",
                     target=f"application:{app_id}", outcome="ok" if allowed else "denied",
                     source_address=client_address(request))
        if not allowed:
            return {}
        return queries.application_view(conn, app_id, today=city_today(conn, ctx.clock.now()))

    view = await ctx.db.write(read)
    if not view:
        raise PermissionDenied("this application belongs to another department", message_zh="该申请不属于您的部门",
                               code="govservice.other_department")
    return view


@router.get("/department/applications", tags=["departments"],
            summary="The department's applications: open (nearest due first), to accept, review, decide, finished")
async def department_queue(ctx: Ctx, user: CurrentStaff,
                           queue: Literal["open", "accept", "review", "decide", "supplement", "finished"] = "open",
                           limit: Annotated[int, Query(ge=1, le=200)] = 100) -> list[dict[str, Any]]:
    def read(conn: sa.Connection) -> list[dict[str, Any]]:
        dept = approvals.staff_department(conn, user)
        if dept is None:
            raise PermissionDenied("you belong to no department", message_zh="您不属于任何部门")
        return queries.department_queue(conn, dept, which=queue, today=city_today(conn, ctx.clock.now()),
                                        limit=limit)
    return await ctx.db.read(read)


@router.get("/department/applications/{app_id}", tags=["departments"], summary="An application (audited access)")
async def department_application(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId) -> dict[str, Any]:
    return await _staff_view(request, ctx, user, app_id)


async def _staff_step(request: Request, ctx: Any, user: StaffUser, app_id: int, verb: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        await ctx.db.write(lambda c: verb(c, app_id, staff=user, now=ctx.clock.now(), **kwargs))
    except WeCityError as exc:
        # The step's transaction rolled back with its audit entry: the refusal is recorded on its own, as
        # failed operations must be (a department trying another's application, a step out of turn).
        if exc.status < 500:
            await record_refusal(ctx, actor=f"user:{user.username}", action=f"application.{verb.__name__}",
                                 target=f"application:{app_id}", error=exc, source_address=client_address(request))
        raise
    return await _staff_view(request, ctx, user, app_id)


@router.post("/department/applications/{app_id}/accept", tags=["departments"], summary="受理: the clock starts")
async def accept(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.accept)


@router.post("/department/applications/{app_id}/not-accept", tags=["departments"],
             summary="不予受理, with reasons and the legal basis")
async def not_accept(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: ReasonIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.not_accept, reason=body.reason,
                             legal_basis=body.legal_basis)


@router.post("/department/applications/{app_id}/supplement", tags=["departments"],
             summary="补正: ask once for everything missing; the clock pauses")
async def supplement(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: SupplementIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.request_supplement, note=body.note,
                             materials=body.materials, fields=body.fields)


@router.post("/department/applications/{app_id}/review", tags=["departments"],
             summary="并联审查: this department's opinion")
async def review(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: ReviewIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.review, outcome=body.outcome, note=body.note)


@router.post("/department/applications/{app_id}/decide", tags=["departments"],
             summary="决定: approve (the certificate is issued) or refuse with reasons")
async def decide(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: DecisionIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.decide, outcome=body.outcome, reason=body.reason,
                             legal_basis=body.legal_basis, key_dir=ctx.settings.var_dir)


@router.post("/department/applications/{app_id}/special", tags=["departments"],
             summary="Start a special procedure the law does not count (听证, 检验检测, 专家评审, 公示)")
async def start_special(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: SpecialIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.start_special_procedure, kind=body.kind,
                             reason=body.reason)


@router.post("/department/applications/{app_id}/special/end", tags=["departments"],
             summary="End the special procedure: the clock runs again")
async def end_special(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.end_special_procedure)


@router.post("/department/applications/{app_id}/extend", tags=["departments"],
             summary="延期: more working days, with the reason")
async def extend(request: Request, ctx: Ctx, user: CurrentStaff, app_id: AppId, body: ExtensionIn) -> dict[str, Any]:
    return await _staff_step(request, ctx, user, app_id, approvals.extend, days=body.days, reason=body.reason)


@router.post("/certificates/{number}/revoke", tags=["departments"],
             summary="Revoke a certificate (the issuing department's supervisors)")
async def revoke(request: Request, ctx: Ctx, user: CurrentStaff, number: CodeText, body: RevokeIn) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, Any]:
        approvals.revoke_certificate(conn, number, staff=user, reason=body.reason, now=now)
        return certificates.verify_number(conn, number, now).public()
    try:
        return await ctx.db.write(run)
    except WeCityError as exc:
        if exc.status < 500:
            await record_refusal(ctx, actor=f"user:{user.username}", action="certificate.revoke",
                                 target=f"certificate:{number}", error=exc, source_address=client_address(request))
        raise


@router.get("/department/rectifications", tags=["departments"], summary="Open rectifications after bad ratings")
async def open_rectifications(ctx: Ctx, user: CurrentStaff) -> list[dict[str, Any]]:
    return await ctx.db.read(lambda c: queries.open_rectifications(c, approvals.staff_department(c, user) or ""))


@router.post("/department/rectifications/{rect_id}/close", tags=["departments"],
             summary="整改 done, with the call back to the applicant")
async def close_rectification(request: Request, ctx: Ctx, user: CurrentStaff,
                              rect_id: Annotated[int, id_param("rectification id")],
                              body: RectificationIn) -> JSONResponse:
    try:
        await ctx.db.write(lambda c: ratings.close_rectification(
            c, rect_id, staff=user, department_code=approvals.staff_department(c, user),
            callback_note=body.callback_note, measures=body.measures, now=ctx.clock.now()))
    except WeCityError as exc:
        if exc.status < 500:
            await record_refusal(ctx, actor=f"user:{user.username}", action="rectification.close",
                                 target=f"rectification:{rect_id}", error=exc, source_address=client_address(request))
        raise
    return JSONResponse({"closed": rect_id})
