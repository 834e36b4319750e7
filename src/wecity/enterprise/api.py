"""HTTP API of enterprise services under /api/v1.

- Public: the policies (`/policies`, `/policies/{code}`): policy texts are public documents.
- An enterprise, through a citizen who acts for it (its legal representative or an agent):
  `/enterprise/{applicant_id}` (its record and what every policy says of it, with the trace),
  `POST /enterprise/{applicant_id}/policies/{code}/apply` (快申快享).
- Staff: the register (`/enterprises`, read by any staff, written by administrators and supervisors),
  a policy's dry run over the register and its take-up; importing policies (administrators, or supervisors
  of every department the document's policies belong to).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from wecity.core.errors import PermissionDenied, ValidationFailed
from wecity.core.http import ONE_FILE_BODY, Ctx, client_address, id_param, one_file
from wecity.core.limits import parse_rule
from wecity.enterprise import accounts, appeals, benefits, catalogue, queries
from wecity.enterprise import (
    register as the_register,  # not `register`: the app factory calls a module's register()
)
from wecity.enterprise.models import policies
from wecity.enterprise.policies import check_document, compile_policy
from wecity.geo.service import city_today
from wecity.identity.applicants import acting_as, citizen_for_phone, find_citizen
from wecity.identity.audit import record_audit
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentCitizen, CurrentStaff
from wecity.identity.models import departments
from wecity.identity.service import StaffUser

router = APIRouter(prefix="/api/v1", tags=["enterprise"])
PolicyCode = Annotated[str, PathParam(min_length=2, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]+$")]
ApplicantId = Annotated[int, id_param("the enterprise's applicant id")]
EnterpriseId = Annotated[int, id_param("enterprise id")]
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# A dry run reads and evaluates the whole register (seconds on a big city's): per staff member, as the API's
# POST /policies/{code}/dry-run and the policy officer's page of one policy count them together.
DRY_RUN_LIMIT = parse_rule("30/minute,500/day")


def _may_write_register(user: StaffUser) -> None:
    if not (user.has(Role.ADMIN) or user.has(Role.SUPERVISOR)):
        raise PermissionDenied("the register is changed by administrators and supervisors",
                               message_zh="仅管理员和督办可修改企业档案", code="enterprise.not_allowed")


# -- public ---------------------------------------------------------------------------------------------------

@router.get("/policies", summary="The city's support policies (惠企政策): in force today or not, with their conditions")
async def list_policies(request: Request, ctx: Ctx) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    today = await ctx.db.read(city_today, ctx.clock.now())
    rows = await ctx.db.read(catalogue.policy_rows)
    return {"policies": [queries.policy_summary(r, today) for r in rows]}


@router.get("/policies/{code}", summary="One policy: its document (conditions with their clauses, the benefit) "
            "and its versions")
async def get_policy(request: Request, ctx: Ctx, code: PolicyCode) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return await ctx.db.read(lambda c: queries.policy_view(c, code, city_today(c, ctx.clock.now())))


# -- the enterprise -------------------------------------------------------------------------------------------

async def _acting(ctx: Any, phone: str, applicant_id: int) -> Any:
    found = await ctx.db.read(find_citizen, phone)
    citizen = found or await ctx.db.write(lambda c: citizen_for_phone(c, phone, now=ctx.clock.now()))
    await ctx.db.read(lambda c: acting_as(c, citizen, applicant_id))  # 403 unless listed for it
    return citizen


@router.get("/enterprise/request-categories", tags=["applicants"],
            summary="The categories of enterprise 诉求, with their targets (minutes to acknowledge, working hours to resolve)")
async def request_categories(request: Request, ctx: Ctx) -> dict[str, Any]:
    await ctx.limits.hit("services_read", client_address(request) or "-")
    return {"categories": await ctx.db.read(appeals.business_categories)}


@router.get("/enterprise/{applicant_id}", tags=["applicants"],
            summary="My enterprise: its record, and what every policy in force says of it (outcome, amount, "
                    "what is missing, the trace), with its benefits and applications")
async def my_enterprise(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId) -> dict[str, Any]:
    await _acting(ctx, phone, applicant_id)
    return await ctx.db.read(lambda c: queries.enterprise_home(c, applicant_id, city_today(c, ctx.clock.now())))


@router.post("/enterprise/{applicant_id}/policies/{code}/apply", tags=["applicants"], status_code=201,
             summary="快申快享: a draft of the policy's application, pre-filled from the register, naming what "
                     "is still to fill in")
async def quick_apply(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId, code: PolicyCode) -> dict[str, Any]:
    await ctx.limits.hit("services_write", phone)
    citizen = await _acting(ctx, phone, applicant_id)
    return await ctx.db.write(lambda c: benefits.quick_apply(c, citizen=citizen, enterprise_applicant_id=applicant_id,
                                                             policy_code=code, now=ctx.clock.now()))


class RequestIn(BaseModel):
    service_code: str = Field(min_length=1, max_length=64, description="a category of the group 营商环境 / Business "
                              "environment (GET /api/v1/enterprise/request-categories)")
    description: str = Field(min_length=1, max_length=4000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    long: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = Field(default=None, max_length=500)


@router.post("/enterprise/{applicant_id}/requests", tags=["applicants"], status_code=201,
             summary="File an enterprise 诉求: a case of channel \"enterprise\" through the one intake, tracked like any case")
async def file_request(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId, body: RequestIn) -> dict[str, Any]:
    await ctx.limits.hit("services_write", phone)
    citizen = await _acting(ctx, phone, applicant_id)
    receipt = await appeals.file_request(ctx, citizen=citizen, applicant_id=applicant_id, service_code=body.service_code,
                                         description=body.description, lat=body.lat, long=body.long, address=body.address)
    return {"case_id": receipt.case_id, "token": receipt.token, "merged": receipt.merged,
            "expected_at": receipt.expected_at.isoformat() if receipt.expected_at else None,
            "track": f"/track/{receipt.token}"}


@router.get("/enterprise/{applicant_id}/requests", tags=["applicants"], summary="The enterprise's 诉求, newest first")
async def list_requests(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId) -> dict[str, Any]:
    await _acting(ctx, phone, applicant_id)

    def read(conn: sa.Connection) -> dict[str, Any]:
        found = the_register.enterprise_of_applicant(conn, applicant_id)
        return {"requests": appeals.requests_of(conn, found["credit_code"]) if found else []}
    return await ctx.db.read(read)


class AgentIn(BaseModel):
    phone: str = Field(min_length=11, max_length=11, pattern=r"^1[0-9]{10}$")


@router.get("/enterprise/{applicant_id}/agents", tags=["applicants"],
            summary="Who acts for the enterprise: its legal representative and authorised agents (phones masked)")
async def list_agents(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId) -> dict[str, Any]:
    citizen = await _acting(ctx, phone, applicant_id)
    return {"agents": await ctx.db.read(lambda c: accounts.agents(c, applicant_id, by=citizen))}


@router.post("/enterprise/{applicant_id}/agents", tags=["applicants"], status_code=201,
             summary="The legal representative authorises an agent (授权经办人) by mobile number")
async def authorise_agent(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId, body: AgentIn) -> dict[str, Any]:
    await ctx.limits.hit("services_write", phone)
    citizen = await _acting(ctx, phone, applicant_id)
    return await ctx.db.write(lambda c: accounts.authorise(c, applicant_id, body.phone, by=citizen, now=ctx.clock.now()))


@router.delete("/enterprise/{applicant_id}/agents/{citizen_id}", tags=["applicants"], status_code=204,
               summary="The legal representative withdraws an agent's authority")
async def withdraw_agent(ctx: Ctx, phone: CurrentCitizen, applicant_id: ApplicantId,
                         citizen_id: Annotated[int, id_param("the agent's applicant id")]) -> Response:
    await ctx.limits.hit("services_write", phone)
    citizen = await _acting(ctx, phone, applicant_id)
    await ctx.db.write(lambda c: accounts.withdraw(c, applicant_id, citizen_id, by=citizen, now=ctx.clock.now()))
    return Response(status_code=204)


# -- staff: the register ---------------------------------------------------------------------------------------

@router.get("/enterprises", tags=["staff"], summary="The enterprise register, filtered and paged")
async def list_enterprises(ctx: Ctx, user: CurrentStaff,
                           q: Annotated[str | None, Query(max_length=100)] = None,
                           district: Annotated[str | None, Query(max_length=20)] = None,
                           size_class: Annotated[str | None, Query(pattern="^(large|medium|small|micro)$")] = None,
                           limit: Annotated[int, Query(ge=1, le=500)] = 50,
                           offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    return await ctx.db.read(lambda c: queries.search_enterprises(c, q=q, district=district, size_class=size_class,
                                                                  limit=limit, offset=offset))


@router.get("/enterprises/{enterprise_id}", tags=["staff"],
            summary="One enterprise of the register, with what every policy says of it and why")
async def get_enterprise(request: Request, ctx: Ctx, user: CurrentStaff, enterprise_id: EnterpriseId) -> dict[str, Any]:
    """The staff view: no tracking code of the enterprise's 诉求 (a reporter's credential), and every look
    in the audit log, as with an application's form."""
    now = ctx.clock.now()

    def read(conn: sa.Connection) -> dict[str, Any]:
        found = the_register.get_enterprise(conn, enterprise_id)
        record_audit(conn, at=now, actor=f"user:{user.username}", action="personal_data.view",
                     target=f"enterprise:{found['credit_code']}", source_address=client_address(request))
        return queries.enterprise_home(conn, found["applicant_id"], city_today(conn, now), for_staff=True)
    return await ctx.db.write(read)


class Profile(BaseModel):
    """An enterprise's record: the register's fields (see GET /enterprises/{id}) and `facts`."""

    model_config = {"extra": "allow"}
    credit_code: str = Field(min_length=18, max_length=18)
    name: str = Field(min_length=1, max_length=200)


@router.post("/enterprises", tags=["staff"], summary="Add an enterprise to the register or update it (by credit code)")
async def save_enterprise(ctx: Ctx, user: CurrentStaff, body: Profile) -> dict[str, Any]:
    _may_write_register(user)
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, Any]:
        enterprise_id, changed = the_register.save_enterprise(conn, body.model_dump(), now=now,
                                                                  actor=f"user:{user.username}")
        record_audit(conn, at=now, actor=f"user:{user.username}", action="enterprise.save",
                     target=f"enterprise:{body.credit_code}", detail={"changed": changed})
        return {"id": enterprise_id, "changed": changed}
    return await ctx.db.write(run)


@router.patch("/enterprises/{enterprise_id}", tags=["staff"],
              summary="Change some fields or facts of an enterprise (a department's data arriving)")
async def update_enterprise(ctx: Ctx, user: CurrentStaff, enterprise_id: EnterpriseId,
                            body: dict[str, Any]) -> dict[str, Any]:
    _may_write_register(user)
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, Any]:
        changed = the_register.update_facts(conn, enterprise_id, body, now=now, actor=f"user:{user.username}")
        record_audit(conn, at=now, actor=f"user:{user.username}", action="enterprise.update",
                     target=f"enterprise:{enterprise_id}", detail={"fields": sorted(body)[:50], "changed": changed})
        return {"id": enterprise_id, "changed": changed}
    return await ctx.db.write(run)


@router.post("/enterprises/import", tags=["staff"], summary="Add or update enterprises from a CSV or XLSX file "
             "(multipart `file`, at most 20 MB), all rows or none",
             openapi_extra=ONE_FILE_BODY)
async def import_enterprises(request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    _may_write_register(user)  # before the body is read
    content, name = await one_file(request, max_bytes=MAX_IMPORT_BYTES, code="enterprise.invalid_profile",
                                   what_en="table", what_zh="表格文件")
    filename = name or "upload.csv"
    if len(content) > MAX_IMPORT_BYTES:
        raise ValidationFailed("the file is larger than 20 MB", message_zh="文件超过 20 MB", code="enterprise.invalid_profile")
    # Read and checked in a read transaction; the writer is held only to write the checked rows.
    checked = await ctx.db.read(lambda c: the_register.check_table(c, content, filename))
    now = ctx.clock.now()

    def run(conn: sa.Connection) -> dict[str, int]:
        counts = the_register.write_checked(conn, checked, now=now, actor=f"user:{user.username}")
        record_audit(conn, at=now, actor=f"user:{user.username}", action="enterprise.import",
                     target=f"file:{filename[:100]}", detail=counts)
        return counts
    return await ctx.db.write(run)


# -- staff: policies -------------------------------------------------------------------------------------------

@router.post("/policies", tags=["staff"], summary="Import a wecity-policies/1 document (all or nothing; a changed "
             "policy gets a new version, and the register is matched against it)")
async def import_policies(ctx: Ctx, user: CurrentStaff, body: dict[str, Any]) -> dict[str, int]:
    now = ctx.clock.now()

    def may_import(conn: sa.Connection) -> None:
        if user.has(Role.ADMIN):
            return
        own = conn.execute(sa.select(departments.c.code).where(departments.c.id == user.department_id)).scalar()
        given = [p for p in body.get("policies", []) if isinstance(p, dict)] \
            if isinstance(body.get("policies"), list) else []
        theirs = {p.get("department") for p in given}
        # A policy already imported stays its department's: the stored department decides, not the document.
        codes = [p["code"] for p in given if isinstance(p.get("code"), str)]
        theirs |= set(conn.execute(sa.select(policies.c.department_code).where(policies.c.code.in_(codes)))
                      .scalars()) if codes else set()
        if not user.has(Role.SUPERVISOR) or theirs - {own}:
            raise PermissionDenied("a department's supervisors import its own policies; administrators any",
                                   message_zh="仅本部门督办可导入本部门政策，管理员可导入全部", code="enterprise.not_allowed")

    def check(conn: sa.Connection) -> None:
        may_import(conn)
        catalogue.check_import(conn, body)

    # The rights and the whole document are checked in a read transaction, so that a refused or malformed
    # import never holds the database's one writer; the write checks both again (they may have moved).
    await ctx.db.read(check)

    def run(conn: sa.Connection) -> dict[str, int]:
        may_import(conn)
        counts = catalogue.import_policies(conn, body, now=now, actor=f"user:{user.username}")
        record_audit(conn, at=now, actor=f"user:{user.username}", action="policy.import", target="policies",
                     detail=counts)
        return counts
    return await ctx.db.write(run)


class DryRun(BaseModel):
    policy: dict[str, Any] | None = Field(default=None, description="a changed policy to try (its code must be the "
                                          "one in the path); none: the policy as it stands")
    on: date | None = Field(default=None, description="the day to evaluate on (default: today)")


@router.post("/policies/{code}/dry-run", tags=["staff"],
             summary="What a policy (or a change to it) would say of the whole register: counts by outcome, the "
                     "amount in total, the conditions that fail most and the data most missing — nothing is written")
async def dry_run(ctx: Ctx, user: CurrentStaff, code: PolicyCode, body: DryRun) -> dict[str, Any]:
    await ctx.limits.hit("policy_dry_run", f"user:{user.id}", DRY_RUN_LIMIT)
    day = body.on if body.on is not None else await ctx.db.read(city_today, ctx.clock.now())

    def run(conn: sa.Connection) -> dict[str, Any]:
        if body.policy is None:
            policy = catalogue.load(conn, code, day)
        else:
            if body.policy.get("code") != code:
                raise ValidationFailed("the policy's code is not the one in the path", message_zh="政策编码与路径不一致",
                                       code="enterprise.bad_policy")
            variables, _ = check_document({"format": "wecity-policies/1", "policies": [body.policy],
                                           "variables": [v.as_dict() for v in the_register.known_variables(conn).values()
                                                         if v.kind == "fact"]})
            policy = compile_policy(body.policy, version=0, on=day, variables=variables)
        return queries.dry_run(conn, policy, day)
    return await ctx.db.read(run)


@router.get("/policies/{code}/take-up", tags=["staff"],
            summary="Take-up: enterprises eligible, granted without applying, applied, approved, and not taking it up")
async def take_up(ctx: Ctx, user: CurrentStaff, code: PolicyCode) -> dict[str, Any]:
    return await ctx.db.read(lambda c: queries.take_up(c, code))
