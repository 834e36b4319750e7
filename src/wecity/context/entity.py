"""Entities in: client JSON (normalized or concise) checked and put in the stored form, with the names,
ids, scopes and times it holds checked on the way (`render.py` takes the stored form back out,
`attributes.py` writes new instances over stored ones).

Stored form: attribute names and entity types are expanded IRIs. An attribute with one instance (the
common case) is a dict with its `type` (Property, Relationship, GeoProperty, ...), its value member,
metadata (`observedAt`, `unitCode`, `datasetId`, `createdAt`, `modifiedAt`) and sub-attributes keyed by
expanded IRIs. An attribute with several instances (a multi-attribute) is a list of such dicts in the
order they were given, each with a distinct `datasetId` except at most one, the default instance, which
has none (`"datasetId": "@none"` on input means the default and is never stored).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from wecity.context.errors import bad_request_data
from wecity.context.geo import GEOMETRY_TYPES, to_shape
from wecity.context.ldcontext import NGSI_LD, TermMap
from wecity.core.errors import ValidationFailed
from wecity.core.jsontext import parse_json

LOCATION = NGSI_LD + "location"
EXPIRES_AT = NGSI_LD + "expiresAt"
VALUE_MEMBER = {
    "Property": "value", "GeoProperty": "value", "Relationship": "object", "LanguageProperty": "languageMap",
    "JsonProperty": "json", "VocabProperty": "vocab", "ListProperty": "valueList",
    "ListRelationship": "objectList",
}
ATTRIBUTE_TYPES = set(VALUE_MEMBER)
_TYPE_BY_MEMBER = {member: kind for kind, member in VALUE_MEMBER.items() if kind != "GeoProperty"}
METADATA = ("observedAt", "unitCode", "datasetId", "createdAt", "modifiedAt", "lang")
SYSTEM = ("createdAt", "modifiedAt", "instanceId", "deletedAt")
ENTITY_MEMBERS = {"id", "type", "@context", "scope", "createdAt", "modifiedAt", "@id", "@type", "deletedAt"}
# Control characters are in no name or IRI (and PostgreSQL text cannot hold NUL).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_FORBIDDEN = re.compile(r"[<>\"'=;()\s\x00-\x1f\x7f]")
_NAME = re.compile(r"^[^\W\d_]\w*$")  # 4.6.2: a letter, then letters, digits and underscores
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
# Outside an IRI (RFC 3987): markup delimiters and the like, and the invisible characters (default
# ignorable code points, fillers, blank patterns) that would make an id nobody can read back.
_NOT_IRI = re.compile("[\x00-\x1f\x7f<>\"{}|\\^`\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164"
                      "\ufe00-\ufe0f\uffa0\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]")
# Core terms that are members of an attribute, never attribute names (4.5.1).
RESERVED_NAMES = frozenset({
    "datasetId", "instanceId", "observedAt", "unitCode", "previousValue", "previousObject",
    "previousLanguageMap", "previousJson", "previousVocab", "previousValueList", "previousObjectList"})
_OUTPUT_ONLY = frozenset(n for n in RESERVED_NAMES if n.startswith("previous"))
_SEALED = ("entityIdSealed", "entityTypeSealed")
_SCOPE = re.compile(r"^/?[^\W\d_]\w*(?:/[^\W\d_]\w*)*$")  # 4.18: levels of a letter then letters/digits/_
NULL = "urn:ngsi-ld:null"
_VALUE_KEYS = ("value", "object", "languageMap", "json", "vocab", "valueList", "objectList")
_VALUE_KEYS_AND_TYPE = frozenset(_VALUE_KEYS) | {"type"}
_UNITLESS = ("Relationship", "ListRelationship", "JsonProperty")
ATTRIBUTE_MEMBERS = set(VALUE_MEMBER.values()) | set(METADATA)


_LAST_STAMP: tuple[datetime | None, str] = (None, "")


def now_text(now: datetime) -> str:
    """ISO 8601 UTC with milliseconds; the last one is remembered (a batch stamps thousands with one time)."""
    global _LAST_STAMP
    last, text = _LAST_STAMP
    if last != now:
        text = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
        _LAST_STAMP = (now, text)
    return text


def is_uri(value: Any) -> bool:
    """An absolute URI (or IRI): a scheme, then no spaces, controls or invisible format characters."""
    if not isinstance(value, str) or not _URI.match(value) or _NOT_IRI.search(value):
        return False
    return value.isascii() or all(unicodedata.category(c)[0] not in "CZ" for c in value)


def has_control(text: str) -> bool:
    """Whether `text` holds a control character, which no id or name does."""
    return _CONTROL.search(text) is not None


def check_entity_id(value: Any) -> str:
    if not is_uri(value) or value == NULL:
        raise bad_request_data(f"entity id must be a URI, got {value!r}", f"实体 id 必须是 URI：{value!r}")
    return str(value)


def check_name(name: str) -> None:
    """An attribute name or type: a term (4.6.2: a letter, then letters, digits, underscores) or an IRI."""
    if not _is_name(name):
        raise bad_request_data(f"invalid name {name!r}", f"名称无效：{name!r}")


@lru_cache(maxsize=100_000)  # a city uses a few hundred names, over and over
def _is_name(name: str) -> bool:
    return bool(name) and not _FORBIDDEN.search(name) and (":" in name or bool(_NAME.match(name)))


def check_attribute_name(name: str) -> None:
    if name in RESERVED_NAMES:
        raise bad_request_data(f"{name!r} is a core NGSI-LD member, not an attribute name",
                               f"{name!r} 是 NGSI-LD 的核心成员名，不能用作属性名")
    check_name(name)


def check_scope(scope: Any) -> Any:
    """A scope or a list of scopes by the 4.18 grammar (the NGSI-LD Null only deletes a scope)."""
    for item in scope if isinstance(scope, list) else [scope]:
        if not isinstance(item, str) or not _SCOPE.match(item):
            raise bad_request_data(f"invalid scope {item!r}", f"scope 无效：{item!r}")
    return scope


def utc_time(value: Any, what: str) -> str:
    """A date-time in UTC written with Z (4.6.3: no offset from UTC); BadRequestData otherwise."""
    parsed = parse_time(value, what)
    if parsed.utcoffset() or not value.endswith("Z"):
        raise bad_request_data(f"{what} must be a UTC date-time ending in Z: {value!r}",
                               f"{what} 必须是以 Z 结尾的 UTC 日期时间：{value!r}")
    return str(value)


def parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise bad_request_data(f"{what} must be a date-time string", f"{what} 必须是日期时间字符串")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad_request_data(f"{what} is not an ISO 8601 date-time: {value!r}",
                               f"{what} 不是 ISO 8601 日期时间：{value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Entity:
    """An entity from a request, in stored form."""

    id: str
    types: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)  # IRI -> instance dict, or list of instances
    scope: Any = None
    expires_at: datetime | None = None  # a transient entity's expiresAt (4.22)

    @property
    def type(self) -> str:
        return self.types[0]


def is_geometry(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in GEOMETRY_TYPES and "coordinates" in value


def _valid_point(value: dict[str, Any]) -> bool:
    """A well-formed Point, checked without building a geometry (most city entities are points)."""
    if value.get("type") != "Point":
        return False
    c = value.get("coordinates")
    if not isinstance(c, list) or len(c) not in (2, 3) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in c):
        raise bad_request_data("a Point needs [longitude, latitude]", "Point 需要 [经度, 纬度]")
    if not (-180 <= c[0] <= 180 and -90 <= c[1] <= 90):
        raise bad_request_data("coordinates out of range (longitude, latitude)", "坐标超出范围（经度，纬度）")
    return True


def has_null(value: Any) -> bool:
    """Whether the NGSI-LD Null appears in a value, at any depth."""
    if type(value) is str:
        return value == NULL
    if isinstance(value, dict):
        return any(has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(has_null(v) for v in value)
    return False


def is_null(inst: dict[str, Any]) -> bool:
    """An instance whose value is the NGSI-LD Null: in an update or merge, it deletes that instance."""
    value = inst.get(VALUE_MEMBER.get(inst.get("type", "Property"), "value"))
    if isinstance(value, dict) and inst.get("type") == "LanguageProperty":
        return bool(value) and all(v == NULL for v in value.values())
    return value == NULL or (value == [NULL] and inst.get("type") in ("ListProperty", "ListRelationship"))


def normalize_attribute(raw: Any, terms: TermMap, now: datetime, *, partial: bool = False,
                        name: str = "", nulls: str = "") -> dict[str, Any]:
    """One attribute (normalized or concise JSON) in stored form; BadRequestData when malformed.

    With `partial`, a fragment for a partial attribute update: the type may be left out. `nulls` says
    where the NGSI-LD Null may appear: nowhere (""), as the whole value to delete an instance
    ("delete"), or also inside compound values, where a merge removes the key it names ("merge").
    """
    raw, kind = _attribute_kind(_as_object(raw, name), name, partial)
    out: dict[str, Any] = {}
    if kind is not None:
        out["type"] = kind
        _put_value(out, raw, kind, name, partial=partial, nulls=nulls)
    elif nulls != "merge":
        for m in _VALUE_KEYS:
            if m in raw and has_null(raw[m]):
                raise _null_not_allowed(name)
    for key, value in raw.items():
        if key in _VALUE_KEYS_AND_TYPE:
            if kind is None and key != "type":
                out[key] = value
            elif key != "type" and key != VALUE_MEMBER[kind]:
                raise bad_request_data(f"a {kind} ({name!r}) cannot have '{key}'",
                                       f"{kind}（{name!r}）不能有 '{key}'")
        elif key not in SYSTEM:
            _put_member(out, key, value, kind, terms, now, name=name, nulls=nulls)
    if name == "ngsildproof" and kind == "Property" and "value" in out and not isinstance(out["value"], dict):
        raise bad_request_data("the value of ngsildproof is a proof object", "ngsildproof 的值必须是证明对象")
    stamp = now_text(now)
    out["createdAt"] = stamp
    out["modifiedAt"] = stamp
    return out


def _as_object(raw: Any, name: str) -> dict[str, Any]:
    """An attribute as a JSON object: a bare value (concise) is a Property, a bare geometry a GeoProperty."""
    if raw is None:
        raise bad_request_data(f"attribute {name!r} is null", f"属性 {name!r} 为空值")
    if isinstance(raw, list) or not isinstance(raw, dict):
        return {"type": "Property", "value": raw}
    if is_geometry(raw):
        return {"type": "GeoProperty", "value": raw}
    return raw


def _attribute_kind(raw: dict[str, Any], name: str, partial: bool) -> tuple[dict[str, Any], Any]:
    """The attribute and its type: as given (a core IRI shortened), else told by its value member
    (concise); a concise object with neither is the value of a Property. The type is None only in a
    partial fragment that names neither."""
    kind = raw.get("type")
    if isinstance(kind, str) and kind.startswith(NGSI_LD):
        kind = kind[len(NGSI_LD):]
    if kind is None:
        member = next((m for m in _TYPE_BY_MEMBER if m in raw), None)
        if member is None and not partial:
            if any(k in raw for k in METADATA) or not raw:
                raise bad_request_data(f"attribute {name!r} has no value", f"属性 {name!r} 没有值")
            return {"type": "Property", "value": raw}, "Property"
        if member is not None:
            kind = _TYPE_BY_MEMBER[member]
            if kind == "Property" and is_geometry(raw.get("value")):
                kind = "GeoProperty"
    elif kind not in ATTRIBUTE_TYPES:
        raise bad_request_data(f"attribute {name!r} has unknown type {kind!r}",
                               f"属性 {name!r} 的类型 {kind!r} 未知")
    return raw, kind


def _null_not_allowed(name: str) -> ValidationFailed:
    return bad_request_data(f"attribute {name!r}: the NGSI-LD Null is not allowed here",
                            f"属性 {name!r}：此处不允许 NGSI-LD Null")


def _put_value(out: dict[str, Any], raw: dict[str, Any], kind: str, name: str, *, partial: bool,
               nulls: str) -> None:
    """The value member of a `kind` attribute, checked, into `out` (a partial fragment may leave it out)."""
    member = VALUE_MEMBER[kind]
    if member not in raw:
        if not partial:
            raise bad_request_data(f"{kind} {name!r} needs '{member}'", f"{kind} {name!r} 缺少 '{member}'")
        return
    value = raw[member]
    if nulls and is_null({"type": kind, member: value}):
        out[member] = value
        return
    # A geometry is checked as such; scalars need one comparison, compound values a walk.
    if nulls != "merge" and (value == NULL or (kind != "GeoProperty" and (
            type(value) is dict or type(value) is list) and has_null(value))):
        raise _null_not_allowed(name)
    out[member] = check_value(kind, value, name)


def _put_member(out: dict[str, Any], key: str, value: Any, kind: str | None, terms: TermMap, now: datetime,
                *, name: str, nulls: str) -> None:
    """A member other than the type and value into `out`: metadata checked, a sub-attribute normalised
    under its expanded name."""
    if key == "observedAt":
        out[key] = utc_time(value, f"{name}.observedAt")
    elif key == "unitCode":
        out[key] = _unit_code(value, kind, name)
    elif key in ("valueType", "objectType"):
        out[key] = _type_member(key, value, kind, name, terms)
    elif key in _SEALED:
        if name.rpartition(".")[2] != "ngsildproof":
            raise bad_request_data(f"{key} is only allowed in ngsildproof", f"{key} 只能出现在 ngsildproof 中")
        if not isinstance(value, str):
            raise bad_request_data(f"{key} must be a string", f"{key} 必须是字符串")
        out[key] = terms.expand(value) if key == "entityTypeSealed" else value
    elif key in _OUTPUT_ONLY:
        raise bad_request_data(f"{key} is only given in notifications, never on input", f"{key} 仅用于通知，不能作为输入")
    elif key == "datasetId":
        if value == "@none":
            return  # the default instance, stored without a datasetId
        if not is_uri(value) or value == NULL:  # 5.5.8: a datasetId cannot be deleted with the Null
            raise bad_request_data("datasetId must be a URI", "datasetId 必须是 URI")
        out[key] = value
    elif key == "lang":
        out[key] = value
    elif key == "expiresAt":
        parse_time(value, f"{name}.expiresAt")
        out[key] = value
    elif key == "@context":
        raise bad_request_data("@context is not allowed inside an attribute", "属性内不允许 @context")
    else:
        check_name(key)
        out[terms.expand(key)] = normalize_attribute(value, terms, now, name=f"{name}.{key}", nulls=nulls)


def _unit_code(value: Any, kind: str | None, name: str) -> str:
    if not isinstance(value, str):
        raise bad_request_data("unitCode must be a string", "unitCode 必须是字符串")
    if kind in _UNITLESS:
        raise bad_request_data(f"a {kind} ({name!r}) has no unitCode", f"{kind}（{name!r}）不能有 unitCode")
    return value


def _type_member(key: str, value: Any, kind: str | None, name: str, terms: TermMap) -> Any:
    """valueType or objectType (a Relationship's only); an objectType is a type name, kept expanded."""
    if (key == "objectType") != (kind in ("Relationship", "ListRelationship")) and kind is not None:
        raise bad_request_data(f"a {kind} ({name!r}) cannot have '{key}'", f"{kind}（{name!r}）不能有 '{key}'")
    if kind == "LanguageProperty" and value != "langString":
        raise bad_request_data("the valueType of a LanguageProperty is langString",
                               "LanguageProperty 的 valueType 必须是 langString")
    if not isinstance(value, str | list):
        raise bad_request_data(f"{key} must be a string", f"{key} 必须是字符串")
    return terms.expand(value) if key == "objectType" and isinstance(value, str) else value


def _is_instances(raw: Any) -> bool:
    """A list of attribute instances (rather than a list value of a concise Property)."""
    return bool(raw) and all(isinstance(r, dict) and (r.get("type") in ATTRIBUTE_TYPES or "datasetId" in r
                                                      or not ATTRIBUTE_MEMBERS.isdisjoint(r)) for r in raw)


def normalize_attribute_value(raw: Any, terms: TermMap, now: datetime, *, partial: bool = False,
                              name: str = "", nulls: str = "") -> Any:
    """An attribute in stored form: one instance as a dict, or several instances (a list of them in
    normalized or concise form, told apart by datasetId) as a list; BadRequestData when two instances
    share a datasetId or both are the default."""
    if not isinstance(raw, list) or not _is_instances(raw):
        return normalize_attribute(raw, terms, now, partial=partial, name=name, nulls=nulls)
    items = [normalize_attribute(r, terms, now, partial=partial, name=name, nulls=nulls) for r in raw]
    seen: set[str | None] = set()
    for item in items:
        dataset = item.get("datasetId")
        if dataset in seen:
            which = "the default instance" if dataset is None else f"datasetId {dataset}"
            raise bad_request_data(f"attribute {name!r} has {which} twice",
                                   f"属性 {name!r} 中 {dataset or '默认实例'} 重复出现")
        seen.add(dataset)
    return items[0] if len(items) == 1 else items


def instances(attr: Any) -> list[dict[str, Any]]:
    """The instances of a stored attribute."""
    return attr if isinstance(attr, list) else [attr]


def check_value(kind: str, value: Any, name: str) -> Any:
    """The value member checked for the attribute's type (and put in its one stored form)."""
    if value is None:
        raise bad_request_data(f"attribute {name!r} has a null value", f"属性 {name!r} 的值为空")
    if kind == "Property":
        return value
    if kind == "Relationship":
        items = value if isinstance(value, list) else [value]
        if not items or not all(is_uri(v) for v in items):
            raise bad_request_data(f"relationship {name!r} must point to a URI", f"关系 {name!r} 必须指向 URI")
    elif kind == "GeoProperty":
        if isinstance(value, str) and value.lstrip().startswith("{"):
            try:
                value = parse_json(value)  # 4.7.2: a geometry may come JSON-encoded in a string
            except ValueError:
                pass
        if not is_geometry(value):
            raise bad_request_data(f"GeoProperty {name!r} must be a GeoJSON geometry (not a GeometryCollection)",
                                   f"地理属性 {name!r} 必须是 GeoJSON 几何对象（不能是 GeometryCollection）")
        if not _valid_point(value):
            to_shape(value)
    elif kind == "LanguageProperty":
        if not isinstance(value, dict) or not value or not all(
                isinstance(k, str) and k and (isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v)))
                for k, v in value.items()):
            raise bad_request_data(f"languageMap of {name!r} must map language tags to strings",
                                   f"{name!r} 的 languageMap 无效")
    elif kind == "JsonProperty":
        if not isinstance(value, dict) and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise bad_request_data(f"the json of {name!r} must be an object or a list of objects",
                                   f"{name!r} 的 json 必须是对象或对象数组")
    elif kind == "ListProperty":
        if not isinstance(value, list):
            raise bad_request_data(f"{kind} {name!r} needs a list", f"{kind} {name!r} 需要列表")
    elif kind == "ListRelationship":
        if not isinstance(value, list):
            raise bad_request_data(f"{kind} {name!r} needs a list", f"{kind} {name!r} 需要列表")
        entries = [v.get("object") if isinstance(v, dict) else v for v in value]
        if not all(is_uri(v) for v in entries):
            raise bad_request_data(f"objectList of {name!r} must hold URIs", f"{name!r} 的 objectList 必须是 URI")
        value = [{"object": v} for v in entries]
    elif kind == "VocabProperty":
        if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise bad_request_data(f"the vocab of {name!r} must be a string or strings",
                                   f"{name!r} 的 vocab 必须是字符串")
    return value


def normalize_entity(body: Any, terms: TermMap, now: datetime, *, entity_id: str | None = None,
                     require_type: bool = True, nulls: str = "") -> Entity:
    """An entity from a request body in stored form; BadRequestData when malformed. `nulls` as for
    `normalize_attribute` (a merge may also delete the scope with the NGSI-LD Null)."""
    if not isinstance(body, dict):
        raise bad_request_data("an entity must be a JSON object", "实体必须是 JSON 对象")
    raw_id = body.get("id", body.get("@id", entity_id))
    if raw_id is None:
        raise bad_request_data("entity id is missing", "缺少实体 id")
    eid = check_entity_id(raw_id)
    if entity_id is not None and eid != entity_id:
        raise bad_request_data("the id in the body differs from the id in the URL", "请求体中的 id 与 URL 中的不一致")
    raw_type = body.get("type", body.get("@type"))
    types: list[str] = []
    if raw_type is None:
        if require_type:
            raise bad_request_data("entity type is missing", "缺少实体类型")
    else:
        for t in raw_type if isinstance(raw_type, list) else [raw_type]:
            if not isinstance(t, str) or not t:
                raise bad_request_data("entity type must be a string", "实体类型必须是字符串")
            check_name(t)
            if t in ENTITY_MEMBERS or t in RESERVED_NAMES:
                raise bad_request_data(f"{t!r} is a core NGSI-LD term, not an entity type",
                                       f"{t!r} 是 NGSI-LD 核心术语，不能用作实体类型")
            types.append(terms.expand(t))
    scope = body.get("scope")
    if scope is not None and not (nulls and scope == NULL):
        check_scope(scope)
    entity = Entity(eid, types, scope=scope, expires_at=entity_expiry(body, nulls=bool(nulls)))
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            continue
        check_attribute_name(name)
        iri = terms.expand(name)
        entity.attrs[iri] = attr = normalize_attribute(raw, terms, now, name=name, nulls=nulls) \
            if type(raw) is not list else normalize_attribute_value(raw, terms, now, name=name, nulls=nulls)
        if iri == LOCATION and not (nulls and any(is_null(i) for i in instances(attr))):
            _check_location(attr)
    return entity


def entity_expiry(body: dict[str, Any], *, nulls: bool = True) -> datetime | None:
    """The expiresAt member of an entity (4.22: it is transient until then); None when absent (or, where
    `nulls` allows it, the NGSI-LD Null, which makes the entity durable again in a merge)."""
    value = body.get("expiresAt")
    if value is None or (nulls and value == NULL):
        return None
    return parse_time(value, "expiresAt")


def _check_location(attr: Any) -> None:
    if any(i.get("type") != "GeoProperty" for i in instances(attr)):
        raise bad_request_data("location must be a GeoProperty", "location 必须是地理属性（GeoProperty）")


def normalize_fragment(body: Any, terms: TermMap, now: datetime, *, nulls: str = "") -> dict[str, Any]:
    """The attributes of an append/update request body (an entity fragment)."""
    if not isinstance(body, dict):
        raise bad_request_data("the body must be a JSON object of attributes", "请求体必须是属性的 JSON 对象")
    out: dict[str, Any] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS or name == "expiresAt":
            continue
        check_attribute_name(name)
        iri = terms.expand(name)
        out[iri] = attr = normalize_attribute_value(raw, terms, now, name=name, nulls=nulls)
        if iri == LOCATION and not (nulls and any(is_null(i) for i in instances(attr))):
            _check_location(attr)
    return out
