"""Discovery of what the broker holds (ETSI GS CIM 009 clauses 5.7.5-5.7.10): the entity types and the
attributes entities of the tenant carry, folded from the entities themselves (no separate catalogue to
keep in step). Discovery is rare next to entity reads and writes, so it reads the rows it needs rather
than keeping counters on the hot write paths."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.entity import EXPIRES_AT, instances
from wecity.context.models import entities as t

_LIVE = sa.or_(t.c.expires_at.is_(None), t.c.expires_at > sa.bindparam("b_now"))


@dataclass
class AttributeFacts:
    """One attribute name as entities carry it: how many entities, with which attribute types, in
    entities of which types."""

    count: int = 0
    kinds: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)


@dataclass
class TypeFacts:
    count: int = 0
    attrs: dict[str, AttributeFacts] = field(default_factory=dict)


def _rows(conn: Connection, tenant: str, now: datetime, *, with_attrs: bool, type_iri: str | None = None) -> Iterator[Any]:
    columns = [t.c.type, t.c.extra_types] + ([t.c.attrs] if with_attrs else [])
    stmt = sa.select(*columns).where(t.c.tenant == tenant, _LIVE)
    if type_iri is not None:
        # single-typed entities through the (tenant, type) index; multi-typed ones by their list of types
        stmt = stmt.where(sa.or_(t.c.type == type_iri, t.c.multi_typed.is_(True)))
    # Streamed (on PostgreSQL a server-side cursor): a tenant's every entity does not sit in memory at once.
    with conn.execute(stmt.execution_options(yield_per=1000), {"b_now": now}) as result:
        yield from result


def _types_of(row: Any) -> list[str]:
    return [row.type, *(row.extra_types or ())]


def _attributes(attrs: dict[str, Any]) -> Iterator[tuple[str, set[str]]]:
    for iri, attr in attrs.items():
        if iri == EXPIRES_AT:
            continue  # the expiry of a transient entity, stored by older versions among the attributes
        yield iri, {i.get("type", "Property") for i in instances(attr)}


def type_names(conn: Connection, tenant: str, now: datetime) -> list[str]:
    """The types entities of the tenant have (expanded), sorted."""
    single = conn.execute(sa.select(t.c.type).where(t.c.tenant == tenant, _LIVE).distinct(), {"b_now": now})
    names = {r.type for r in single}
    multi = conn.execute(sa.select(t.c.extra_types).where(t.c.tenant == tenant, t.c.multi_typed.is_(True), _LIVE),
                         {"b_now": now})
    for row in multi:
        names.update(row.extra_types or ())
    return sorted(names)


def types_in_detail(conn: Connection, tenant: str, now: datetime, type_iri: str | None = None) -> dict[str, TypeFacts]:
    """Per entity type (all, or just `type_iri`): how many entities have it and their attributes."""
    out: dict[str, TypeFacts] = {}
    for row in _rows(conn, tenant, now, with_attrs=True, type_iri=type_iri):
        types = _types_of(row)
        if type_iri is not None and type_iri not in types:
            continue
        for type_name in types if type_iri is None else [type_iri]:
            facts = out.setdefault(type_name, TypeFacts())
            facts.count += 1
            for iri, kinds in _attributes(row.attrs):
                attr = facts.attrs.setdefault(iri, AttributeFacts())
                attr.count += 1
                attr.kinds |= kinds
    return out


def attributes_in_detail(conn: Connection, tenant: str, now: datetime) -> dict[str, AttributeFacts]:
    """Per attribute name (expanded): how many entities carry it, its attribute types and the entity
    types it appears in."""
    out: dict[str, AttributeFacts] = {}
    for row in _rows(conn, tenant, now, with_attrs=True):
        types = _types_of(row)
        for iri, kinds in _attributes(row.attrs):
            facts = out.setdefault(iri, AttributeFacts())
            facts.count += 1
            facts.kinds |= kinds
            facts.types.update(types)
    return out
