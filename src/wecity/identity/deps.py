"""Who is asking: the staff user behind a session cookie or a bearer token.

A bearer token is sent by a program that chose to; a cookie is sent by the browser on any request, also
one a hostile page makes. So an API call that changes something and is signed in by the cookie alone must
come from a page of this site: its Origin (when sent) is this site, it carries the CSRF token in the
`X-CSRF-Token` header, and a body it sends is JSON (which a cross-site form cannot send).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wecity.core import csrf
from wecity.core.context import AppContext
from wecity.core.errors import AuthenticationRequired, PermissionDenied
from wecity.core.http import get_ctx
from wecity.identity.applicants import citizen_phone, citizen_signed_out
from wecity.identity.service import StaffUser, user_for_session

SESSION_COOKIE = "wecity_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(request: Request) -> str | None:
    """The staff session a request presents: its bearer token when it has one, else the session cookie
    (what signs it in, and so what signing out ends)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(SESSION_COOKIE) or None


async def optional_staff(request: Request) -> StaffUser | None:
    token = session_token(request)
    if not token:
        return None
    ctx = get_ctx(request)
    return await ctx.db.read(user_for_session, token, ctx.clock.now())


async def require_staff(request: Request) -> StaffUser:
    user = await optional_staff(request)
    if user is None:
        raise AuthenticationRequired("sign in first", message_zh="请先登录")
    if request.method not in SAFE_METHODS and _by_cookie(request):
        check_same_site(request)
    return user


def _by_cookie(request: Request) -> bool:
    return not request.headers.get("authorization", "").lower().startswith("bearer ")


def check_same_site(request: Request) -> None:
    """A change signed in by the session cookie: from this site's pages only (see the module's docstring)."""
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") != str(request.base_url).rstrip("/"):
        raise PermissionDenied("a request from another site cannot use this session", code="auth.cross_site",
                               message_zh="来自其他网站的请求不能使用本会话")
    if not csrf.token_is_valid(request, get_ctx(request).settings.secret_key,
                               request.headers.get(csrf.CSRF_HEADER)):
        raise PermissionDenied("send the page's CSRF token in the X-CSRF-Token header, or sign in with a bearer token",
                               message_zh="请在 X-CSRF-Token 请求头中附上页面的 CSRF 令牌，或使用 Bearer 令牌登录",
                               code="auth.csrf")
    content_type = request.headers.get("content-type", "")
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if has_body and not content_type.startswith("application/json"):
        raise PermissionDenied("a request signed in by the session cookie sends JSON", code="auth.cross_site",
                               message_zh="以会话 Cookie 登录的请求须发送 JSON")


OptionalStaff = Annotated[StaffUser | None, Depends(optional_staff)]
CurrentStaff = Annotated[StaffUser, Depends(require_staff)]


CITIZEN_COOKIE = "wecity_citizen"


def _citizen_token(request: Request) -> tuple[str | None, bool]:
    """The citizen token sent, and whether it came by cookie (a bearer token wins when both are sent)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer ") and auth.count(".") == 2:
        return auth[7:].strip(), False
    return request.cookies.get(CITIZEN_COOKIE), True


async def signed_in_phone(ctx: AppContext, token: str | None) -> str | None:
    """The phone number a citizen token was signed for (wecity.identity.applicants.sign_citizen), unless it
    has expired or was signed out; else None."""
    phone = citizen_phone(ctx.settings.secret_key, token, int(ctx.clock.now().timestamp()))
    if phone is None or token is None:
        return None
    return None if await ctx.db.read(citizen_signed_out, token) else phone


async def optional_citizen(request: Request) -> str | None:
    """The phone number of the signed-in citizen, or None."""
    token, _by = _citizen_token(request)
    return await signed_in_phone(get_ctx(request), token)


async def require_citizen(request: Request) -> str:
    phone = await optional_citizen(request)
    if phone is None:
        raise AuthenticationRequired("sign in with your phone number first", message_zh="请先用手机号码登录",
                                     code="auth.citizen_required")
    if request.method not in SAFE_METHODS and _citizen_token(request)[1]:
        check_same_site(request)
    return phone


OptionalCitizen = Annotated[str | None, Depends(optional_citizen)]
CurrentCitizen = Annotated[str, Depends(require_citizen)]
