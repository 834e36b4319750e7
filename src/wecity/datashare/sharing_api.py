"""HTTP face of data sharing: departments request datasets, providers decide, grants are revoked or their
disclosure delayed, and each side sees its requests, grants and the accesses made under them. A citizen
sees who read records about them (`/api/v1/my/data-uses`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from wecity.core.errors import PermissionDenied
from wecity.core.http import Ctx, id_param
from wecity.datashare import access, queries, requests
from wecity.geo.service import city_today
from wecity.identity.deps import CurrentCitizen, CurrentStaff
from wecity.identity.service import StaffUser

router = APIRouter(tags=["data sharing"])
RequestId = Annotated[int, id_param("data request id")]
GrantId = Annotated[int, id_param("data grant id")]


def _own(conn: Any, user: StaffUser) -> str:
    code = requests.department_of(conn, user)
    if code is None and "admin" not in user.roles:
        raise PermissionDenied("data sharing is between departments: your account has none",
                               message_zh="数据共享在部门之间进行，您的账号不属于任何部门", code="datashare.no_department")
    return code or ""


def _overseer(ctx: Any, conn: Any, user: StaffUser) -> bool:
    """Administrators and the coordinating department see every department's requests and grants."""
    return "admin" in user.roles or requests.department_of(conn, user) == ctx.settings.data_coordinator


@router.post("/api/v1/data-requests", status_code=201, summary="Request a dataset for your department")
async def create_request(ctx: Ctx, user: CurrentStaff, body: dict[str, Any]) -> dict[str, Any]:
    now = ctx.clock.now()
    return await ctx.db.write(lambda c: queries.data_request(c, requests.submit_request(c, user, body, now=now),
                                                            today=city_today(c, now)))


@router.get("/api/v1/data-requests", summary="Requests made by or to your department (all: coordinating department)")
async def list_requests(ctx: Ctx, user: CurrentStaff, side: Literal["both", "requester", "provider", "all"] = "both",
                        state: Annotated[str | None, Query(pattern="^(submitted|granted|refused|withdrawn)$")] = None,
                        overdue: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        own = _own(conn, user)
        if side == "all" and not _overseer(ctx, conn, user):
            raise PermissionDenied("every department's requests are the coordinating department's to see",
                                   message_zh="仅数据共享协调部门可查看全部申请", code="datashare.not_coordinator")
        dept = None if side == "all" else own
        today = city_today(conn, now)
        items = queries.data_requests_for(conn, today=today, department=dept, side=side, state=state,
                                          overdue_only=overdue, limit=limit, offset=offset)
        total = queries.count_data_requests(conn, today=today, department=dept, side=side, state=state,
                                            overdue_only=overdue)
        return {"count": total, "offset": offset, "limit": limit, "requests": items}

    return await ctx.db.read(run)


@router.get("/api/v1/data-requests/{request_id}", summary="One request, its timeline and its grant")
async def get_request(ctx: Ctx, user: CurrentStaff, request_id: RequestId) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        found = queries.data_request(conn, request_id, today=city_today(conn, now))
        if not requests.may_see(conn, user, requester=found["requester"], provider=found["provider"],
                                coordinator=ctx.settings.data_coordinator):
            raise PermissionDenied("this request is between two other departments",
                                   message_zh="该申请不涉及本部门", code="datashare.not_party")
        return found

    return await ctx.db.read(run)


class Decision(BaseModel):
    decision: Literal["grant", "refuse"]
    reasons: str | None = Field(None, max_length=4000)
    basis: str | None = Field(None, max_length=2000)
    fields: list[str] | None = Field(None, max_length=200)
    clear_fields: list[str] | None = Field(None, max_length=200)
    row_filter: dict[str, list[str]] | None = None
    days: int | None = Field(None, ge=1, le=requests.MAX_DAYS)
    rate_limit: str | None = Field(None, max_length=40)
    disclose_after_days: int | None = Field(None, ge=1, le=requests.MAX_DAYS)
    disclosure_basis: str | None = Field(None, max_length=2000)


@router.post("/api/v1/data-requests/{request_id}/decision",
             summary="Grant (all that was asked, or less) or refuse, with reasons: the provider's supervisors")
async def decide(ctx: Ctx, user: CurrentStaff, request_id: RequestId, body: Decision) -> dict[str, Any]:
    now = ctx.clock.now()
    given = body.model_dump(exclude_none=True)

    def run(conn: Any) -> dict[str, Any]:
        requests.decide(conn, request_id, user, given, now=now)
        return queries.data_request(conn, request_id, today=city_today(conn, now))

    return await ctx.db.write(run)


@router.post("/api/v1/data-requests/{request_id}/withdraw", summary="Withdraw a request not yet answered")
async def withdraw(ctx: Ctx, user: CurrentStaff, request_id: RequestId) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        requests.withdraw(conn, request_id, user, now=now)
        return queries.data_request(conn, request_id, today=city_today(conn, now))

    return await ctx.db.write(run)


class Urging(BaseModel):
    note: str = Field("", max_length=2000)


@router.post("/api/v1/data-requests/{request_id}/urge",
             summary="Press the provider for an answer (the coordinating department): a notice and a timeline entry")
async def urge(ctx: Ctx, user: CurrentStaff, request_id: RequestId, body: Urging) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        requests.urge(conn, request_id, user, body.note, now=now, coordinator=ctx.settings.data_coordinator)
        return queries.data_request(conn, request_id, today=city_today(conn, now))

    return await ctx.db.write(run)


@router.get("/api/v1/data-grants", summary="Grants your department holds or has given (all: coordinating department)")
async def list_grants(ctx: Ctx, user: CurrentStaff,
                      side: Literal["both", "grantee", "provider", "all"] = "both",
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                      offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        own = _own(conn, user)
        if side == "all" and not _overseer(ctx, conn, user):
            raise PermissionDenied("every department's grants are the coordinating department's to see",
                                   message_zh="仅数据共享协调部门可查看全部授权", code="datashare.not_coordinator")
        dept = None if side == "all" else own
        items = queries.data_grants_for(conn, now=now, department=dept, side=side, limit=limit, offset=offset)
        total = queries.count_data_grants(conn, department=dept, side=side)
        return {"count": total, "offset": offset, "limit": limit, "grants": items}

    return await ctx.db.read(run)


def _party_to_grant(ctx: Any, conn: Any, user: StaffUser, grant: dict[str, Any]) -> None:
    if not requests.may_see(conn, user, requester=grant["grantee"], provider=grant["publisher"],
                            coordinator=ctx.settings.data_coordinator):
        raise PermissionDenied("this grant is between two other departments", message_zh="该授权不涉及本部门",
                               code="datashare.not_party")


@router.get("/api/v1/data-grants/{grant_id}", summary="One grant and its access log")
async def get_grant(ctx: Ctx, user: CurrentStaff, grant_id: GrantId,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        grant = queries.data_grant(conn, grant_id, now=now)
        _party_to_grant(ctx, conn, user, grant)
        total, items = queries.data_accesses_for(conn, grant_id=grant_id, limit=limit, offset=offset)
        return {**grant, "accesses": {"count": total, "items": items}}

    return await ctx.db.read(run)


class Revocation(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/api/v1/data-grants/{grant_id}/revoke", summary="Revoke a grant, with the reason (provider's supervisors)")
async def revoke(ctx: Ctx, user: CurrentStaff, grant_id: GrantId, body: Revocation) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        requests.revoke(conn, grant_id, user, body.reason, now=now)
        return queries.data_grant(conn, grant_id, now=now)

    return await ctx.db.write(run)


class DisclosureDelay(BaseModel):
    days: int = Field(ge=1, le=requests.MAX_DAYS)
    basis: str = Field(min_length=1, max_length=2000)


@router.post("/api/v1/data-grants/{grant_id}/delay-disclosure",
             summary="Keep readings under a grant from the people concerned for a time, with the legal basis")
async def delay_disclosure(ctx: Ctx, user: CurrentStaff, grant_id: GrantId, body: DisclosureDelay) -> dict[str, Any]:
    now = ctx.clock.now()

    def run(conn: Any) -> dict[str, Any]:
        requests.delay_disclosure(conn, grant_id, user, days=body.days, basis=body.basis, now=now)
        return queries.data_grant(conn, grant_id, now=now)

    return await ctx.db.write(run)


@router.get("/api/v1/data-accesses", summary="Who used your department's data (provider), or what your department "
            "read (reader); every department's: coordinating department")
async def list_accesses(ctx: Ctx, user: CurrentStaff, side: Literal["provider", "reader", "all"] = "provider",
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    def run(conn: Any) -> dict[str, Any]:
        own = _own(conn, user)
        if side == "all" and not _overseer(ctx, conn, user):
            raise PermissionDenied("every department's accesses are the coordinating department's to see",
                                   message_zh="仅数据共享协调部门可查看全部访问记录", code="datashare.not_coordinator")
        total, items = queries.data_accesses_for(conn, publisher=own if side == "provider" else None,
                                                 reader=own if side == "reader" else None, limit=limit, offset=offset)
        return {"count": total, "accesses": items}

    return await ctx.db.read(run)


@router.get("/api/v1/my/data-uses", summary="Who read records about me (the signed-in citizen), when and why")
async def my_data_uses(ctx: Ctx, phone: CurrentCitizen, limit: Annotated[int, Query(ge=1, le=1000)] = 500,
                       offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> dict[str, Any]:
    now = ctx.clock.now()
    subject = access.subject_key(ctx.settings.secret_key, access.normal_phone(phone) or phone)

    def run(conn: Any) -> dict[str, Any]:
        items = queries.uses_of_my_data(conn, subject, now=now, limit=limit, offset=offset)
        return {"count": queries.count_uses_of_my_data(conn, subject, now=now), "offset": offset, "limit": limit,
                "uses": items}

    return await ctx.db.read(run)
