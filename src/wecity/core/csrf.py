"""CSRF protection for the portal's form posts: a token signed with the secret key, bound to a cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

CSRF_COOKIE = "wecity_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def _sign(secret_key: str, nonce: str) -> str:
    return hmac.new(secret_key.encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def browser_nonce(request: Request) -> tuple[str, bool]:
    """This browser's CSRF nonce, and whether it is new (so the response must set the cookie)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 20 <= len(nonce) <= 100:
        return nonce, False
    # Remember the new nonce on the request, so every form on this page carries the same token.
    cached: str | None = getattr(request.state, "csrf_nonce", None)
    if cached:
        return cached, True
    nonce = secrets.token_urlsafe(24)
    request.state.csrf_nonce = nonce
    return nonce, True


def token_for(request: Request, secret_key: str) -> str:
    return _sign(secret_key, browser_nonce(request)[0])


def set_cookie_if_new(request: Request, response: Response) -> None:
    nonce, new = browser_nonce(request)
    if new:
        response.set_cookie(CSRF_COOKIE, nonce, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")


def token_is_valid(request: Request, secret_key: str, submitted: str | None) -> bool:
    """True when the submitted token (form field or header) was signed for this browser's cookie.

    A cross-site form cannot read the cookie, and SameSite=Lax keeps it off cross-site posts, so a
    forged post has no valid token.
    """
    nonce = request.cookies.get(CSRF_COOKIE, "")
    token = submitted or request.headers.get(CSRF_HEADER, "")
    if not nonce or not token:
        return False
    return hmac.compare_digest(_sign(secret_key, nonce), token)
