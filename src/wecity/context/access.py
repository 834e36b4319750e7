"""Who may use the context broker: callers with an API key or a staff sign-in (WECITY_NGSILD_AUTH).

Sensor data says where people are and what the city's equipment is doing, so by default every NGSI-LD
request needs credentials: an API key (`Authorization: Bearer wk_...` or `X-API-Key`, made with
`wecity apikey add`) for systems, a staff session (cookie or bearer token from /api/v1/auth/token) for
people. `writes` opens reads to everyone; `off` is for closed networks and conformance testing.
Writes count against their credential's rate limit (`ngsild`, wecity.core.limits); with `off` there is no
credential to count, and no limit.
"""

from __future__ import annotations

import hashlib
import time

from fastapi import Request

from wecity.context.errors import unauthorized
from wecity.core.cache import DEFAULT_TTL
from wecity.core.http import get_ctx
from wecity.identity.deps import SESSION_COOKIE
from wecity.identity.service import api_key_is_valid, user_for_session

API_KEY_PREFIX = "wk_"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Keys seen valid lately, by (database, digest): the broker's hot paths (a partial update every few
# milliseconds per device gateway) should not pay a database round trip per request for the same key.
# A revoked key stops working within DEFAULT_TTL, as everywhere else on the platform. Not an lru_cache:
# whether a key is valid depends on the time and on the database (revocation), so each entry carries its
# own expiry and only successes are kept; bounded (cleared past 10,000 keys) whatever callers send.
_valid_keys: dict[tuple[str, str], float] = {}


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """(API key, session token) presented by the request, either or both None."""
    key = request.headers.get("x-api-key")
    session = request.cookies.get(SESSION_COOKIE)
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
        if token.startswith(API_KEY_PREFIX):
            key = key or token
        else:
            session = token
    return key, session


async def require_access(request: Request) -> None:
    """FastAPI dependency of every /ngsi-ld route: raise 401 unless the settings let the request through,
    and 429 when the caller's writes pass their rate limit (WECITY_RATE_LIMIT_NGSILD)."""
    ctx = get_ctx(request)
    mode = ctx.settings.ngsild_auth
    if mode == "off" or (mode == "writes" and request.method in READ_METHODS):
        return
    caller = await _caller(request)
    if request.method not in READ_METHODS and not request.url.path.rstrip("/").endswith("/query"):
        # Per credential, so one gateway's runaway loop slows that gateway, not the broker.
        await ctx.limits.hit("ngsild", caller)


async def _caller(request: Request) -> str:
    """Who the valid credentials name (an API key's or a session's digest); 401 without them."""
    ctx = get_ctx(request)
    key, session = _credentials(request)
    if key:
        digest = hashlib.sha256(key.encode()).hexdigest()
        slot = (ctx.settings.database_url, digest)
        now = time.monotonic()
        if _valid_keys.get(slot, 0.0) > now:
            return "key:" + digest
        if await ctx.db.read(api_key_is_valid, key):
            if len(_valid_keys) > 10_000:  # bounded, whatever a caller sends
                _valid_keys.clear()
            _valid_keys[slot] = now + DEFAULT_TTL
            return "key:" + digest
    if session and await ctx.db.read(user_for_session, session, ctx.clock.now()) is not None:
        return "session:" + hashlib.sha256(session.encode()).hexdigest()
    raise unauthorized(
        "the NGSI-LD API needs an API key (Authorization: Bearer wk_... or X-API-Key) or a staff sign-in"
        if not (key or session) else "the API key or sign-in is not valid (revoked or expired?)",
        "NGSI-LD 接口需要 API 密钥（Authorization: Bearer wk_… 或 X-API-Key）或工作人员登录"
        if not (key or session) else "API 密钥或登录无效（已吊销或已过期？）")
