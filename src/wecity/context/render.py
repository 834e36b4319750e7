"""Entities out: the stored form rendered in the representation asked for (normalized, concise or
keyValues/simplified), names compacted with the reader's @context, a languageMap narrowed by `lang`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from wecity.context.entity import EXPIRES_AT, VALUE_MEMBER
from wecity.context.ldcontext import TermMap

_TYPE_MEMBERS = frozenset({"entityTypeSealed", "objectType"})  # members holding a type, compacted on output


@dataclass(frozen=True)
class View:
    """How to render: representation, system attributes, and which attributes (expanded) to keep."""

    terms: TermMap
    form: str = "normalized"  # normalized | keyValues | concise
    sys_attrs: bool = False
    attrs: frozenset[str] | None = None
    lang: str | None = None
    datasets: frozenset[str] | None = None  # datasetIds whose instances to show ("@none": the default one)


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
        elif key in _TYPE_MEMBERS and isinstance(value, str):
            out[key] = view.terms.compact(value)
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
                  created_at: str | None = None, modified_at: str | None = None, scope: Any = None,
                  expires_at: str | None = None) -> dict[str, Any]:
    compacted = [view.terms.compact(t) for t in types]
    out: dict[str, Any] = {"id": entity_id, "type": compacted[0] if len(compacted) == 1 else compacted}
    if scope is not None:
        out["scope"] = scope
    if view.sys_attrs and view.form != "keyValues":
        out["createdAt"] = created_at
        out["modifiedAt"] = modified_at
        if expires_at is not None:  # a system member of a transient entity, shown with sysAttrs only (6.3.11)
            out["expiresAt"] = expires_at
    for iri, attr in attrs.items():
        if view.attrs is not None and iri not in view.attrs:
            continue
        if iri == EXPIRES_AT:  # kept among the attributes by older versions; shown as the member above
            if view.sys_attrs and view.form != "keyValues":
                out["expiresAt"] = attr.get("value") if isinstance(attr, dict) else attr
            continue
        out[view.terms.compact(iri)] = render_attribute(attr, view) if type(attr) is dict \
            else render_instances(attr, view)
    return out


def render_instances(items: list[dict[str, Any]], view: View) -> Any:
    """A multi-attribute: an array of instances, or in keyValues a map of datasetId ("@none" for the
    default instance) to value."""
    if view.form == "keyValues":
        return {"dataset": {i.get("datasetId", "@none"): render_attribute(i, view) for i in items}}
    return [render_attribute(i, view) for i in items]
