"""Writing stored attributes: their instances packed and unpacked, new instances written over old ones
by datasetId, merges and partial updates (the NGSI-LD Null deletes), the deleted instance shown in a
notification, and the `location` bounding box kept in the entity's row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wecity.context.entity import (
    ATTRIBUTE_MEMBERS,
    LOCATION,
    NULL,
    VALUE_MEMBER,
    check_value,
    instances,
    is_geometry,
    is_null,
    now_text,
)
from wecity.context.errors import bad_request_data
from wecity.context.geo import bbox_of


def pack(items: list[dict[str, Any]]) -> Any:
    """Instances back in stored form: None for none, the dict for one, else the list."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def default_instance(attr: Any) -> dict[str, Any] | None:
    """The instance without a datasetId, if there is one."""
    if isinstance(attr, dict):
        return None if "datasetId" in attr else attr
    return next((i for i in attr if "datasetId" not in i), None) if isinstance(attr, list) else None


def primary_instance(attr: Any) -> dict[str, Any] | None:
    """The instance that stands for the attribute where one is needed: the default, else the first."""
    if isinstance(attr, dict):
        return attr
    if isinstance(attr, list) and attr:
        return default_instance(attr) or attr[0]
    return None


def put_instances(old: Any, new: Any, now: datetime, *, overwrite: bool = True) -> tuple[Any, Any]:
    """`new` instances written over `old` by datasetId (instances not named are kept): the stored
    attribute after, and the instances written (None when nothing changed)."""
    if type(old) is dict and type(new) is dict and old.get("datasetId") == new.get("datasetId"):
        if not overwrite:
            return old, None
        merged = merge_attribute(old, new, now)
        return merged, merged
    out = instances(old) if old is not None else []
    out = list(out)
    where = {i.get("datasetId"): n for n, i in enumerate(out)}
    written: list[dict[str, Any]] = []
    for inst in instances(new):
        n = where.get(inst.get("datasetId"))
        if n is None:
            where[inst.get("datasetId")] = len(out)
            out.append(inst)
            written.append(inst)
        elif overwrite:
            out[n] = merge_attribute(out[n], inst, now)
            written.append(out[n])
    return pack(out), pack(written)


def null_instance(inst: dict[str, Any]) -> dict[str, Any]:
    """How a deleted instance is shown in an attributeDeleted notification: its value the NGSI-LD Null."""
    kind = inst.get("type", "Property")
    out: dict[str, Any] = {"type": kind}
    out[VALUE_MEMBER.get(kind, "value")] = {"@none": NULL} if kind == "LanguageProperty" else NULL
    if "datasetId" in inst:
        out["datasetId"] = inst["datasetId"]
    return out


def location_bbox(attrs: dict[str, Any]) -> tuple[float | None, float | None, float | None, float | None]:
    loc = attrs.get(LOCATION)
    if type(loc) is list:
        loc = primary_instance(loc)
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


def merge_patch(old: Any, patch: Any) -> Any:
    """RFC 7396 with the NGSI-LD Null: objects merge key by key, a Null removes its key."""
    if not isinstance(patch, dict) or not isinstance(old, dict):
        return patch
    out = dict(old)
    for key, value in patch.items():
        if value == NULL or value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def patch_attribute(old: dict[str, Any], fragment: dict[str, Any], now: datetime, *,
                    merge: bool = False) -> dict[str, Any]:
    """A partial attribute update: only the members given change. With `merge` (merge entity), a
    compound value is merge-patched and a sub-attribute whose value is the NGSI-LD Null is removed."""
    merged = dict(old)
    for key, value in fragment.items():
        if key in ("createdAt", "modifiedAt"):
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key not in ATTRIBUTE_MEMBERS:
            if merge and is_null(value):
                merged.pop(key, None)
            elif merge:
                merged[key] = patch_attribute(merged[key], value, now, merge=True)
            else:
                merged[key] = merge_attribute(merged[key], value, now)
        elif merge and key == "value" and isinstance(value, dict) and not is_geometry(value):
            merged[key] = merge_patch(merged.get(key), value)
        else:
            merged[key] = value
    if "type" in fragment and fragment["type"] != old.get("type"):
        raise bad_request_data("a partial update cannot change the attribute's type", "部分更新不能改变属性的类型")
    kind = merged.get("type", "Property")
    member = VALUE_MEMBER.get(kind, "value")
    if member in fragment and not merge:
        merged[member] = check_value(kind, fragment[member], "")
    merged["modifiedAt"] = now_text(now)
    return merged

