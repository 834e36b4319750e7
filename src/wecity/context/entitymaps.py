"""EntityMaps (ETSI GS CIM 009 clause 5.14): the entities a retrieval or query named, kept for a while
under an id the client can send back in the NGSILD-EntityMap header."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.models import entity_maps as m

# How long a map stays usable after it was last extended; a client referring to an expired one simply
# gets a new one (clause 5.7.1.4), so this only bounds how long stale maps take up space. A client may ask
# for another lifetime (entityMapLifetime, or expiresAt in an update), up to MAX_LIFETIME.
LIFETIME = timedelta(hours=1)
MAX_LIFETIME = timedelta(days=1)
MAX_ENTITIES = 10_000  # entities one map holds: a query that matches more is cut there
PREFIX = "urn:ngsi-ld:entitymap:"


@dataclass
class EntityMap:
    map_id: str
    entity_map: dict[str, Any]
    expires_at: datetime


def get(conn: Connection, tenant: str, map_id: str, now: datetime) -> EntityMap | None:
    """The live map with this id, or None when there is none or it has expired."""
    row = conn.execute(sa.select(m.c.map_id, m.c.entity_map, m.c.expires_at)
                       .where(m.c.tenant == tenant, m.c.map_id == map_id, m.c.expires_at > now)).first()
    return EntityMap(row.map_id, dict(row.entity_map), row.expires_at) if row else None


def use(conn: Connection, tenant: str, reference: str | None, entity_ids: list[str], now: datetime) -> EntityMap:
    """The map a request refers to, holding `entity_ids` too; a new map when the reference is absent,
    unknown or expired. Entities come from this broker, so each maps to "@none" (no context source)."""
    conn.execute(m.delete().where(m.c.expires_at <= now))
    found = get(conn, tenant, reference, now) if reference else None
    expires = now + LIFETIME
    if found is None:
        found = EntityMap(PREFIX + uuid.uuid4().hex, {i: ["@none"] for i in entity_ids}, expires)
        conn.execute(m.insert().values(tenant=tenant, map_id=found.map_id, entity_map=found.entity_map,
                                       created_at=now, expires_at=expires))
        return found
    added = {i: ["@none"] for i in entity_ids if i not in found.entity_map}
    found.entity_map.update(added)
    found.expires_at = expires
    conn.execute(m.update().where(m.c.tenant == tenant, m.c.map_id == found.map_id)
                 .values(entity_map=found.entity_map, expires_at=expires))
    return found


def create(conn: Connection, tenant: str, entity_ids: list[str], now: datetime,
           lifetime: timedelta = LIFETIME) -> EntityMap:
    """A new map of these entities (all held by this broker: "@none"), live for `lifetime` (bounded)."""
    conn.execute(m.delete().where(m.c.expires_at <= now))
    made = EntityMap(PREFIX + uuid.uuid4().hex, {i: ["@none"] for i in entity_ids},
                     now + min(lifetime, MAX_LIFETIME))
    conn.execute(m.insert().values(tenant=tenant, map_id=made.map_id, entity_map=made.entity_map, created_at=now,
                                   expires_at=made.expires_at))
    return made


def set_expiry(conn: Connection, tenant: str, map_id: str, expires_at: datetime, now: datetime) -> bool:
    """A live map's expiry moved (never beyond MAX_LIFETIME from now); False when there is no such map."""
    return bool(conn.execute(m.update().where(m.c.tenant == tenant, m.c.map_id == map_id, m.c.expires_at > now)
                             .values(expires_at=min(expires_at, now + MAX_LIFETIME))).rowcount)


def forget(conn: Connection, tenant: str, found: EntityMap, gone: set[str]) -> None:
    """Take entities that no longer exist out of a map."""
    found.entity_map = {k: v for k, v in found.entity_map.items() if k not in gone}
    conn.execute(m.update().where(m.c.tenant == tenant, m.c.map_id == found.map_id)
                 .values(entity_map=found.entity_map))


def delete(conn: Connection, tenant: str, map_id: str) -> bool:
    """Remove a map; False when there was none."""
    return bool(conn.execute(m.delete().where(m.c.tenant == tenant, m.c.map_id == map_id)).rowcount)


def sweep(conn: Connection, now: datetime) -> int:
    """Remove the maps that have expired; how many."""
    return int(conn.execute(m.delete().where(m.c.expires_at <= now)).rowcount or 0)
