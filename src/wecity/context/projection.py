"""The attribute projection language (`pick`, `omit`; ETSI GS CIM 009, 4.21) on rendered entities.

A projection is a list of entity members (`id`, `type`, attribute names ...) joined by `,` or `|`; a member
may carry `{...}`, a projection for the entity its relationship links to (linked entity retrieval, 4.5.23).
It is parsed once per request and applied to entities already rendered with the request's @context, so a
notification can project the entities it sends with the same function.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from wecity.context.boolexpr import MAX_NESTING
from wecity.context.errors import bad_request_data
from wecity.context.ldcontext import TermMap
from wecity.core.errors import ValidationFailed

# Members that are not attributes: compared by their literal name, never expanded with the @context.
CORE_MEMBERS = frozenset({"id", "type", "scope", "createdAt", "modifiedAt", "deletedAt", "@context"})
_NAME = re.compile(r"[^,|{}\s;()<>\"'=]+")


@dataclass(frozen=True)
class Projection:
    """Parsed `pick` or `omit`: member name as rendered (compacted) -> projection of the linked entity."""

    members: dict[str, Projection | None]

    def depth(self) -> int:
        """How many relationship hops the projection reaches into linked entities (0: none)."""
        return max((1 + sub.depth() for sub in self.members.values() if sub is not None), default=0)

    def nested(self, name: str) -> Projection | None:
        return self.members.get(name)


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text, self.pos, self.what = text, 0, what
        self.nesting = 0  # how deep the `{...}` around the current member go

    def fail(self, why: str, zh: str) -> ValidationFailed:
        return bad_request_data(f"invalid {self.what} {self.text!r}: {why}",
                                f"{self.what} 参数 {self.text!r} 无效：{zh}")

    def parse(self) -> list[tuple[str, Any]]:
        items = self.items()
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.text[self.pos]!r}", f"多余的 {self.text[self.pos]!r}")
        return items

    def items(self) -> list[tuple[str, Any]]:
        out = [self.item()]
        while self.pos < len(self.text) and self.text[self.pos] in ",|":
            self.pos += 1
            out.append(self.item())
        return out

    def item(self) -> tuple[str, Any]:
        found = _NAME.match(self.text, self.pos)
        if found is None:
            raise self.fail("a member name is missing", "缺少成员名")
        self.pos = found.end()
        nested = None
        if self.pos < len(self.text) and self.text[self.pos] == "{":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise self.fail(f"'{{' nests deeper than {MAX_NESTING} levels", f"'{{' 嵌套超过 {MAX_NESTING} 层")
            self.pos += 1
            nested = self.items()
            if self.pos >= len(self.text) or self.text[self.pos] != "}":
                raise self.fail("'{' is not closed", "'{' 没有闭合")
            self.pos += 1
            self.nesting -= 1
        return found.group(), nested


def parse(text: str | list[str] | None, terms: TermMap, what: str = "pick") -> Projection | None:
    """The projection in a `pick` or `omit` value (a string, or a list of strings from a Query body);
    BadRequestData when it does not follow the grammar."""
    if text is None:
        return None
    if isinstance(text, list):
        if not text or not all(isinstance(t, str) for t in text):
            raise bad_request_data(f"{what} must be a non-empty list of member names", f"{what} 必须是非空的成员名列表")
        text = ",".join(text)
    if not isinstance(text, str):
        raise bad_request_data(f"{what} must be a string", f"{what} 必须是字符串")
    return _build(_Parser(text, what).parse(), terms)


def _build(items: list[tuple[str, Any]], terms: TermMap) -> Projection:
    members: dict[str, Projection | None] = {}
    for name, nested in items:
        key = name if name in CORE_MEMBERS else terms.compact(terms.expand(name))
        sub = _build(nested, terms) if nested is not None else None
        if members.get(key) is not None and sub is not None:
            sub = Projection({**members[key].members, **sub.members})  # type: ignore[union-attr]
        members[key] = sub if sub is not None else members.get(key)
    return Projection(members)


def check(pick: Projection | None, omit: Projection | None, *, attrs: bool, join: str | None,
          join_level: int) -> None:
    """The rules between pick, omit, attrs and join (5.7.1.4, 5.7.2.4); BadRequestData when broken."""
    if (pick is not None or omit is not None) and attrs:
        raise bad_request_data("pick and omit cannot be combined with attrs", "pick、omit 不能与 attrs 同时使用")
    if pick is not None and omit is not None:
        both = {name for name in set(pick.members) & set(omit.members) if omit.members[name] is None}
        if both:
            raise bad_request_data(f"{', '.join(sorted(both))} is both picked and omitted",
                                   f"{'、'.join(sorted(both))} 同时出现在 pick 和 omit 中")
    for projection in (pick, omit):
        if projection is None:
            continue
        depth = projection.depth()
        if depth and join is None:
            raise bad_request_data("a projection of linked entities ({...}) needs the join parameter",
                                   "对关联实体的投影（{...}）需要 join 参数")
        if depth > join_level:
            raise bad_request_data(f"the projection reaches {depth} relationships deep, beyond joinLevel {join_level}",
                                   f"投影深度 {depth} 超过 joinLevel {join_level}")


def project(entity: dict[str, Any], pick: Projection | None, omit: Projection | None) -> dict[str, Any]:
    """The rendered entity reduced to the picked members, without the omitted ones (one level: the
    linked entities are projected where they are joined). `@context` is always kept."""
    if pick is None and omit is None:
        return entity
    out: dict[str, Any] = {}
    for key, value in entity.items():
        if key == "@context":
            out[key] = value
        elif (pick is None or key in pick.members) and (omit is None or key not in omit.members
                                                         or omit.members[key] is not None):
            out[key] = value
    return out


def is_empty(entity: dict[str, Any]) -> bool:
    """True when a projected entity has no member left to show."""
    return all(key == "@context" for key in entity)


def select_datasets(attrs: dict[str, Any], wanted: frozenset[str]) -> dict[str, Any]:
    """The stored attributes reduced to the instances whose datasetId is wanted (`@none`: the default
    instance); an attribute left with one instance is that instance, one left with none is dropped."""
    out: dict[str, Any] = {}
    for iri, attr in attrs.items():
        kept = [i for i in (attr if isinstance(attr, list) else [attr])
                if isinstance(i, dict) and i.get("datasetId", "@none") in wanted]
        if kept:
            out[iri] = kept[0] if len(kept) == 1 else kept
    return out
