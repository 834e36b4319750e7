"""Linked entity retrieval (ETSI GS CIM 009, 4.5.23): `join=inline|flat`, `joinLevel` and `containedBy`.

The entities that relationships point to are loaded level by level (one look-up per hop, not one per
relationship), then every entity is rendered and projected with the part of `pick`/`omit` that its hop
carries. Inline puts a linked entity inside its relationship (`entity`, or `entityList` for several
objects); flat lists it next to the entities asked for, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from wecity.context.env import Stored
from wecity.context.errors import bad_request_data
from wecity.context.ldcontext import TermMap
from wecity.context.projection import Projection, check, is_empty, parse, project

MAX_JOIN_LEVEL = 10  # hops; a deeper join would read a good part of a city's graph for one request
Loader = Callable[[list[str]], dict[str, Stored]]
Render = Callable[[Stored], dict[str, Any]]


@dataclass(frozen=True)
class Join:
    mode: str  # inline | flat
    level: int
    contained_by: frozenset[str] = frozenset()


def parse_join(join: Any, join_level: Any, contained_by: Any = None) -> Join | None:
    """The join asked for (None for no join); BadRequestData for an unknown mode or a bad level."""
    if join_level is not None and join_level != "":
        if isinstance(join_level, bool) or not isinstance(join_level, int | str):
            raise bad_request_data("joinLevel must be a positive integer", "joinLevel 必须是正整数")
        try:
            level = int(join_level)
        except ValueError as exc:
            raise bad_request_data("joinLevel must be a positive integer", "joinLevel 必须是正整数") from exc
        if level < 1 or level > MAX_JOIN_LEVEL:
            raise bad_request_data(f"joinLevel must be between 1 and {MAX_JOIN_LEVEL}",
                                   f"joinLevel 必须在 1 到 {MAX_JOIN_LEVEL} 之间")
    else:
        level = 1
    if join is None or join == "" or join == "@none":
        return None
    if join not in ("inline", "flat"):
        raise bad_request_data(f"join must be inline, flat or @none, got {join!r}",
                               f"join 只能是 inline、flat 或 @none：{join!r}")
    ids: list[str] = []
    if isinstance(contained_by, str):
        ids = [i.strip() for i in contained_by.split(",") if i.strip()]
    elif isinstance(contained_by, list):
        ids = [i for i in contained_by if isinstance(i, str)]
    return Join(join, level, frozenset(ids))


def _objects(attr: Any) -> tuple[list[str], bool]:
    """The ids a relationship attribute points to, and whether it is a list (several objects)."""
    instances = attr if isinstance(attr, list) else [attr]
    ids: list[str] = []
    many = len(instances) > 1
    for inst in instances:
        if not isinstance(inst, dict):
            continue
        kind = inst.get("type")
        if kind == "Relationship":
            found = inst.get("object")
        elif kind == "ListRelationship":
            found, many = inst.get("objectList"), True
        else:
            continue
        for item in found if isinstance(found, list) else [found]:
            if isinstance(item, dict):
                item = item.get("object")
            if isinstance(item, str):
                ids.append(item)
        many = many or isinstance(found, list)
    return ids, many


class Assembler:
    """Entities with the entities they link to, as one request asks for them."""

    def __init__(self, terms: TermMap, render: Render, load: Loader, join: Join | None,
                 pick: Projection | None, omit: Projection | None, *, render_linked: Render | None = None) -> None:
        self.terms, self.render, self.load, self.join = terms, render, load, join
        self.render_linked = render_linked or render  # `attrs` selects among the roots' attributes only
        self.pick, self.omit = pick, omit
        self.cache: dict[str, Stored | None] = {}

    def _links(self, stored: Stored, pick: Projection | None,
               omit: Projection | None) -> Iterator[tuple[str, list[str], bool, Projection | None, Projection | None]]:
        for iri, attr in stored.attrs.items():
            ids, many = _objects(attr)
            if not ids:
                continue
            key = self.terms.compact(iri)
            if pick is not None and key not in pick.members:
                continue
            if omit is not None and key in omit.members and omit.members[key] is None:
                continue
            yield (key, ids, many, pick.nested(key) if pick is not None else None,
                   omit.nested(key) if omit is not None else None)

    def _prefetch(self, roots: list[Stored]) -> None:
        assert self.join is not None
        frontier = [(s, self.pick, self.omit) for s in roots]
        for s in roots:
            self.cache[s.id] = s
        for _ in range(self.join.level):
            wanted: list[str] = []
            following: list[tuple[str, Projection | None, Projection | None]] = []
            for stored, pick, omit in frontier:
                for _key, ids, _many, sub_pick, sub_omit in self._links(stored, pick, omit):
                    for i in ids:
                        if i in self.join.contained_by:
                            continue
                        following.append((i, sub_pick, sub_omit))
                        if i not in self.cache:
                            wanted.append(i)
            if wanted:
                found = self.load(list(dict.fromkeys(wanted)))
                for i in wanted:
                    self.cache[i] = found.get(i)
            frontier = [(hop, p, o) for i, p, o in following if (hop := self.cache.get(i)) is not None]
            if not frontier:
                break

    def _build(self, stored: Stored, pick: Projection | None, omit: Projection | None, depth: int,
               path: frozenset[str], flat: dict[str, dict[str, Any]]) -> dict[str, Any]:
        out = project((self.render if depth == 0 else self.render_linked)(stored), pick, omit)
        assert self.join is not None
        if depth >= self.join.level:
            return out
        for key, ids, many, sub_pick, sub_omit in self._links(stored, pick, omit):
            if key not in out:
                continue  # not shown (attrs left it out), so not followed either
            children = []
            for i in ids:
                linked = self.cache.get(i)
                if linked is None or i in path or i in self.join.contained_by:
                    continue
                if self.join.mode == "flat":
                    if i in flat:
                        continue
                    flat[i] = {}  # taken now, so the listing keeps the order the links were met in
                    flat[i] = self._build(linked, sub_pick, sub_omit, depth + 1, path | {i}, flat)
                else:
                    children.append(self._build(linked, sub_pick, sub_omit, depth + 1, path | {i}, flat))
            if children:
                out[key] = _inline(out[key], children, many)
        return out

    def entities(self, roots: list[Stored]) -> list[dict[str, Any]]:
        """The roots rendered and projected (those left empty dropped), with their linked entities."""
        if self.join is None:
            rendered = (project(self.render(s), self.pick, self.omit) for s in roots)
            return [e for e in rendered if not is_empty(e)]
        self._prefetch(roots)
        flat: dict[str, dict[str, Any]] = {}
        out = []
        for s in roots:
            entity = self._build(s, self.pick, self.omit, 0, frozenset({s.id}), flat)
            if not is_empty(entity):
                out.append(entity)
        if flat:
            shown = {e.get("id") for e in out}
            out.extend(e for i, e in flat.items() if i not in shown and not is_empty(e))
        return out


def _inline(rendered: Any, children: list[dict[str, Any]], many: bool) -> Any:
    """A relationship as rendered, with its linked entities inside."""
    if isinstance(rendered, dict) and ("object" in rendered or "objectList" in rendered or "type" in rendered):
        extra = {"entityList": children} if many else {"entity": children[0]}
        return {**rendered, **extra}
    if isinstance(rendered, list) and rendered and all(isinstance(r, dict) for r in rendered):
        return rendered  # several instances of one relationship: left as they are
    return children if many else children[0]  # keyValues: the entity takes the place of its id


@dataclass(frozen=True)
class Shape:
    """How the entities of a retrieval are shaped beyond their representation: projection and join."""

    pick: Projection | None
    omit: Projection | None
    join: Join | None


def shape_of(terms: TermMap, *, pick: Any = None, omit: Any = None, join: Any = None, join_level: Any = None,
             contained_by: Any = None, has_attrs: bool = False) -> Shape | None:
    """The shape a request asks for, None for plain entities (the common case, kept cheap)."""
    if pick is None and omit is None and join is None and join_level is None:
        return None
    picked = parse(pick, terms, "pick")
    omitted = parse(omit, terms, "omit")
    joined = parse_join(join, join_level, contained_by)
    check(picked, omitted, attrs=has_attrs, join=joined.mode if joined else None,
          join_level=joined.level if joined else 0)
    if picked is None and omitted is None and joined is None:
        return None
    return Shape(picked, omitted, joined)
