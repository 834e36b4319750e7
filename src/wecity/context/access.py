"""Who may use the context broker, and for what: API keys by their scopes and tenant, staff by their roles
(WECITY_NGSILD_AUTH).

Sensor data says where people are and what the city's equipment is doing, and a reading can open a case,
so by default every NGSI-LD request needs credentials: an API key (`Authorization: Bearer wk_...` or
`X-API-Key`, made with `wecity apikey add --scope ...`) for systems, a staff session (cookie or bearer
token from /api/v1/auth/token) for people. Reads need `ngsild:read`, changes `ngsild:write`, and a key
acts only in its tenant (wecity.identity.keys). `writes` opens reads to everyone; `off` is for closed
networks and conformance testing.
Writes count against their credential's rate limit (`ngsild`, wecity.core.limits); with `writes`, reads
without credentials count per client address (`ngsild_public`); with `off` nothing is counted.
"""

from __future__ import annotations

import hashlib
import time

from fastapi import Request

from wecity.context.errors import forbidden, unauthorized
from wecity.context.protocol import tenant_of
from wecity.core.cache import DEFAULT_TTL
from wecity.core.http import client_address, get_ctx
from wecity.identity.deps import SESSION_COOKIE
from wecity.identity.keys import NGSILD_READ, NGSILD_WRITE, Grant, api_key_grant, scopes_for_roles
from wecity.identity.service import user_for_session

API_KEY_PREFIX = "wk_"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POST /entityOperations/query and POST /temporal/entityOperations/query: queries with a body, reads.
QUERY_SUFFIX = "/entityOperations/query"

# Grants of keys seen lately, by (database, digest): the broker's hot paths (a partial update every few
# milliseconds per device gateway) should not pay a database round trip per request for the same key.
# A revoked key stops working within DEFAULT_TTL, as everywhere else on the platform. Not an lru_cache:
# whether a key is valid depends on the time and on the database (revocation), so each entry carries its
# own expiry and only live keys are kept; bounded (cleared past 10,000 keys) whatever callers send.
_grants: dict[tuple[str, str], tuple[float, Grant]] = {}


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
    """FastAPI dependency of every /ngsi-ld route: 401 without good credentials, 403 without the scope
    (read or write) or outside the key's tenant, 429 when the caller's writes pass their rate limit
    (WECITY_RATE_LIMIT_NGSILD); unless the settings let the request through."""
    ctx = get_ctx(request)
    mode = ctx.settings.ngsild_auth
    query = request.url.path.rstrip("/").endswith(QUERY_SUFFIX)
    reading = request.method in READ_METHODS or (request.method == "POST" and query)
    if mode == "off":
        return
    if mode == "writes" and reading:
        # Open to anyone: a reader without credentials is counted per client address, so one caller cannot
        # scan the broker without pause; one with credentials reads as it would under `required`, uncounted.
        if any(_credentials(request)):
            await _caller(request)  # 401 if they are not good: made-up credentials are no way past the count
        else:
            await ctx.limits.hit("ngsild_public", client_address(request) or "-")
        return
    caller, grant = await _caller(request)
    scope = NGSILD_READ if reading else NGSILD_WRITE
    if not grant.allows(scope):
        raise forbidden(f"these credentials lack the {scope} scope", f"该凭据缺少 {scope} 权限")
    tenant = tenant_of(request)
    if not grant.allows(scope, tenant):
        raise forbidden(f"this API key is not for tenant {tenant or '(default)'!r}",
                        f"该 API 密钥不能用于租户 {tenant or '（默认）'}")
    if not reading:
        # Per credential, so one gateway's runaway loop slows that gateway, not the broker.
        await ctx.limits.hit("ngsild", caller)


async def _caller(request: Request) -> tuple[str, Grant]:
    """Who the valid credentials name (an API key's or a session's digest) and what they may do; 401
    without them."""
    ctx = get_ctx(request)
    key, session = _credentials(request)
    grant = await _key_grant(request, key) if key else None
    if grant is not None and key:
        return "key:" + hashlib.sha256(key.encode()).hexdigest(), grant
    if session:
        user = await ctx.db.read(user_for_session, session, ctx.clock.now())
        if user is not None:
            return "session:" + hashlib.sha256(session.encode()).hexdigest(), Grant(scopes_for_roles(user.roles))
    raise unauthorized(
        "the NGSI-LD API needs an API key (Authorization: Bearer wk_... or X-API-Key) or a staff sign-in"
        if not (key or session) else "the API key or sign-in is not valid (revoked or expired?)",
        "NGSI-LD 接口需要 API 密钥（Authorization: Bearer wk_… 或 X-API-Key）或工作人员登录"
        if not (key or session) else "API 密钥或登录无效（已吊销或已过期？）")


async def _key_grant(request: Request, key: str) -> Grant | None:
    ctx = get_ctx(request)
    slot = (ctx.settings.database_url, hashlib.sha256(key.encode()).hexdigest())
    now = time.monotonic()
    kept = _grants.get(slot)
    if kept is not None and kept[0] > now:
        return kept[1]
    grant = await ctx.db.read(api_key_grant, key)
    if grant is not None:
        if len(_grants) > 10_000:  # bounded, whatever a caller sends
            _grants.clear()
        _grants[slot] = (now + DEFAULT_TTL, grant)
    return grant
