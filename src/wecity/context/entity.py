"""Entities in and out: client JSON (normalized or concise) to the stored form, and back in the
representation asked for (normalized, concise or keyValues), compacted with the client's @context.

Stored form: attribute names and entity types are expanded IRIs; each attribute is a dict with its
`type` (Property, Relationship, GeoProperty, ...), its value member, metadata (`observedAt`, `unitCode`,
`datasetId`, `createdAt`, `modifiedAt`) and sub-attributes keyed by expanded IRIs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from wecity.context.geo import GEOMETRY_TYPES, bbox_of, to_shape
from wecity.context.ldcontext import NGSI_LD, TermMap
from wecity.core.errors import ValidationFailed

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
_FORBIDDEN = re.compile(r"[<>\"'=;()\s]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
NULL = "urn:ngsi-ld:null"
_MEMBERS = set(VALUE_MEMBER.values()) | set(METADATA)


def bad(why: str, zh: str) -> ValidationFailed:
    return ValidationFailed(why, message_zh=zh, code="ngsild.bad_request_data")


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
    if not isinstance(value, str) or not _URI.match(value):
        return False
    return value.isascii() or all(unicodedata.category(c)[0] not in "CZ" for c in value)


def check_entity_id(value: Any) -> str:
    if not is_uri(value):
        raise bad(f"entity id must be a URI, got {value!r}", f"实体 id 必须是 URI：{value!r}")
    return str(value)


def check_name(name: str) -> None:
    if not name or _FORBIDDEN.search(name):
        raise bad(f"invalid attribute name {name!r}", f"属性名无效：{name!r}")


def parse_time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise bad(f"{what} must be a date-time string", f"{what} 必须是日期时间字符串")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise bad(f"{what} is not an ISO 8601 date-time: {value!r}", f"{what} 不是 ISO 8601 日期时间：{value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Entity:
    """An entity from a request, in stored form."""

    id: str
    types: list[str]
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    scope: Any = None

    @property
    def type(self) -> str:
        return self.types[0]


def _is_geometry(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in GEOMETRY_TYPES and "coordinates" in value


def _valid_point(value: dict[str, Any]) -> bool:
    """A well-formed Point, checked without building a geometry (most city entities are points)."""
    if value.get("type") != "Point":
        return False
    c = value.get("coordinates")
    if not isinstance(c, list) or len(c) not in (2, 3) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in c):
        raise bad("a Point needs [longitude, latitude]", "Point 需要 [经度, 纬度]")
    if not (-180 <= c[0] <= 180 and -90 <= c[1] <= 90):
        raise bad("coordinates out of range (longitude, latitude)", "坐标超出范围（经度，纬度）")
    return True


def normalize_attribute(raw: Any, terms: TermMap, now: datetime, *, partial: bool = False,
                        name: str = "") -> dict[str, Any]:
    """One attribute (normalized or concise JSON) in stored form; BadRequestData when malformed.

    With `partial`, a fragment for a partial attribute update: the type may be left out.
    """
    if raw is None:
        raise bad(f"attribute {name!r} is null", f"属性 {name!r} 为空值")
    if isinstance(raw, list):
        if raw and all(isinstance(r, dict) and (r.get("type") in ATTRIBUTE_TYPES or "datasetId" in r) for r in raw):
            raise ValidationFailed(
                f"attribute {name!r}: several instances (datasetId) are not supported",
                message_zh=f"属性 {name!r}：不支持多实例（datasetId）", code="ngsild.operation_not_supported")
        raw = {"type": "Property", "value": raw}
    elif not isinstance(raw, dict):
        raw = {"type": "Property", "value": raw}
    elif _is_geometry(raw):
        raw = {"type": "GeoProperty", "value": raw}
    kind = raw.get("type")
    if isinstance(kind, str) and kind.startswith(NGSI_LD):
        kind = kind[len(NGSI_LD):]
    if kind is None:
        member = next((m for m in _TYPE_BY_MEMBER if m in raw), None)
        if member is None and not partial:
            if any(k in raw for k in METADATA) or not raw:
                raise bad(f"attribute {name!r} has no value", f"属性 {name!r} 没有值")
            raw = {"type": "Property", "value": raw}
            kind = "Property"
        elif member is not None:
            kind = _TYPE_BY_MEMBER[member]
            if kind == "Property" and _is_geometry(raw.get("value")):
                kind = "GeoProperty"
    elif kind not in ATTRIBUTE_TYPES:
        raise bad(f"attribute {name!r} has unknown type {kind!r}", f"属性 {name!r} 的类型 {kind!r} 未知")
    out: dict[str, Any] = {}
    if kind is not None:
        out["type"] = kind
        member = VALUE_MEMBER[kind]
        if member not in raw:
            if not partial:
                raise bad(f"{kind} {name!r} needs '{member}'", f"{kind} {name!r} 缺少 '{member}'")
        else:
            out[member] = _check_value(kind, raw[member], name)
    for key, value in raw.items():
        if key in ("type", "value", "object", "languageMap", "json", "vocab", "valueList", "objectList"):
            if kind is None and key != "type":
                out[key] = value
            continue
        if key in SYSTEM:
            continue
        if key == "observedAt":
            parse_time(value, f"{name}.observedAt")
            out[key] = value
        elif key == "unitCode":
            if not isinstance(value, str):
                raise bad("unitCode must be a string", "unitCode 必须是字符串")
            out[key] = value
        elif key == "datasetId":
            if not is_uri(value):
                raise bad("datasetId must be a URI", "datasetId 必须是 URI")
            out[key] = value
        elif key == "lang":
            out[key] = value
        elif key == "expiresAt":
            parse_time(value, f"{name}.expiresAt")
            out[key] = value
        elif key == "@context":
            raise bad("@context is not allowed inside an attribute", "属性内不允许 @context")
        else:
            check_name(key)
            out[terms.expand(key)] = normalize_attribute(value, terms, now, name=f"{name}.{key}")
    stamp = now_text(now)
    out["createdAt"] = stamp
    out["modifiedAt"] = stamp
    return out


def _check_value(kind: str, value: Any, name: str) -> Any:
    if value is None:
        raise bad(f"attribute {name!r} has a null value", f"属性 {name!r} 的值为空")
    if kind == "Relationship":
        items = value if isinstance(value, list) else [value]
        if not items or not all(is_uri(v) for v in items):
            raise bad(f"relationship {name!r} must point to a URI", f"关系 {name!r} 必须指向 URI")
    elif kind == "GeoProperty":
        if not _is_geometry(value) and not (isinstance(value, dict) and value.get("type") == "GeometryCollection"):
            raise bad(f"GeoProperty {name!r} must be a GeoJSON geometry", f"地理属性 {name!r} 必须是 GeoJSON 几何对象")
        if not _valid_point(value):
            to_shape(value)
    elif kind == "LanguageProperty":
        if not isinstance(value, dict) or not all(isinstance(v, str | list) for v in value.values()):
            raise bad(f"languageMap of {name!r} must map languages to strings", f"{name!r} 的 languageMap 无效")
    elif kind in ("ListProperty", "ListRelationship") and not isinstance(value, list):
        raise bad(f"{kind} {name!r} needs a list", f"{kind} {name!r} 需要列表")
    return value


def normalize_entity(body: Any, terms: TermMap, now: datetime, *, entity_id: str | None = None,
                     require_type: bool = True) -> Entity:
    """An entity from a request body in stored form; BadRequestData when malformed."""
    if not isinstance(body, dict):
        raise bad("an entity must be a JSON object", "实体必须是 JSON 对象")
    raw_id = body.get("id", body.get("@id", entity_id))
    if raw_id is None:
        raise bad("entity id is missing", "缺少实体 id")
    eid = check_entity_id(raw_id)
    if entity_id is not None and eid != entity_id:
        raise bad("the id in the body differs from the id in the URL", "请求体中的 id 与 URL 中的不一致")
    raw_type = body.get("type", body.get("@type"))
    types: list[str] = []
    if raw_type is None:
        if require_type:
            raise bad("entity type is missing", "缺少实体类型")
    else:
        for t in raw_type if isinstance(raw_type, list) else [raw_type]:
            if not isinstance(t, str) or not t:
                raise bad("entity type must be a string", "实体类型必须是字符串")
            check_name(t)
            types.append(terms.expand(t))
    entity = Entity(eid, types, scope=body.get("scope"))
    for name, raw in body.items():
        if name in ENTITY_MEMBERS:
            continue
        check_name(name)
        entity.attrs[terms.expand(name)] = normalize_attribute(raw, terms, now, name=name)
    return entity


def normalize_fragment(body: Any, terms: TermMap, now: datetime) -> dict[str, dict[str, Any]]:
    """The attributes of an append/update request body (an entity fragment)."""
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object of attributes", "请求体必须是属性的 JSON 对象")
    out: dict[str, dict[str, Any]] = {}
    for name, raw in body.items():
        if name in ENTITY_MEMBERS:
            continue
        check_name(name)
        out[terms.expand(name)] = normalize_attribute(raw, terms, now, name=name)
    return out


def location_bbox(attrs: dict[str, Any]) -> tuple[float | None, float | None, float | None, float | None]:
    loc = attrs.get(LOCATION)
    if isinstance(loc, dict) and loc.get("type") == "GeoProperty":
        box = bbox_of(loc.get("value"))
        if box is not None:
            return box
    return None, None, None, None


def merge_attribute(old: dict[str, Any], new: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An update of an existing attribute: keeps its createdAt, takes the rest from `new`."""
    merged = dict(new)
    merged["createdAt"] = old.get("createdAt", merged.get("createdAt"))
    merged["modifiedAt"] = now_text(now)
    return merged


def patch_attribute(old: dict[str, Any], fragment: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A partial attribute update: only the members given change."""
    merged = dict(old)
    for key, value in fragment.items():
        if key in ("createdAt", "modifiedAt"):
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in _MEMBERS:
            merged[key] = merge_attribute(merged[key], value, now)
        else:
            merged[key] = value
    if "type" in fragment and fragment["type"] != old.get("type"):
        raise bad("a partial update cannot change the attribute's type", "部分更新不能改变属性的类型")
    kind = merged.get("type", "Property")
    member = VALUE_MEMBER.get(kind, "value")
    if member in fragment:
        merged[member] = _check_value(kind, fragment[member], "")
    merged["modifiedAt"] = now_text(now)
    return merged


# -- rendering ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class View:
    """How to render: representation, system attributes, and which attributes (expanded) to keep."""

    terms: TermMap
    form: str = "normalized"  # normalized | keyValues | concise
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    lang: str | None = None


@lru_cache(maxsize=256)
def _language_ranges(text: str) -> tuple[str, ...]:
    """The language ranges of a `lang` filter, best first: by q-value (default 1), then as listed."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(text.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    return tuple(tag for _, _, tag in sorted(ranked))


def choose_language(languages: dict[str, Any], wanted: str) -> str | None:
    """The key of a languageMap that best serves a `lang` filter (4.15, with RFC 4647 lookup: tags
    compare case-insensitively, a range matches longer tags and is truncated to shorter ones); any
    language (the default one first) when none matches."""
    if not languages:
        return None
    lowered = {key.lower(): key for key in languages}
    for wanted_range in _language_ranges(wanted):
        if wanted_range == "*":
            break
        if wanted_range in lowered:
            return lowered[wanted_range]
        longer = next((key for low, key in lowered.items() if low.startswith(wanted_range + "-")), None)
        if longer is not None:
            return longer
        parts = wanted_range.split("-")
        while len(parts) > 1:
            parts.pop()
            if "-".join(parts) in lowered:
                return lowered["-".join(parts)]
    return "@none" if "@none" in languages else next(iter(languages))


_BARE = frozenset({"Property", "GeoProperty", "Relationship", "ListProperty"})


def _simplified(kind: str, value: Any, view: View) -> Any:
    """An attribute's value in the simplified representation (4.5.4): bare for values, objects and
    lists; wrapped in its member name where a bare value would be ambiguous (languageMap, json, vocab)."""
    if kind == "LanguageProperty":
        if view.lang and isinstance(value, dict):
            chosen = choose_language(value, view.lang)
            return value.get(chosen) if chosen is not None else None
        return {"languageMap": value}
    if kind in ("JsonProperty", "VocabProperty"):
        return {VALUE_MEMBER[kind]: value}
    if kind == "ListRelationship" and isinstance(value, list):
        return [v.get("object") if isinstance(v, dict) else v for v in value]
    return value


def render_attribute(attr: dict[str, Any], view: View) -> Any:
    kind = attr.get("type", "Property")
    member = VALUE_MEMBER.get(kind, "value")
    if view.form == "keyValues":
        if kind in _BARE:  # most attributes: checked here, without a call, as this runs per attribute
            return attr.get(member)
        return _simplified(kind, attr.get(member), view)
    out: dict[str, Any] = {}
    for key, value in attr.items():
        if key in ("createdAt", "modifiedAt", "expiresAt"):
            if view.sys_attrs:
                out[key] = value
        elif key.startswith(("http://", "https://", "urn:")) or ":" in key:
            out[view.terms.compact(key)] = render_attribute(value, view) if isinstance(value, dict) else value
        else:
            out[key] = value
    if kind == "ListRelationship" and isinstance(out.get("objectList"), list):
        # Either entry form is accepted on input; the normalized output has one (4.5.22.3).
        out["objectList"] = [{"object": o} if isinstance(o, str) else o for o in out["objectList"]]
    if kind == "LanguageProperty" and view.lang and isinstance(out.get("languageMap"), dict):
        lm = out.pop("languageMap")
        chosen = choose_language(lm, view.lang)
        out["type"] = "Property"
        out["value"] = lm.get(chosen) if chosen is not None else None
        out["lang"] = chosen
    if view.form == "concise":
        out.pop("type", None)
        if set(out) == {"value"} and not isinstance(out["value"], dict | list):
            return out["value"]
        if kind == "GeoProperty" and set(out) == {"value"}:
            return out["value"]
    return out


def render_entity(entity_id: str, types: list[str], attrs: dict[str, Any], view: View, *,
                  created_at: str | None = None, modified_at: str | None = None, scope: Any = None) -> dict[str, Any]:
    compacted = [view.terms.compact(t) for t in types]
    out: dict[str, Any] = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    if scope is not None:
        out["scope"] = scope
    if view.sys_attrs and view.form != "keyValues":
        out["createdAt"] = created_at
        out["modifiedAt"] = modified_at
    for iri, attr in attrs.items():
        if view.attrs is not None and iri not in view.attrs:
            continue
        if iri == EXPIRES_AT:  # a system attribute of a transient entity, shown with sysAttrs only (6.3.11)
            if view.sys_attrs and view.form != "keyValues":
                out["expiresAt"] = attr.get("value") if isinstance(attr, dict) else attr
            continue
        out[view.terms.compact(iri)] = render_attribute(attr, view)
    return out
