"""HTTP adapter of the identity domain: API sign-in for staff tools, who am I, my notifications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from wecity.core.http import Ctx, client_address
from wecity.identity import signin
from wecity.identity.deps import SESSION_COOKIE, CurrentStaff, session_token
from wecity.identity.service import StaffUser, end_session, record_audit

router = APIRouter(prefix="/api/v1", tags=["identity"])


class Credentials(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=200)


@router.post("/auth/token", summary="Sign in: a bearer token (and the session cookie) for 12 hours")
async def issue_token(request: Request, response: Response, ctx: Ctx, body: Credentials) -> dict[str, Any]:
    done = await signin.sign_in(ctx, body.username, body.password, address=client_address(request), via="api")
    # As the portal's sign-in sets it: Secure over HTTPS (as the server saw it), for the whole site.
    response.set_cookie(SESSION_COOKIE, done.token, httponly=True, samesite="lax", max_age=12 * 3600, path="/",
                        secure=request.url.scheme == "https")
    return {"token": done.token, "token_type": "bearer", "expires_in": 12 * 3600, "user": _me(done.user)}


@router.delete("/auth/token", status_code=204, summary="Sign out")
async def sign_out(request: Request, ctx: Ctx, user: CurrentStaff) -> Response:
    token = session_token(request) or ""  # the one that signed this request in, not another the client holds
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

