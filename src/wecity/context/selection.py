"""The entity type selection language (`type`, ETSI GS CIM 009 clause 4.17): `,` or `|` for either type,
`;` for all of them (binding tighter), parentheses for grouping, `*` for every type."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from wecity.context.ldcontext import TermMap
from wecity.core.errors import ValidationFailed

TypeTest = Callable[[list[str]], bool]
_NAME = re.compile(r"^[^\s;|,()]+$")


def _bad(why: str, zh: str) -> ValidationFailed:
    return ValidationFailed(f"invalid type selection: {why}", message_zh=f"实体类型选择无效：{zh}",
                            code="ngsild.bad_request_data")


@dataclass(frozen=True)
class TypeSelection:
    """Every type named (expanded; for the indexed pre-filter) and, when the selection has an `;`, the
    exact test on an entity's types; `types` is None for `*` (every type)."""

    types: list[str] | None
    test: TypeTest | None


class _Parser:
    def __init__(self, text: str, terms: TermMap) -> None:
        self.text = text
        self.pos = 0
        self.terms = terms
        self.names: list[str] = []
        self.has_and = False

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def parse(self) -> TypeTest:
        test = self._or()
        if self.pos != len(self.text):
            rest = self.text[self.pos:]
            raise _bad(f"unexpected {rest!r}", f"无法解析 {rest!r}")
        return test

    def _or(self) -> TypeTest:
        parts = [self._and()]
        while self._peek() in (",", "|"):
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda types: any(p(types) for p in parts))

    def _and(self) -> TypeTest:
        parts = [self._atom()]
        while self._peek() == ";":
            self.has_and = True
            self.pos += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else (lambda types: all(p(types) for p in parts))

    def _atom(self) -> TypeTest:
        if self._peek() == "(":
            self.pos += 1
            inner = self._or()
            if self._peek() != ")":
                raise _bad("missing ')'", "缺少右括号")
            self.pos += 1
            return inner
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ",|;()":
            self.pos += 1
        name = self.text[start:self.pos].strip()
        if not _NAME.match(name):
            raise _bad(f"bad type name {name!r}", f"类型名 {name!r} 无效")
        iri = self.terms.expand(name)
        self.names.append(iri)
        return lambda types: iri in types


def parse_type_selection(text: str, terms: TermMap) -> TypeSelection:
    """The type selection of a `type` parameter (or an entity selector's `type`)."""
    text = text.strip()
    if text == "*":
        return TypeSelection(None, None)
    parser = _Parser(text, terms)
    test = parser.parse()
    return TypeSelection(list(dict.fromkeys(parser.names)), test if parser.has_and else None)
