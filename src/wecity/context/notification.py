"""What one NGSI-LD notification says about an entity: its representation, the null-valued members of
what was deleted, and with `showChanges` the values before the change (5.8.6, 4.5.x)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wecity.context import linked
from wecity.context.entity import NULL, VALUE_MEMBER, now_text
from wecity.context.env import Stored
from wecity.context.ldcontext import TermMap
from wecity.context.projection import select_datasets
from wecity.context.render import View, render_entity


@dataclass
class Change:
    """One change of an entity: each attribute's kind (attributeCreated/Updated/Deleted), the attributes
    as they were before, and whether the whole entity went."""

    kinds: dict[str, str] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    now: datetime | None = None


def context_of(row: Any) -> Any:
    """The @context notifications of a subscription are compacted with: its jsonldContext if given,
    else the one it was created with."""
    return row.body.get("jsonldContext") or row.context


def datasets_of(sub: dict[str, Any]) -> frozenset[str] | None:
    """The datasetIds whose attribute instances a subscription's notifications show (4.5.5), if limited."""
    given = sub.get("datasetId")
    if not given:
        return None
    return frozenset(given if isinstance(given, list) else [given])


def form_of(note: dict[str, Any]) -> str:
    """The representation a subscription's notifications use (`simplified` is `keyValues`)."""
    form = note.get("format", "normalized")
    return "keyValues" if form == "simplified" else str(form)


def _previous_member(member: str) -> str:
    return "previous" + member[0].upper() + member[1:]


def _nulled(old: dict[str, Any], now: str, sys_attrs: bool) -> dict[str, Any]:
    """A deleted attribute as notifications show it: its type and the null URI as value (4.5.x)."""
    kind = old.get("type", "Property")
    member = VALUE_MEMBER.get(kind, "value")
    out: dict[str, Any] = {"type": kind, member: {"@none": NULL} if kind == "LanguageProperty" else NULL}
    if sys_attrs:
        for key in ("createdAt", "modifiedAt"):
            if key in old:
                out[key] = old[key]
        out["deletedAt"] = now
    return out


def _with_previous(attr: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    if not isinstance(old, dict) or not isinstance(attr, dict):
        return attr
    member = VALUE_MEMBER.get(old.get("type", "Property"), "value")
    if member not in old:
        return attr
    return {**attr, _previous_member(member): old[member]}


def content(sub: dict[str, Any], entity: Stored, change: Change, terms: TermMap) -> dict[str, Any]:
    """The entity as a notification of `sub` carries it."""
    note = sub.get("notification", {})
    form = form_of(note)
    sys_attrs = bool(note.get("sysAttrs"))
    show = bool(note.get("showChanges"))
    stamp = now_text(change.now) if change.now is not None else None
    attrs: dict[str, Any]
    if change.deleted:
        # A deleted entity is its id, type and deletedAt; its attributes (as null) only when asked for by
        # name, to show what they were, or when the subscription watches attribute deletions.
        attrs = {}
        shown: Any = ()
        if show or sub.get("_attrs"):
            shown = entity.attrs.items()
        elif "attributeDeleted" in (sub.get("notificationTrigger") or ()):
            watched = sub.get("_watched")
            shown = [(i, a) for i, a in entity.attrs.items() if not watched or i in watched]
        for iri, old in shown:
            if isinstance(old, dict):
                nulled = _nulled(old, stamp or "", sys_attrs)
                attrs[iri] = _with_previous(nulled, old) if show else nulled
    else:
        attrs = dict(entity.attrs)
        for iri, kind in change.kinds.items():
            old = change.previous.get(iri)
            # A multi-attribute that keeps other instances is shown as the service built it: those
            # instances and the deleted one with the NGSI-LD Null.
            if kind == "attributeDeleted" and isinstance(old, dict) and not isinstance(attrs.get(iri), list):
                nulled = _nulled(old, stamp or "", sys_attrs)
                attrs[iri] = _with_previous(nulled, old) if show else nulled
            elif kind == "attributeUpdated" and show and iri in attrs:
                attrs[iri] = _with_previous(attrs[iri], old)
    keep = sub.get("_attrs") or None
    datasets = datasets_of(sub)
    if datasets is not None:
        attrs = select_datasets(attrs, datasets)
    view = View(terms=terms, form=form, sys_attrs=sys_attrs, attrs=frozenset(keep) if keep else None,
                lang=sub.get("lang"))
    data = render_entity(entity.id, entity.types, attrs, view, created_at=now_text(entity.created_at),
                         modified_at=now_text(entity.modified_at), scope=entity.scope)
    if sys_attrs and form == "keyValues":
        data["createdAt"] = now_text(entity.created_at)
        data["modifiedAt"] = now_text(entity.modified_at)
    if change.deleted:
        data["deletedAt"] = stamp
    return data


def shape(sub: dict[str, Any], terms: TermMap) -> linked.Shape | None:
    """The projection (pick / omit) and join a subscription asks of its notifications, if any."""
    note = sub.get("notification", {})
    return linked.shape_of(terms, pick=note.get("pick"), omit=note.get("omit"), join=note.get("join"),
                           join_level=note.get("joinLevel"), has_attrs="attributes" in note)


def entities(sub: dict[str, Any], roots: list[tuple[Stored, Change]], terms: TermMap,
             load: linked.Loader) -> list[dict[str, Any]]:
    """The `data` of a notification: each entity as `content` renders it, projected with pick / omit and
    with the entities it links to when the subscription asks for a join (4.5.23); `load` reads those."""
    found = shape(sub, terms)
    if found is None:
        return [content(sub, s, c, terms) for s, c in roots]
    changes = {s.id: c for s, c in roots}
    note = sub.get("notification", {})
    view = View(terms=terms, form=form_of(note), sys_attrs=bool(note.get("sysAttrs")), lang=sub.get("lang"))
    datasets = datasets_of(sub)

    def render_linked(s: Stored) -> dict[str, Any]:
        attrs = s.attrs if datasets is None else select_datasets(s.attrs, datasets)
        return render_entity(s.id, s.types, attrs, view, created_at=now_text(s.created_at),
                             modified_at=now_text(s.modified_at), scope=s.scope)

    assembler = linked.Assembler(terms, lambda s: content(sub, s, changes.get(s.id, Change()), terms), load,
                                 found.join, found.pick, found.omit, render_linked=render_linked)
    return assembler.entities([s for s, _ in roots])
