"""Entity ordering (`orderBy`, `orderFrom`, `collation`; ETSI GS CIM 009 clause 4.23): parsed once, then a
stable sort of the matching entities before they are paged.

Keys are applied left to right: `id`, `type`, `createdAt`, `modifiedAt` or an attribute path (sub-attribute,
metadata such as `observedAt`, or a `[member]` of a compound value), each `asc` (default), `desc`, or for a
GeoProperty `dist-asc` / `dist-desc` from the `orderFrom` reference geometry. Values of different kinds rank
numbers, then strings, then booleans, then anything else; entities without the value come last. Strings
compare by code point unless a collation (a BCP 47 tag such as `de` or `und` for the root collation) is
given, which is honoured with ICU.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import cmp_to_key
from typing import Any, Protocol

from wecity.context.errors import bad_request_data
from wecity.context.geo import GEOMETRY_TYPES, GeoQuery, to_shape
from wecity.context.ldcontext import TermMap
from wecity.context.query import Path, attribute_path, path_values
from wecity.core.jsontext import parse_json

_ENTITY_KEYS = ("id", "type", "createdAt", "modifiedAt")
_DIRECTIONS = ("asc", "desc", "dist-asc", "dist-desc")
# BCP 47 language tags (RFC 5646) as far as their shape goes: subtags of letters and digits, 1 to 8 long.
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$")


class Orderable(Protocol):
    id: str
    types: list[str]
    attrs: dict[str, Any]
    created_at: Any
    modified_at: Any


@dataclass(frozen=True)
class OrderKey:
    member: str  # one of _ENTITY_KEYS, or "attr"
    path: Path | None
    descending: bool
    distance: bool


@dataclass
class Ordering:
    keys: list[OrderKey]
    collator: Any = None
    reference: GeoQuery | None = None

    def columns(self) -> list[tuple[str, bool]] | None:
        """(member, descending) per key when every key is an entity column (id, type, createdAt,
        modifiedAt) and strings compare by code point, so the database can order and page; else None."""
        if self.collator is not None or any(k.member == "attr" for k in self.keys):
            return None
        return [(k.member, k.descending) for k in self.keys]

    def sort(self, entities: list[Any]) -> list[Any]:
        """The entities in this order (ties keep their given order)."""
        keyed = [(self._values(e), e) for e in entities]
        keyed.sort(key=cmp_to_key(self._compare))
        return [e for _, e in keyed]

    def _values(self, entity: Orderable) -> list[tuple[int, Any] | None]:
        return [self._value(entity, key) for key in self.keys]

    def _value(self, entity: Orderable, key: OrderKey) -> tuple[int, Any] | None:
        if key.member == "id":
            return self._ranked(entity.id)
        if key.member == "type":
            return self._ranked(entity.types[0] if entity.types else None)
        if key.member in ("createdAt", "modifiedAt"):
            stamp = entity.created_at if key.member == "createdAt" else entity.modified_at
            return (0, stamp.timestamp()) if stamp is not None else None
        assert key.path is not None
        if key.distance:
            assert self.reference is not None
            attr = entity.attrs.get(key.path.attr)
            geometry = attr.get("value") if isinstance(attr, dict) else None
            found = self.reference.distance(geometry)
            return (0, found) if found is not None else None
        values = path_values(entity.attrs, key.path)
        return self._ranked(values[0]) if values else None

    def _ranked(self, value: Any) -> tuple[int, Any] | None:
        if value is None:
            return None
        if isinstance(value, bool):
            return 2, value
        if isinstance(value, int | float):
            return (0, value) if math.isfinite(value) else (0, math.inf if value > 0 else -math.inf)
        if isinstance(value, str):
            return 1, (self.collator.getSortKey(value) if self.collator is not None else value)
        return 3, json.dumps(value, sort_keys=True, ensure_ascii=False)

    def _compare(self, left: tuple[list[Any], Any], right: tuple[list[Any], Any]) -> int:
        for key, a, b in zip(self.keys, left[0], right[0], strict=True):
            if a == b:
                continue
            if a is None:
                return 1  # absent values come last whatever the direction
            if b is None:
                return -1
            result = -1 if a < b else 1 if a > b else 0
            if result:
                return -result if key.descending else result
        return 0


def _collator(tag: str) -> Any:
    if not _TAG.match(tag):
        raise bad_request_data(f"collation {tag!r} is not a BCP 47 language tag",
                               f"collation {tag!r} 不是 BCP 47 语言标签")
    import icu  # PyICU: the Unicode Collation Algorithm with the CLDR tailorings BCP 47 tags name

    try:
        return icu.Collator.createInstance(icu.Locale.forLanguageTag(tag))
    except icu.ICUError as exc:
        raise bad_request_data(f"collation {tag!r} is not supported", f"不支持的 collation：{tag!r}") from exc


def _reference(coordinates: Any, geometry: Any) -> GeoQuery:
    if isinstance(coordinates, str):
        try:
            coordinates = parse_json(coordinates)
        except ValueError as exc:
            raise bad_request_data("orderFrom is not a JSON array of coordinates",
                                   "orderFrom 不是坐标 JSON 数组") from exc
    if not isinstance(coordinates, list):
        raise bad_request_data("the coordinates to order by distance from must be a JSON array",
                               "按距离排序的参考坐标必须是 JSON 数组")
    if geometry is None:
        is_point = len(coordinates) in (2, 3) and all(isinstance(c, int | float) for c in coordinates)
        geometry = "Point" if is_point else None
    if geometry not in GEOMETRY_TYPES:
        raise bad_request_data("the geometry to order by distance from is missing or unknown",
                               "按距离排序的参考几何类型缺失或未知")
    return GeoQuery("near", to_shape({"type": geometry, "coordinates": coordinates}), "")


def parse_ordering(order_by: Any, terms: TermMap, *, collation: Any = None, coordinates: Any = None,
                   geometry: Any = None) -> Ordering | None:
    """The ordering a request asks for (`orderBy` as text or a list of items), or None without orderBy."""
    if geometry is not None and not isinstance(geometry, str):
        raise bad_request_data("geometry must be a string", "geometry 必须是字符串")
    if collation is not None and not isinstance(collation, str):
        raise bad_request_data("collation must be a string", "collation 必须是字符串")
    if order_by is None:
        if collation is not None:
            _collator(collation)  # a bad tag is refused even when nothing is ordered by it
        return None
    if isinstance(order_by, str):
        items = order_by.split(",")
    elif isinstance(order_by, list) and order_by and all(isinstance(i, str) for i in order_by):
        items = [part for item in order_by for part in item.split(",")]
    else:
        raise bad_request_data("orderBy must be a non-empty list of strings", "orderBy 必须是非空字符串列表")
    keys: list[OrderKey] = []
    for item in items:
        name, _, direction = item.strip().partition(";")
        direction = direction.strip() or "asc"
        if not name or direction not in _DIRECTIONS:
            raise bad_request_data(f"invalid orderBy item {item!r}", f"orderBy 项无效：{item!r}")
        is_distance = direction.startswith("dist-")
        if name in _ENTITY_KEYS:
            if is_distance:
                raise bad_request_data(f"{name} cannot be ordered by distance", f"{name} 不能按距离排序")
            keys.append(OrderKey(name, None, direction == "desc", False))
            continue
        path = attribute_path(name, terms)
        keys.append(OrderKey("attr", path, direction.endswith("desc"), is_distance))
    ordering = Ordering(keys)
    if collation is not None:
        ordering.collator = _collator(collation)
    if any(k.distance for k in keys):
        if coordinates is None:
            raise bad_request_data("ordering by distance needs the coordinates to measure from (orderFrom)",
                                   "按距离排序需要参考坐标（orderFrom）")
        ordering.reference = _reference(coordinates, geometry)
    return ordering
