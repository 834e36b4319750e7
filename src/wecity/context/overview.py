"""What the city's sensors look like at a glance: entities per type, which have gone quiet, where they are.

Read from the entity rows' own columns (type, location box, last change), never from the attribute
documents, so the overview costs one pass over the entities of a tenant whatever their attributes hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


def _value(attribute: Any) -> Any:
    """An attribute's value as a table cell: a Property's value, a GeoProperty's geometry, a Relationship's
    object; of several instances (datasetId), the first."""
    if isinstance(attribute, list):
        attribute = attribute[0] if attribute else None
    if not isinstance(attribute, dict):
        return None
    for key in ("value", "object", "languageMap", "vocab", "json"):
        if key in attribute:
            return attribute[key]
    return None


def entities_of_type(conn: Connection, entity_type: str, *, tenant: str = "",
                     limit: int = 100_000) -> list[dict[str, Any]]:
    """The current state of every entity of one type, flat: `id`, each attribute by its short name, and
    `observedAt` (the latest observation among its attributes, else its last change). `entity_type` is a
    full IRI or a name of the default context. Oldest entity first."""
    from wecity.context.ldcontext import DEFAULT_VOCAB

    expanded = entity_type if ":" in entity_type else DEFAULT_VOCAB + entity_type
    out = []
    for r in conn.execute(sa.select(t.c.entity_id, t.c.attrs, t.c.modified_at)
                          .where(t.c.tenant == tenant, t.c.type == expanded).order_by(t.c.pk).limit(limit)):
        row: dict[str, Any] = {"id": r.entity_id}
        observed = []
        for name, attribute in (r.attrs or {}).items():
            row[short_type(name)] = _value(attribute)
            first = attribute[0] if isinstance(attribute, list) and attribute else attribute
            if isinstance(first, dict) and first.get("observedAt"):
                observed.append(str(first["observedAt"]))
        row["observedAt"] = max(observed) if observed else r.modified_at
        out.append(row)
    return out


def history_rows(conn: Connection, entity_type: str, *, where: dict[str, list[str]], limit: int, offset: int,
                 with_total: bool = True, count_up_to: int | None = None,
                 tenant: str = "") -> tuple[int | None, list[tuple[Any, ...]]]:
    """The recorded values of every attribute of the entities of one type, oldest first, as rows of
    (`id`, `attribute` by its short name, `observedAt` as ISO 8601 UTC, `value`): a number where the value
    was one, else the instance's value. `where` filters on `id` and `attribute` (in SQL: a type's history
    may be millions of rows; the index on (tenant, entity_type, ts, pk) gives them in order). With
    `count_up_to`, rows are counted that far only, and the total is None when there are more: counting a
    million rows for every page would cost more than the page."""
    from wecity.context.history import TYPES
    from wecity.context.ldcontext import DEFAULT_VOCAB
    from wecity.context.models import attribute_history as h

    expanded = entity_type if ":" in entity_type else DEFAULT_VOCAB + entity_type
    conditions = [h.c.tenant == tenant, h.c.entity_type == expanded, h.c.attr != TYPES]
    if "id" in where:
        conditions.append(h.c.entity_id.in_(where["id"]))
    if "attribute" in where:
        conditions.append(h.c.attr.in_([a if ":" in a else DEFAULT_VOCAB + a for a in where["attribute"]]))
    total: int | None = None
    if with_total:
        counted = sa.select(h.c.pk).where(*conditions)
        if count_up_to is not None:
            counted = counted.limit(count_up_to + 1)
        total = int(conn.execute(sa.select(sa.func.count()).select_from(counted.subquery())).scalar_one())
        if count_up_to is not None and total > count_up_to:
            total = None
    rows = conn.execute(sa.select(h.c.entity_id, h.c.attr, h.c.ts, h.c.number, h.c.instance).where(*conditions)
                        .order_by(h.c.ts, h.c.pk).limit(limit).offset(offset))
    out = []
    for r in rows:
        when = datetime.fromtimestamp(r.ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        value = r.number if r.number is not None else (r.instance or {}).get("value", (r.instance or {}).get("object"))
        out.append((r.entity_id, short_type(r.attr), when, value))
    return total, out
