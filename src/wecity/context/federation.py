"""Context source registrations as the forwarding of requests sees them (GS CIM 009 clauses 4.3.6, 4.20,
5.7.1.4, 5.7.2.4, 5.6.x.4): which registrations a request matches, in which mode, for which attributes,
how a forwarded query is narrowed to what a registration offers, and how entities held in several
places are merged into one. No I/O here: `forwarding` sends the requests, `distributed` ties both to
the routes.

Registrations arrive in their spec JSON form with the term map of their @context; types and attribute
names are kept expanded, as the broker stores them, so a request with another @context matches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wecity.context.entity import instances
from wecity.context.ldcontext import TermMap
from wecity.core.patterns import BadPattern, compile_pattern

MODES = ("inclusive", "exclusive", "redirect", "auxiliary")
REQUEST_VALUE = "urn:ngsi-ld:request"  # contextSourceInfo: copy this header from the request being served
# Headers that carry the caller's own credentials to this broker. A registration may not have them copied
# to its context source (REQUEST_VALUE): anyone with a write key could otherwise register a source of their
# own and collect every reader's bearer key and session cookie.
CALLER_CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})

# Table 4.20-2: the groups a registration may name instead of single operations.
RETRIEVE_OPS = frozenset({"retrieveEntity", "queryEntity"})
UPDATE_OPS = frozenset({"updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs"})
_DISCOVERY = frozenset({"retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
                        "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo"})
FEDERATION_OPS = RETRIEVE_OPS | {"queryBatch"} | _DISCOVERY | frozenset({
    "createSubscription", "updateSubscription", "retrieveSubscription", "querySubscription", "deleteSubscription"})
REDIRECTION_OPS = RETRIEVE_OPS | UPDATE_OPS | _DISCOVERY | frozenset({
    "createEntity", "appendAttrs", "deleteAttrs", "deleteEntity", "mergeEntity", "purgeEntity"})
# associationOps: the name some registrations use for the same consumption operations as federationOps.
GROUPS = {"federationOps": FEDERATION_OPS, "associationOps": FEDERATION_OPS, "updateOps": UPDATE_OPS,
          "retrieveOps": RETRIEVE_OPS, "redirectionOps": REDIRECTION_OPS}
READS = RETRIEVE_OPS | {"queryBatch"}
# What an auxiliary registration may be asked (4.3.6.2): it only ever adds to what is read.
AUXILIARY_OPS = RETRIEVE_OPS

# Entity members that are no attributes, in a forwarded or received entity.
_MEMBERS = {"id", "type", "@context", "scope", "createdAt", "modifiedAt", "deletedAt", "@id", "@type"}


def expand_operations(names: Iterable[str]) -> frozenset[str]:
    """Single operations, with the groups replaced by what they stand for."""
    out: set[str] = set()
    for name in names:
        out |= GROUPS.get(name, {name})
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class EntityInfo:
    types: frozenset[str]  # expanded; empty: any type
    id: str | None = None
    id_pattern: str | None = None

    def covers(self, entity_id: str | None, types: Iterable[str] | None) -> bool:
        """Whether this selector covers the entity: an unknown id or type (None) is not held against it."""
        if types is not None and self.types and self.types.isdisjoint(types):
            return False
        if entity_id is None:
            return True
        if self.id is not None and self.id != entity_id:
            return False
        if self.id_pattern is not None:
            try:
                # as idPattern in a query: the pattern found in the id (registrations write `urn:x:Type:*`)
                return compile_pattern(self.id_pattern).search(entity_id)
            except BadPattern:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Information:
    entities: tuple[EntityInfo, ...]  # empty: any entity
    names: frozenset[str] | None  # registered attribute names (expanded); None: every attribute


@dataclass(frozen=True)
class Registration:
    id: str
    endpoint: str
    mode: str
    operations: frozenset[str]
    information: tuple[Information, ...]
    context_source_info: tuple[tuple[str, str], ...] = ()
    tenant: str | None = None  # the tenant to use at the context source
    local_only: bool = False
    properties: dict[str, Any] = field(default_factory=dict)  # expanded name -> stored attribute, for csf
    context: Any = None  # the registration's @context: names in forwarded requests are compacted with it

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    @property
    def holds_data_elsewhere(self) -> bool:
        """Exclusive and redirect: the registered data is not the broker's to keep (4.3.6.3)."""
        return self.mode in ("exclusive", "redirect")

    def match(self, entity_id: str | None, types: Iterable[str] | None,
              attrs: Iterable[str] | None = None) -> Match | None:
        """The part of this registration that covers the entity (or, without an id, the query): None when
        nothing does. `attrs`, the attributes the request is about (None: all of them)."""
        type_set = frozenset(types) if types is not None else None
        wanted = frozenset(attrs) if attrs is not None else None
        names: set[str] | None = set()
        hit = False
        for info in self.information:
            if info.entities and not any(e.covers(entity_id, type_set) for e in info.entities):
                continue
            if info.names is None:
                if wanted is None or wanted:
                    hit, names = True, None
                    break
                continue
            common = info.names if wanted is None else info.names & wanted
            if common and names is not None:
                hit = True
                names |= common
        if not hit:
            return None
        return Match(self, frozenset(names) if names is not None else None)

    def entity_ids(self) -> list[str]:
        """The single entity ids this registration names (for narrowing a forwarded query)."""
        return sorted({e.id for info in self.information for e in info.entities if e.id})


@dataclass(frozen=True, slots=True)
class Match:
    registration: Registration
    attrs: frozenset[str] | None  # the registered attributes the request touches (None: every one)


def _names(value: Any, terms: TermMap | None) -> list[str]:
    items = value if isinstance(value, list) else [value] if value is not None else []
    return [terms.expand(v) if terms is not None else v for v in items if isinstance(v, str)]


_REGISTRATION_MEMBERS = {
    "id", "type", "@context", "information", "endpoint", "mode", "operations", "contextSourceInfo", "tenant",
    "name", "registrationName", "description", "expires", "expiresAt", "observationInterval", "managementInterval",
    "location", "observationSpace", "operationSpace", "status", "timesSent", "timesFailed", "lastSuccess",
    "lastFailure", "createdAt", "modifiedAt", "refreshRate", "management", "localOnly", "cacheDuration",
    "timeout", "cooldown", "scope"}


def parse_registration(doc: dict[str, Any], terms: TermMap | None) -> Registration:
    """A registration from its spec JSON (names compacted with `terms`; None: already expanded). The store
    has checked the document; what is missing here takes the spec's default."""
    information = []
    for block in doc.get("information") or []:
        if not isinstance(block, dict):
            continue
        entities = tuple(EntityInfo(frozenset(_names(e.get("type"), terms)), e.get("id"), e.get("idPattern"))
                         for e in block.get("entities") or [] if isinstance(e, dict))
        names = _names(block.get("propertyNames"), terms) + _names(block.get("relationshipNames"), terms)
        information.append(Information(entities, frozenset(names) if names else None))
    mode = doc.get("mode") or "inclusive"
    operations = doc.get("operations") or ["federationOps"]
    info_pairs = tuple((str(i["key"]), str(i["value"])) for i in doc.get("contextSourceInfo") or []
                       if isinstance(i, dict) and "key" in i and "value" in i)
    properties = {terms.expand(k) if terms is not None else k: v for k, v in doc.items()
                  if k not in _REGISTRATION_MEMBERS and isinstance(v, dict) and "type" in v}
    # the registration store keeps a source's own properties apart, by expanded name
    properties.update({k: v for k, v in (doc.get("_properties") or {}).items() if isinstance(v, dict)})
    local_only = bool(doc.get("localOnly") or (doc.get("management") or {}).get("localOnly") or any(
        k.rsplit("/", 1)[-1].rsplit(":", 1)[-1] == "localOnly" and v is True
        for k, v in (doc.get("_properties") or {}).items()))
    return Registration(id=str(doc.get("id")), endpoint=str(doc.get("endpoint", "")).rstrip("/"), mode=mode,
                        operations=expand_operations(operations), information=tuple(information),
                        context_source_info=info_pairs, tenant=doc.get("tenant"),
                        local_only=local_only, properties=properties, context=doc.get("@context"))


def matching(registrations: Iterable[Registration], operation: str, entity_id: str | None,
             types: Iterable[str] | None, attrs: Iterable[str] | None = None) -> list[Match]:
    """The registrations that cover the request, whatever they support (the caller decides what an
    unsupported operation means for each mode)."""
    types = list(types) if types is not None else None
    attrs = list(attrs) if attrs is not None else None
    out = []
    for reg in registrations:
        if reg.mode == "auxiliary" and operation not in AUXILIARY_OPS and operation not in READS:
            continue  # an auxiliary source is never written to (4.3.6.2)
        found = reg.match(entity_id, types, attrs)
        if found is not None:
            out.append(found)
    return out


# -- merging ---------------------------------------------------------------------------------------

def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _newer(candidate: dict[str, Any], kept: dict[str, Any]) -> bool:
    """Whether `candidate` wins over `kept` (clause 4.3.6.1 note: the most recent observedAt, else the most
    recent modifiedAt; a tie keeps what was there first)."""
    for member in ("observedAt", "modifiedAt"):
        a, b = _instant(candidate.get(member)), _instant(kept.get(member))
        if a is not None and b is not None and a != b:
            return a > b
        if a is not None and b is None:
            return True
        if b is not None and a is None:
            return False
    return False


def merge_attribute(kept: Any, other: Any, *, auxiliary: bool = False) -> Any:
    """Two versions of one attribute merged instance by instance (datasetId): each datasetId once, the
    newer version winning; an auxiliary source only fills in datasetIds missing elsewhere."""
    by_dataset: dict[Any, dict[str, Any]] = {i.get("datasetId"): i for i in instances(kept)}
    for inst in instances(other):
        key = inst.get("datasetId")
        if key not in by_dataset:
            by_dataset[key] = inst
        elif not auxiliary and _newer(inst, by_dataset[key]):
            by_dataset[key] = inst
    merged = list(by_dataset.values())
    return merged[0] if len(merged) == 1 else merged


def merge_attrs(target: dict[str, Any], attrs: dict[str, Any], *, auxiliary: bool = False) -> None:
    """`attrs` (stored form, name -> attribute) merged into `target`."""
    for name, attr in attrs.items():
        target[name] = merge_attribute(target[name], attr, auxiliary=auxiliary) if name in target else attr


# -- results of a forwarded change -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Outcome:
    """What one place (the broker itself, registration None, or a context source) said to a change."""

    registration: str | None
    status: int
    problem: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.status != 207


def partial_result(entity_id: str | None, outcomes: list[Outcome]) -> dict[str, Any]:
    """The body of a 207 (clause 6.3.17): who succeeded, and an error per failed place."""
    errors = []
    for o in outcomes:
        if o.ok:
            continue
        problem = o.problem or {"type": "https://uri.etsi.org/ngsi-ld/errors/InternalError",
                                "title": "the context source did not succeed", "status": o.status}
        problem = dict(problem, status=problem.get("status", o.status))
        item: dict[str, Any] = {"entityId": entity_id, "error": problem}
        if o.registration is not None:
            item["registrationId"] = o.registration
        errors.append(item)
    success = [entity_id] if entity_id is not None and any(o.ok for o in outcomes) else []
    return {"success": success, "errors": errors}


def split_attributes(body: dict[str, Any], names: frozenset[str] | None, expand: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A client entity or fragment cut in two: the members whose attributes are in `names` (None: all of
    them) and the rest; id, type, scope and @context go with both."""
    inside: dict[str, Any] = {}
    outside: dict[str, Any] = {}
    for key, value in body.items():
        if key in _MEMBERS:
            inside[key] = outside[key] = value
        elif names is None or expand(key) in names:
            inside[key] = value
        else:
            outside[key] = value
    return inside, outside


def has_attributes(body: dict[str, Any]) -> bool:
    return any(k not in _MEMBERS for k in body)
