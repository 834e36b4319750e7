"""Which tenants exist (clause 5.5.10): the default tenant always; any other from the first operation
that creates something in it (an entity, a subscription, a registration...). Every other operation
on a tenant that was never created is a NonexistentTenant.

Tenants are never removed through the API, so the ones seen to exist are remembered in memory and a
request on a known tenant costs no database read."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from wecity.context.errors import nonexistent_tenant
from wecity.context.models import tenants as t
from wecity.core.context import AppContext
from wecity.core.db import insert_unless_there

DEFAULT = ""
NAME = re.compile(r"^[A-Za-z0-9_\-.:]{1,64}$")  # what an NGSILD-Tenant header may say
_KNOWN = "ngsild_known_tenants"


def _known(ctx: AppContext) -> set[str]:
    return ctx.services.setdefault(_KNOWN, set())  # type: ignore[no-any-return]


async def exists(ctx: AppContext, tenant: str) -> bool:
    if tenant == DEFAULT or tenant in _known(ctx):
        return True
    found = await ctx.db.read(lambda conn: conn.execute(sa.select(t.c.pk).where(t.c.name == tenant)).first())
    if found is not None:
        _known(ctx).add(tenant)
    return found is not None


async def require(ctx: AppContext, tenant: str) -> None:
    """NonexistentTenant (404) unless `tenant` exists."""
    if not await exists(ctx, tenant):
        raise nonexistent_tenant(f"tenant {tenant!r} does not exist", f"租户 {tenant!r} 不存在")


async def ensure(ctx: AppContext, tenant: str) -> None:
    """`tenant` exists from now on (a creation in it succeeded)."""
    if await exists(ctx, tenant):
        return
    now = ctx.clock.now()

    def write(conn: sa.Connection) -> None:
        if conn.execute(sa.select(t.c.pk).where(t.c.name == tenant)).first() is None:
            conn.execute(t.insert().values(name=tenant, created_at=now))

    try:
        await ctx.db.write(write)
    except sa.exc.IntegrityError:  # created at the same moment by another request
        pass
    _known(ctx).add(tenant)


def ensure_in(conn: sa.Connection, tenant: str, now: Any) -> None:
    """Inside a write that creates something in `tenant` outside the API (a device provisioned in it, a
    reading stored by MQTT ingestion): the tenant exists from now on, as a creation through the API makes it."""
    if tenant == DEFAULT or conn.execute(sa.select(t.c.pk).where(t.c.name == tenant)).first() is not None:
        return  # looked up first: on PostgreSQL an INSERT that does nothing still takes a number of the key
    insert_unless_there(conn, t, dict(name=tenant, created_at=now), unique=["name"])
