"""What an API key may do: its scopes and its tenant.

A key is made for one purpose (`wecity apikey add NAME --scope ngsild:write --tenant changsha`):

    open311:write   file service requests over Open311 (and, for a key of a staff user, push status updates)
    ngsild:read     read the context broker (entities, subscriptions, history)
    ngsild:write    change it (entities, batches, subscriptions, @contexts): a sensor gateway's key
    admin           everything above

and acts in one NGSI-LD tenant ("" is the default tenant; "*" is every tenant). Staff signed in act with
the scopes of their roles (`scopes_for_roles`): everyone reads the broker, administrators change it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.errors import ValidationFailed
from wecity.identity.models import api_keys, users

OPEN311_WRITE, NGSILD_READ, NGSILD_WRITE, ADMIN = "open311:write", "ngsild:read", "ngsild:write", "admin"
SCOPES = {
    OPEN311_WRITE: ("通过 Open311 提交诉求", "file service requests over Open311"),
    NGSILD_READ: ("读取 NGSI-LD 数据", "read the context broker"),
    NGSILD_WRITE: ("写入 NGSI-LD 数据", "change the context broker"),
    ADMIN: ("全部权限", "everything"),
}
ANY_TENANT = "*"


@dataclass(frozen=True, slots=True)
class Grant:
    """What a live key (or a staff sign-in) may do."""

    scopes: frozenset[str]
    tenant: str = ANY_TENANT
    user_id: int | None = None

    def allows(self, scope: str, tenant: str | None = None) -> bool:
        in_tenant = tenant is None or self.tenant in (ANY_TENANT, tenant)
        return in_tenant and (scope in self.scopes or ADMIN in self.scopes)


def parse_scopes(given: Iterable[str]) -> frozenset[str]:
    scopes = frozenset(s.strip() for item in given for s in item.replace(",", " ").split() if s.strip())
    unknown = sorted(scopes - SCOPES.keys())
    if unknown or not scopes:
        raise ValidationFailed(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(unknown) or 'none'}",
                               message_zh=f"权限范围须为 {', '.join(SCOPES)} 中的若干项", code="apikey.scope")
    return scopes


def scopes_for_roles(roles: Iterable[str]) -> frozenset[str]:
    """Staff signed in: every role reads the context broker; administrators change it."""
    return frozenset({ADMIN}) if "admin" in roles else frozenset({NGSILD_READ})


def api_key_grant(conn: Connection, key: str) -> Grant | None:
    """The grant of a live key, or None. A good answer is kept for a few seconds (intake reads it on every
    report), so a revoked key stops working within `cache.DEFAULT_TTL` in other processes."""
    if not key:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()

    def load() -> Grant | None:
        # A key made for a staff member stops with them: a deactivated owner's key is no key.
        owner_active = sa.or_(api_keys.c.user_id.is_(None), sa.exists().where(
            users.c.id == api_keys.c.user_id, users.c.is_active.is_(True)))
        row = conn.execute(sa.select(api_keys.c.scopes, api_keys.c.tenant, api_keys.c.user_id).where(
            api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None), owner_active)).first()
        return Grant(frozenset(row.scopes.split()), row.tenant, row.user_id) if row else None

    grant = cache.cached(conn, ("api key", digest), load)
    if grant is None:
        cache.invalidate(conn, "api key", digest)  # a bad key is not remembered: it may be created next
    return grant
