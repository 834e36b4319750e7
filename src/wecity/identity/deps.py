"""Who is asking: the staff user behind a session cookie or a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wecity.core.errors import AuthenticationRequired
from wecity.core.http import get_ctx
from wecity.identity.service import StaffUser, user_for_session

SESSION_COOKIE = "wecity_session"


async def optional_staff(request: Request) -> StaffUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = auth[7:].strip()
    if not token:
        return None
    ctx = get_ctx(request)
    return await ctx.db.read(user_for_session, token, ctx.clock.now())


async def require_staff(request: Request) -> StaffUser:
    user = await optional_staff(request)
    if user is None:
        raise AuthenticationRequired("sign in first", message_zh="请先登录")
    return user


OptionalStaff = Annotated[StaffUser | None, Depends(optional_staff)]
CurrentStaff = Annotated[StaffUser, Depends(require_staff)]
