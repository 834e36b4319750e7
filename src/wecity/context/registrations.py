"""Context source registrations (clause 5.2.9) as resources: checked (`validate`), stored with entity
types, attribute names and context source property names expanded, shown in the reader's terms, queried
(clause 5.10.2), updated and deleted; the rules of the registration modes (clauses 4.3.6.3, 5.9.2.4).
What a registration serves is `sources.py`; telling its subscribers is `csourcenotify.py`."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import sources
from wecity.context.entity import check_name, check_scope, is_uri, now_text, parse_time
from wecity.context.env import Env, keep_named_contexts
from wecity.context.errors import already_exists, bad_request_data, conflict, resource_not_found
from wecity.context.federation import CALLER_CREDENTIALS, REQUEST_VALUE
from wecity.context.geo import GeoQuery, to_shape
from wecity.context.history import TimeFilter, epoch
from wecity.context.ldcontext import TermMap
from wecity.context.models import registrations as t
from wecity.context.rows import entities_by_id
from wecity.context.search import Query, compile_pattern, query
from wecity.context.subscriptions import check_key_values
from wecity.core.errors import NotFound

TYPE = "ContextSourceRegistration"
# Members of a registration the spec names (5.2.9); any other member is a property of the context source.
MEMBERS = frozenset({"id", "type", "registrationName", "description", "information", "tenant", "observationInterval",
                     "managementInterval", "location", "observationSpace", "operationSpace", "expiresAt",
                     "endpoint", "contextSourceInfo", "scope", "mode", "operations", "refreshRate", "management"})
# What the broker keeps about a registration itself: a client cannot set it.
_SYSTEM = frozenset({"status", "timesSent", "timesFailed", "lastSuccess", "lastFailure", "createdAt", "modifiedAt"})
_MANDATORY = ("id", "type", "information", "endpoint")
GEO_MEMBERS = ("location", "observationSpace", "operationSpace")
_INTERVALS = ("observationInterval", "managementInterval")
# An auxiliary source is only read from (5.9.2.4).
AUXILIARY_OPERATIONS = frozenset({"retrieveOps", "retrieveEntity", "queryEntity"})
PROPERTIES = "_properties"  # the context source properties, by expanded name
_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def _not_found(reg_id: str) -> NotFound:
    return resource_not_found(f"context source registration {reg_id} not found", f"上下文源注册 {reg_id} 不存在")


# -- checking -------------------------------------------------------------------------------------

def validate(body: Any, terms: TermMap, *, partial: bool = False, now: datetime | None = None) -> dict[str, Any]:
    """A registration (or, with `partial`, a fragment of one) checked and in its stored form: names
    expanded, context source properties under `_properties`; BadRequestData when malformed."""
    if not isinstance(body, dict):
        raise bad_request_data("a context source registration must be a JSON object", "上下文源注册必须是 JSON 对象")
    given = {k: v for k, v in body.items() if k != "@context" and k not in _SYSTEM and not k.startswith("_")}
    if partial:
        if not given:
            raise bad_request_data("the fragment changes nothing", "更新内容为空")
        for key in _MANDATORY:
            if key in given and given[key] is None:
                raise bad_request_data(f"{key} cannot be removed from a registration", f"不能删除注册的 {key}")
    else:
        for key in ("information", "endpoint"):
            if given.get(key) is None:
                raise bad_request_data(f"a context source registration needs {key}", f"上下文源注册需要 {key}")
    if (not partial or "type" in given) and given.get("type") != TYPE:
        raise bad_request_data(f"type must be {TYPE!r}", f"type 必须是 {TYPE!r}")
    reg: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for key, value in given.items():
        if key in MEMBERS:
            reg[key] = value if value is None else _member(key, value, terms, now)
        else:
            check_name(key)
            properties[terms.expand(key)] = value
    if properties:
        reg[PROPERTIES] = properties
    if not partial:
        check_whole(reg)
    return reg


def _member(key: str, value: Any, terms: TermMap, now: datetime | None) -> Any:
    """One member of 5.2.9 checked, in its stored form."""
    if key == "id" or key == "endpoint":
        if not is_uri(value):
            raise bad_request_data(f"{key} must be a URI", f"{key} 必须是 URI")
        return value
    if key == "information":
        return _information(value, terms)
    if key in ("registrationName", "description", "tenant"):
        if not isinstance(value, str) or not value:
            raise bad_request_data(f"{key} must be a non-empty string", f"{key} 必须是非空字符串")
        return value
    if key in _INTERVALS:
        return _interval(value, key)
    if key in GEO_MEMBERS:
        to_shape(value)
        return value
    if key == "expiresAt":
        if now is not None and parse_time(value, key) <= now:
            raise bad_request_data("expiresAt is in the past", "expiresAt 已是过去的时间")
        parse_time(value, key)
        return value
    if key == "contextSourceInfo":
        check_key_values(value, key)
        copied = sorted({p["key"] for p in value if p["value"] == REQUEST_VALUE
                         and p["key"].lower() in CALLER_CREDENTIALS})
        if copied:
            raise bad_request_data(
                f"contextSourceInfo cannot copy the caller's credentials ({', '.join(copied)}) to a context source",
                f"contextSourceInfo 不能把调用方的凭据（{', '.join(copied)}）转发给上下文源")
        return value
    if key == "scope":
        return check_scope(value)
    if key == "mode":
        if value not in sources.MODES:
            raise bad_request_data(f"mode must be one of {', '.join(sources.MODES)}",
                                   f"mode 只能取 {'、'.join(sources.MODES)}")
        return value
    if key == "operations":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad_request_data("operations must be a non-empty list of names", "operations 必须是非空名称列表")
        unknown = [v for v in value if v not in sources.OPERATIONS and v not in sources.OPERATION_GROUPS]
        if unknown:
            raise bad_request_data(f"unknown operations {', '.join(unknown)}", f"未知的操作：{'、'.join(unknown)}")
        return value
    if key == "refreshRate":
        _duration(value, key)
        return value
    if key == "management":
        return _management(value)
    return value  # type, checked with the whole


def _information(value: Any, terms: TermMap) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise bad_request_data("information must be a non-empty list of RegistrationInfo",
                               "information 必须是非空的 RegistrationInfo 列表")
    out = []
    for info in value:
        if not isinstance(info, dict) or not any(info.get(k) for k in ("entities", "propertyNames",
                                                                       "relationshipNames")):
            raise bad_request_data("each RegistrationInfo needs entities, propertyNames or relationshipNames",
                                   "每个 RegistrationInfo 都需要 entities、propertyNames 或 relationshipNames")
        item: dict[str, Any] = {}
        if info.get("entities") is not None:
            item["entities"] = [_entity_info(e, terms) for e in _list(info["entities"], "entities")]
        for key in ("propertyNames", "relationshipNames"):
            if info.get(key) is not None:
                names = _list(info[key], key)
                for name in names:
                    if not isinstance(name, str):
                        raise bad_request_data(f"{key} must list names", f"{key} 必须是名称列表")
                    check_name(name)
                item[key] = [terms.expand(n) for n in names]
        out.append(item)
    return out


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise bad_request_data(f"{what} must be a non-empty list", f"{what} 必须是非空列表")
    return value


def _entity_info(item: Any, terms: TermMap) -> dict[str, Any]:
    """An EntityInfo (5.2.8): a type (or several), and an id or an idPattern."""
    if not isinstance(item, dict):
        raise bad_request_data("each entities item must be an object", "entities 的每一项都必须是对象")
    out: dict[str, Any] = {}
    if "id" in item:
        if not is_uri(item["id"]):
            raise bad_request_data("entities id must be a URI", "entities 中的 id 必须是 URI")
        out["id"] = item["id"]
    if "idPattern" in item:
        if not isinstance(item["idPattern"], str):
            raise bad_request_data("idPattern must be a string", "idPattern 必须是字符串")
        compile_pattern(item["idPattern"])
        out["idPattern"] = item["idPattern"]
    kind = item.get("type")
    if kind is None and "id" in out:
        return out  # an entity named by its id alone
    names: list[str] = []
    for name in kind if isinstance(kind, list) and kind else [kind]:
        if not isinstance(name, str) or not name:
            raise bad_request_data("each entities item needs a type", "entities 的每一项都需要 type")
        check_name(name)
        names.append(name)
    expanded = [terms.expand(n) for n in names]
    out["type"] = expanded if isinstance(kind, list) else expanded[0]
    return out


def _interval(value: Any, what: str) -> dict[str, Any]:
    """A TimeInterval (5.2.11): startAt, and endAt after it if given."""
    if not isinstance(value, dict) or "startAt" not in value or set(value) - {"startAt", "endAt"}:
        raise bad_request_data(f"{what} must be an object with startAt and an optional endAt",
                               f"{what} 必须是带 startAt（及可选 endAt）的对象")
    start = parse_time(value["startAt"], f"{what}.startAt")
    if value.get("endAt") is not None and parse_time(value["endAt"], f"{what}.endAt") <= start:
        raise bad_request_data(f"{what}.endAt must be after startAt", f"{what}.endAt 必须晚于 startAt")
    return dict(value)


def _duration(value: Any, what: str) -> None:
    if not isinstance(value, str) or not _DURATION.match(value):
        raise bad_request_data(f"{what} must be an ISO 8601 duration", f"{what} 必须是 ISO 8601 时长")


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _management(value: Any) -> dict[str, Any]:
    """RegistrationManagementInfo (5.2.34)."""
    if not isinstance(value, dict):
        raise bad_request_data("management must be an object", "management 必须是对象")
    if "localOnly" in value and not isinstance(value["localOnly"], bool):
        raise bad_request_data("management.localOnly must be true or false", "management.localOnly 必须是 true 或 false")
    if "cacheDuration" in value:
        _duration(value["cacheDuration"], "management.cacheDuration")
    for key in ("timeout", "cooldown"):
        if key in value and not _positive(value[key]):
            raise bad_request_data(f"management.{key} must be a number above zero", f"management.{key} 必须是大于零的数")
    return dict(value)


def check_whole(reg: dict[str, Any]) -> None:
    """The rules across members: what the mode allows (4.3.6.3, 5.9.2.4)."""
    mode = reg.get("mode") or sources.DEFAULT_MODE
    if mode == "auxiliary" and reg.get("operations") and not set(reg["operations"]) <= AUXILIARY_OPERATIONS:
        raise bad_request_data("an auxiliary registration offers only retrieveOps, retrieveEntity or queryEntity",
                               "auxiliary 注册只能提供 retrieveOps、retrieveEntity 或 queryEntity")
    if mode == "exclusive":
        for info in reg.get("information") or ():
            entities = info.get("entities") or []
            if not entities or any(not e.get("id") or e.get("idPattern") for e in entities):
                raise bad_request_data("an exclusive registration names each entity by its id (no idPattern, "
                                       "not a type alone)", "exclusive 注册必须以 id 指明每个实体（不能用 idPattern 或仅用类型）")
            if not sources.names_of(info):
                raise bad_request_data("an exclusive registration names the attributes it holds",
                                       "exclusive 注册必须指明其持有的属性")


# -- conflicts ------------------------------------------------------------------------------------

def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two RegistrationInfo elements may register the same attribute of the same entity."""
    for x in a.get("entities") or [{}]:
        for y in b.get("entities") or [{}]:
            types = sources._types(x) or None
            if y and not sources.entity_matches(y, entity_id=x.get("id"), id_pattern=x.get("idPattern"),
                                                types=types):
                continue
            names_a, names_b = set(sources.names_of(a)), set(sources.names_of(b))
            if not names_a or not names_b or names_a & names_b:
                return True
    return False


def check_conflicts(conn: Connection, tenant: str, reg: dict[str, Any], *, own_pk: int | None = None) -> None:
    """Conflict (409) when an exclusive or redirect registration would take over what an exclusive
    registration already holds, or what an entity of this broker holds (5.9.2.4)."""
    mode = reg.get("mode") or sources.DEFAULT_MODE
    if mode not in ("exclusive", "redirect"):
        return
    infos = reg.get("information") or []
    for row in conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.mode == "exclusive")):
        if row.pk != own_pk and any(_overlaps(a, b) for a in infos for b in row.body.get("information") or ()):
            raise conflict(f"Conflict: context source registration {row.registration_id} already holds these "
                           "attributes exclusively", f"冲突：上下文源注册 {row.registration_id} 已独占这些属性")
    for info in infos:
        held = _held_locally(conn, tenant, info, whole=mode == "redirect")
        if held is not None:
            raise conflict(f"Conflict: entity {held} of this broker already holds what the {mode} registration "
                           "names", f"冲突：本代理的实体 {held} 已持有该 {mode} 注册所指的数据")


def _held_locally(conn: Connection, tenant: str, info: dict[str, Any], *, whole: bool) -> str | None:
    """An entity of this broker that holds what `info` registers (an exclusive registration: one of its
    attributes; a redirect one: the entity), or None."""
    names = set(sources.names_of(info))
    for item in info.get("entities") or ():
        if item.get("id"):
            found = entities_by_id(conn, tenant, [item["id"]]).get(item["id"])
            candidates = [found] if found is not None and sources.entity_matches(
                item, entity_id=found.id, types=found.types) else []
        elif whole:
            candidates, _ = query(conn, tenant, Query(types=sources._types(item) or None,
                                                       id_pattern=item.get("idPattern")), limit=100, offset=0,
                                  count=False)
        else:
            candidates = []
        for entity in candidates:
            if not names or names & set(entity.attrs):
                return entity.id
    return None


# -- storage --------------------------------------------------------------------------------------

def create(conn: Connection, env: Env, reg: dict[str, Any], context: Any) -> dict[str, Any]:
    """Store a new registration; its stored form (with its id) is returned."""
    reg = {"id": reg.get("id") or f"urn:ngsi-ld:ContextSourceRegistration:{uuid.uuid4()}", **reg}
    exists = conn.execute(sa.select(t.c.pk).where(t.c.tenant == env.tenant, t.c.registration_id == reg["id"])).first()
    if exists:
        raise already_exists(f"context source registration {reg['id']} already exists",
                             f"上下文源注册 {reg['id']} 已存在")
    check_conflicts(conn, env.tenant, reg)
    conn.execute(t.insert().values(tenant=env.tenant, registration_id=reg["id"], body=reg, context=context,
                                   mode=reg.get("mode") or sources.DEFAULT_MODE, expires_at=_expires(reg),
                                   created_at=env.now, modified_at=env.now))
    keep_named_contexts(conn, env, context)
    return reg


def _expires(reg: dict[str, Any]) -> datetime | None:
    return parse_time(reg["expiresAt"], "expiresAt") if reg.get("expiresAt") else None


def row_of(conn: Connection, tenant: str, reg_id: str, now: datetime | None = None) -> Any:
    """The registration's row; NotFound when there is none or (given `now`) once its expiresAt has passed,
    as for a deleted one (4.22), before any sweep removes it."""
    row = conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.registration_id == reg_id)).first()
    if row is None or (now is not None and sources.expired(row.expires_at, now)):
        raise _not_found(reg_id)
    return row


def update(conn: Connection, env: Env, reg_id: str, fragment: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """PATCH (5.9.3): the members given replace those stored, null removes one; context source properties
    likewise one by one. Returns the registration before and after."""
    row = row_of(conn, env.tenant, reg_id, env.now)
    if fragment.get("id") not in (None, reg_id):
        raise bad_request_data("the id of a registration cannot change", "注册的 id 不能修改")
    before = dict(row.body)
    body = dict(before)
    for key, value in fragment.items():
        if key == PROPERTIES:
            merged = {**body.get(PROPERTIES, {}), **value}
            body[PROPERTIES] = {k: v for k, v in merged.items() if v is not None}
        elif value is None:
            body.pop(key, None)
        else:
            body[key] = value
    if not body.get(PROPERTIES):
        body.pop(PROPERTIES, None)
    check_whole(body)
    check_conflicts(conn, env.tenant, body, own_pk=row.pk)
    conn.execute(t.update().where(t.c.pk == row.pk).values(body=body, mode=body.get("mode") or sources.DEFAULT_MODE,
                                                           expires_at=_expires(body), modified_at=env.now))
    return before, body


def delete(conn: Connection, tenant: str, reg_id: str) -> dict[str, Any]:
    """Remove a registration; it is returned as it was."""
    row = row_of(conn, tenant, reg_id)
    conn.execute(t.delete().where(t.c.pk == row.pk))
    return dict(row.body)


# -- showing --------------------------------------------------------------------------------------

def render(reg: dict[str, Any], terms: TermMap, *, information: list[dict[str, Any]] | None = None,
           created_at: datetime | None = None, modified_at: datetime | None = None) -> dict[str, Any]:
    """The registration as 5.2.9 shows it, names compacted with `terms`: the mode and operations (their
    defaults when not given), `information` in place of the registered one when given (a notification's
    matching part), createdAt / modifiedAt when given (sysAttrs)."""
    out: dict[str, Any] = {}
    for key, value in reg.items():
        if key == PROPERTIES:
            out.update({terms.compact(k): v for k, v in value.items()})
        elif key == "information":
            out[key] = [_compact_info(i, terms) for i in (information if information is not None else value)]
        elif not key.startswith("_"):
            out[key] = value
    out.setdefault("mode", sources.DEFAULT_MODE)
    out.setdefault("operations", list(sources.DEFAULT_OPERATIONS))
    if created_at is not None:
        out["createdAt"] = now_text(created_at)
    if modified_at is not None:
        out["modifiedAt"] = now_text(modified_at)
    return out


def _compact_info(info: dict[str, Any], terms: TermMap) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "entities" in info:
        out["entities"] = [dict(e, type=[terms.compact(x) for x in e["type"]] if isinstance(e["type"], list)
                                else terms.compact(e["type"])) if "type" in e else dict(e)
                           for e in info["entities"]]
    for key in ("propertyNames", "relationshipNames"):
        if key in info:
            out[key] = [terms.compact(n) for n in info[key]]
    return out


# -- discovery (5.10.2) ---------------------------------------------------------------------------

@dataclass
class Filter:
    """What a query of registrations asks (clause 5.10.2.4): the entities and attributes they are to
    cover, conditions on their context source properties (q, csf), scope, place and time. Names
    expanded; None asks nothing."""

    ids: list[str] | None = None
    id_pattern: str | None = None
    types: list[str] | None = None
    attrs: list[str] | None = None
    q: Any = None  # predicates over `properties_of`
    csf: Any = None
    scope_q: Any = None
    geo: GeoQuery | None = None
    when: TimeFilter = field(default_factory=TimeFilter)
    timeproperty: str = "observedAt"

    def asks_something(self) -> bool:
        return any(x is not None for x in (self.ids, self.id_pattern, self.types, self.attrs, self.q, self.csf,
                                           self.scope_q, self.geo, self.when.timerel))


def properties_of(reg: dict[str, Any], core: TermMap) -> dict[str, Any]:
    """The registration's members as `q` and `csf` read them: by expanded name, values as they are."""
    out = {core.expand(k): v for k, v in reg.items() if k in MEMBERS and k != "information"}
    out.update(reg.get(PROPERTIES) or {})
    return out


def interval_matches(reg: dict[str, Any], when: TimeFilter, timeproperty: str) -> bool:
    """A temporal query on the observationInterval (observedAt) or the managementInterval (createdAt,
    modifiedAt): does the interval reach into the time asked for? A registration without it does not."""
    if when.timerel is None:
        return True
    interval = reg.get("observationInterval" if timeproperty == "observedAt" else "managementInterval")
    if not isinstance(interval, dict):
        return False
    start = epoch(parse_time(interval["startAt"], "startAt"))
    end = epoch(parse_time(interval["endAt"], "endAt")) if interval.get("endAt") else None
    assert when.time_at is not None
    if when.timerel == "before":
        return start < when.time_at
    if when.timerel == "after":
        return end is None or end > when.time_at
    assert when.end_time_at is not None
    return start < when.end_time_at and (end is None or end > when.time_at)


def geo_matches(reg: dict[str, Any], geo: GeoQuery | None, core: TermMap) -> bool:
    if geo is None:
        return True
    member = core.compact(geo.geoproperty)
    value = reg.get(member) if member in GEO_MEMBERS else None
    return value is not None and geo.matches(value)


def matches(reg: dict[str, Any], f: Filter, core: TermMap) -> bool:
    """Whether a registration answers a discovery query."""
    if f.ids is not None or f.id_pattern is not None or f.types is not None or f.attrs is not None:
        if not any(sources.info_matches(i, ids=f.ids, id_pattern=f.id_pattern if f.ids is None else None,
                                        types=f.types, attrs=f.attrs) for i in reg.get("information") or ()):
            return False
    if f.q is not None or f.csf is not None:
        props = properties_of(reg, core)
        if (f.q is not None and not f.q(props)) or (f.csf is not None and not f.csf(props)):
            return False
    if f.scope_q is not None and not f.scope_q(reg.get("scope")):
        return False
    return geo_matches(reg, f.geo, core) and interval_matches(reg, f.when, f.timeproperty)


def discover(conn: Connection, tenant: str, f: Filter, core: TermMap, now: datetime, *, limit: int,
             offset: int) -> tuple[list[Any], int]:
    """The registrations (rows) a query finds, oldest first, a page of them and how many in all. Expired
    registrations are no longer found."""
    rows = conn.execute(sa.select(t).where(t.c.tenant == tenant).order_by(t.c.pk)).all()
    found = [r for r in rows if not sources.expired(r.expires_at, now) and matches(r.body, f, core)]
    return found[offset:offset + limit], len(found)

