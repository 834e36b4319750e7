"""What the city's sensors look like at a glance: entities per type, which have gone quiet, where they are.

Read from the entity rows' own columns (type, location box, last change), never from the attribute
documents, so the overview costs one pass over the entities of a tenant whatever their attributes hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.models import entities as t

QUIET_AFTER = timedelta(hours=24)  # a sensor that has said nothing for a day needs a look


def short_type(expanded: str) -> str:
    """`https://uri.etsi.org/ngsi-ld/default-context/Manhole` -> `Manhole`."""
    return expanded.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


@dataclass
class TypeSummary:
    type: str
    entities: int
    quiet: int  # not changed for QUIET_AFTER
    last_change: datetime | None


def type_summaries(conn: Connection, now: datetime, tenant: str = "") -> list[TypeSummary]:
    quiet_before = now - QUIET_AFTER
    rows = conn.execute(sa.select(
        t.c.type, sa.func.count(), sa.func.sum(sa.case((t.c.modified_at < quiet_before, 1), else_=0)),
        sa.func.max(t.c.modified_at),
    ).where(t.c.tenant == tenant).group_by(t.c.type).order_by(sa.func.count().desc(), t.c.type))
    return [TypeSummary(short_type(r[0]), int(r[1]), int(r[2] or 0), r[3]) for r in rows]


def located_entities(conn: Connection, tenant: str = "", limit: int = 5000) -> list[dict[str, Any]]:
    """Entities with a location (the centre of its bounding box), most recently changed first."""
    rows = conn.execute(sa.select(t.c.entity_id, t.c.type, t.c.min_lon, t.c.min_lat, t.c.max_lon, t.c.max_lat,
                                  t.c.modified_at)
                        .where(t.c.tenant == tenant, t.c.min_lon.is_not(None))
                        .order_by(t.c.modified_at.desc()).limit(limit))
    return [{"id": r.entity_id, "type": short_type(r.type), "lon": (r.min_lon + r.max_lon) / 2,
             "lat": (r.min_lat + r.max_lat) / 2, "modified_at": r.modified_at} for r in rows]
