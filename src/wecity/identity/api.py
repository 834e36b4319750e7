"""HTTP adapter of the identity domain: API sign-in for staff tools, who am I, my notifications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from wecity.core.errors import AuthenticationRequired
from wecity.core.http import Ctx, client_address
from wecity.identity.deps import SESSION_COOKIE, CurrentStaff
from wecity.identity.service import StaffUser, authenticate, end_session, record_audit, start_session

router = APIRouter(prefix="/api/v1", tags=["identity"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


@router.post("/auth/token", summary="Sign in: a bearer token (and the session cookie) for 12 hours")
async def sign_in(request: Request, response: Response, ctx: Ctx, body: Credentials) -> dict[str, Any]:
    now = ctx.clock.now()
    address = client_address(request)

    def run(conn: Any) -> tuple[StaffUser | None, str | None]:
        user = authenticate(conn, body.username, body.password)
        record_audit(conn, at=now, actor=f"user:{user.id}" if user else f"username:{body.username[:64]}",
                     action="auth.sign_in", target="api", outcome="ok" if user else "failed", source_address=address)
        return user, start_session(conn, user.id, now) if user else None

    user, token = await ctx.db.write(run)
    if user is None or token is None:
        raise AuthenticationRequired("wrong username or password", message_zh="用户名或密码错误",
                                     code="auth.invalid_credentials")
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", max_age=12 * 3600)
    return {"token": token, "token_type": "bearer", "expires_in": 12 * 3600, "user": _me(user)}


@router.delete("/auth/token", status_code=204, summary="Sign out")
async def sign_out(request: Request, ctx: Ctx, user: CurrentStaff) -> Response:
    token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "")[7:].strip()
    now = ctx.clock.now()

    def run(conn: Any) -> None:
        end_session(conn, token)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="auth.sign_out", target="api",
                     source_address=client_address(request))

    await ctx.db.write(run)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


def _me(user: StaffUser) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "display_name": user.display_name,
            "department_id": user.department_id, "roles": sorted(user.roles), "locale": user.locale}


@router.get("/me", summary="The signed-in staff user")
async def me(user: CurrentStaff) -> dict[str, Any]:
    return _me(user)

