"""Which registered context sources serve a request: the one place that reads context source registrations
(clause 5.2.9) as a map of who holds what.

`sources_for` is what a distributed operation asks (clause 4.3.6): for one operation (a name of Table
4.20-1, e.g. `retrieveEntity`) on an entity id, entity types and attributes, in a tenant, the matching
registrations with their endpoints, modes and operations. Discovery (`GET /csourceRegistrations`),
csourceSubscriptions and the registration modes' conflict rules use the predicates below it, so a
registration means the same thing to all of them. Names are compared expanded (IRIs), as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.federation import FEDERATION_OPS, GROUPS, expand_operations
from wecity.context.models import registrations as t
from wecity.core.patterns import BadPattern, compile_pattern

# Operations (Table 4.20-1); their groups (Table 4.20-2) are `federation.GROUPS`, the one table of them. A
# registration without `operations` offers federationOps.
OPERATION_GROUPS = GROUPS
_CONSUMPTION = tuple(sorted(FEDERATION_OPS))
OPERATIONS = frozenset({
    *_CONSUMPTION, "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs", "deleteEntity",
    "mergeEntity", "replaceEntity", "replaceAttrs", "purgeEntity", "createBatch", "upsertBatch", "updateBatch",
    "deleteBatch", "mergeBatch", "retrieveTemporal", "queryTemporal", "createTemporal", "upsertTemporal",
    "appendAttrsTemporal", "deleteAttrsTemporal", "updateAttrInstanceTemporal", "deleteAttrInstanceTemporal",
    "deleteTemporal", "mergeTemporal", "retrieveEntityMap", "updateEntityMap", "deleteEntityMap",
    "createEntityMap", "queryEntityMap"})
DEFAULT_OPERATIONS = ("federationOps",)
MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
DEFAULT_MODE = "inclusive"
# The order sources are given in: those that hold data in place of the broker first (4.3.6.3).
_MODE_RANK = {"exclusive": 0, "redirect": 1, "inclusive": 2, "auxiliary": 3}

_ANY = sa.select(t.c.pk).where(t.c.tenant == sa.bindparam("b_tenant")).limit(1)


def operations_of(reg: dict[str, Any]) -> frozenset[str]:
    """Every operation a registration offers, its groups expanded."""
    return expand_operations(reg.get("operations") or DEFAULT_OPERATIONS)


def _types(item: dict[str, Any]) -> list[str]:
    kind = item.get("type")
    return [kind] if isinstance(kind, str) else list(kind or ())


def _pattern_matches(pattern: str, entity_id: str) -> bool:
    """The whole id matches, on RE2; a pattern that no longer compiles matches nothing."""
    try:
        return compile_pattern(pattern).fullmatch(entity_id)
    except BadPattern:
        return False


def entity_matches(item: dict[str, Any], *, entity_id: str | None = None, id_pattern: str | None = None,
                   types: Iterable[str] | None = None) -> bool:
    """Whether a registered EntityInfo (id, idPattern, type) may hold an entity with this id (or one
    matching `id_pattern`) and one of these types; None asks nothing of that part. Two patterns are taken
    to overlap: whether they do cannot be told in general, and asking a source too many is harmless."""
    if types is not None:
        registered = _types(item)
        if registered and not any(x in registered for x in types):
            return False
    if entity_id is not None:
        if item.get("id"):
            return bool(item["id"] == entity_id)
        if item.get("idPattern"):
            return _pattern_matches(item["idPattern"], entity_id)
    if id_pattern is not None and item.get("id"):
        return _pattern_matches(id_pattern, item["id"])
    return True


def names_of(info: dict[str, Any]) -> list[str]:
    """The attribute names a RegistrationInfo registers (property and relationship names)."""
    return [*(info.get("propertyNames") or ()), *(info.get("relationshipNames") or ())]


def info_matches(info: dict[str, Any], *, ids: Iterable[str] | None = None, id_pattern: str | None = None,
                 types: Iterable[str] | None = None, attrs: Iterable[str] | None = None) -> bool:
    """Whether a RegistrationInfo covers entities with one of `ids` (or matching `id_pattern`), of one of
    `types`, and one of `attrs`. Without entities it covers every entity; without attribute names, every
    attribute."""
    entities = info.get("entities") or []
    type_list = list(types) if types is not None else None
    if entities:
        wanted = list(ids) if ids is not None else [None]
        if not any(entity_matches(item, entity_id=i, id_pattern=id_pattern, types=type_list)
                   for item in entities for i in wanted):
            return False
    names = names_of(info)
    if attrs is not None and names:
        asked = set(attrs)
        if asked and not asked.intersection(names):
            return False
    return True


def expired(reg_expires_at: datetime | None, now: datetime) -> bool:
    return reg_expires_at is not None and reg_expires_at <= now


def has_any(conn: Connection, tenant: str) -> bool:
    """Whether the tenant has a registration at all: one indexed look-up, so a request in a tenant without
    registrations (the usual case) reads nothing more."""
    return conn.execute(_ANY, {"b_tenant": tenant}).first() is not None


@dataclass(frozen=True)
class SourceRequest:
    """What a request asks of the registered sources: an operation of Table 4.20-1, and the entity id,
    entity types (expanded) and attribute names (expanded) it is about; None for any."""

    operation: str
    entity_id: str | None = None
    types: frozenset[str] | None = None
    attrs: frozenset[str] | None = None


@dataclass(frozen=True)
class Source:
    """A registered context source that serves a request."""

    registration_id: str
    endpoint: str
    mode: str  # inclusive, exclusive, redirect or auxiliary
    operations: frozenset[str]  # what it offers, groups expanded
    information: tuple[dict[str, Any], ...]  # the RegistrationInfo elements that matched (names expanded)
    attrs: frozenset[str] | None  # the attributes asked for that it holds; None: whichever it has
    tenant: str | None  # the tenant to use at the source (the registration's `tenant`), if any
    context_source_info: tuple[dict[str, str], ...]  # headers to send it (key / value pairs)
    management: dict[str, Any]  # localOnly, timeout, cooldown, cacheDuration (clause 5.2.34)
    context: Any  # the @context the registration was made with


def source_of(row: Any, request: SourceRequest) -> Source | None:
    """The source a registration row offers for `request`, or None when it does not serve it."""
    reg = row.body
    offered = operations_of(reg)
    if request.operation not in offered:
        return None
    ids = [request.entity_id] if request.entity_id is not None else None
    infos = tuple(info for info in reg.get("information") or ()
                  if info_matches(info, ids=ids, types=request.types, attrs=request.attrs))
    if not infos:
        return None
    held: set[str] | None = set()
    for info in infos:
        names = names_of(info)
        if not names or held is None:
            held = None
        else:
            held.update(names)
    attrs = frozenset(held & request.attrs) if held is not None and request.attrs is not None else \
        (frozenset(held) if held is not None else None)
    return Source(registration_id=row.registration_id, endpoint=reg["endpoint"], mode=row.mode, operations=offered,
                  information=infos, attrs=attrs, tenant=reg.get("tenant"),
                  context_source_info=tuple(reg.get("contextSourceInfo") or ()),
                  management=dict(reg.get("management") or {}), context=row.context)


def sources_for(conn: Connection, tenant: str, request: SourceRequest, now: datetime) -> list[Source]:
    """The registered sources serving `request` in `tenant` (not expired), exclusive ones first, then
    redirect, inclusive and auxiliary ones, each group in the order they were registered. How to use them
    (4.3.6.3): an exclusive source holds its attributes instead of the broker; redirect sources hold the
    whole entity (the request goes to all of them, not to the local store); inclusive sources add to what
    the broker holds; auxiliary ones only fill in what no other source gave, and only for reads."""
    if not has_any(conn, tenant):
        return []
    rows = conn.execute(sa.select(t).where(t.c.tenant == tenant).order_by(t.c.pk)).all()
    found = [s for row in rows if not expired(row.expires_at, now)
             for s in [source_of(row, request)] if s is not None]
    return sorted(found, key=lambda s: _MODE_RANK.get(s.mode, len(_MODE_RANK)))
