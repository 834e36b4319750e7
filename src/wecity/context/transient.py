"""Transient entities and attributes (ETSI GS CIM 009 clause 4.22): an entity or an attribute instance
with an `expiresAt` is served until that instant and is gone after it. Reads hide an expired entity and
drop expired attribute instances at once, from two plain columns of the entity row (its own expiry, and
the earliest expiry among its attribute instances), so a durable entity (both NULL) costs one comparison;
the cleanup task (`sweep`) then removes them for good. The attributes' history is kept: an expired
instance's history rows carry its expiresAt and the temporal reads leave them out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.entity import instances, parse_time
from wecity.context.env import Stored
from wecity.context.models import entities as t

SWEEP_SECONDS = 2.0  # how often expired entities and attribute instances are removed for good
SWEEP_BATCH = 500  # rows handled per transaction


def wall_now() -> datetime:
    return datetime.now(UTC)


def expiry_text(when: datetime) -> str:
    """An expiry as the client reads it back: UTC with Z, milliseconds only when it has them."""
    when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(value: Any) -> datetime | None:
    try:
        return parse_time(value, "expiresAt")
    except Exception:  # checked when written; a value that no longer parses expires nothing
        return None


def earliest_expiry(attrs: dict[str, Any]) -> datetime | None:
    """The earliest expiresAt among the attribute instances; None for none. Runs on every write, so it
    looks at the instances only: a sub-attribute's expiresAt is kept and shown, but does not remove it."""
    earliest: datetime | None = None
    for attr in attrs.values():
        for inst in attr if type(attr) is list else (attr,):
            if "expiresAt" in inst:
                when = _instant(inst["expiresAt"])
                if when is not None and (earliest is None or when < earliest):
                    earliest = when
    return earliest


def alive(item: Any, now: datetime) -> bool:
    """Whether an attribute instance is still served at `now` (it has no expiresAt, or a later one)."""
    if type(item) is not dict or "expiresAt" not in item:
        return True
    when = _instant(item["expiresAt"])
    return when is None or when > now


def prune(attrs: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The attributes without the instances that have expired by `now`."""
    out: dict[str, Any] = {}
    for iri, attr in attrs.items():
        kept = [inst for inst in instances(attr) if alive(inst, now)]
        if kept:
            out[iri] = kept if type(attr) is list and len(kept) > 1 else kept[0]
    return out


def live(entity: Stored | None, now: datetime | None) -> Stored | None:
    """The entity as a reader at `now` sees it: None once it has expired, without its expired attribute
    instances."""
    if entity is None or (entity.expires_at is None and entity.prune_at is None):
        return entity
    now = now or wall_now()
    if entity.expires_at is not None and entity.expires_at <= now:
        return None
    if entity.prune_at is not None and entity.prune_at <= now:
        entity.attrs = prune(entity.attrs, now)
        entity.prune_at = earliest_expiry(entity.attrs)
    return entity


def is_expired(entity: Stored, now: datetime | None) -> bool:
    return entity.expires_at is not None and entity.expires_at <= (now or wall_now())


LIVE = sa.or_(t.c.expires_at.is_(None), t.c.expires_at > sa.bindparam("b_now"))


def sweep(conn: Connection, now: datetime) -> int:
    """Remove expired entities and expired attribute instances for good; how many rows changed."""
    gone = conn.execute(t.delete().where(t.c.pk.in_(
        sa.select(t.c.pk).where(t.c.expires_at <= now).limit(SWEEP_BATCH).scalar_subquery()))).rowcount or 0
    rows = conn.execute(sa.select(t.c.pk, t.c.attrs).where(t.c.attrs_expire_at <= now).limit(SWEEP_BATCH)).all()
    for row in rows:
        attrs = prune(row.attrs, now)
        conn.execute(t.update().where(t.c.pk == row.pk).values(attrs=attrs, attrs_expire_at=earliest_expiry(attrs)))
    return gone + len(rows)
