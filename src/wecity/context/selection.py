"""The entity type selection language (`type`, ETSI GS CIM 009 clause 4.17): `,` or `|` for either type,
`;` for all of them (binding tighter), parentheses for grouping, `*` for every type."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from wecity.context.boolexpr import BooleanParser
from wecity.context.errors import language_error
from wecity.context.ldcontext import TermMap

TypeTest = Callable[[list[str]], bool]
_NAME = re.compile(r"^[^\s;|,()\x00-\x1f\x7f]+$")


_invalid_selection = language_error("type selection", "实体类型选择")


@dataclass(frozen=True)
class TypeSelection:
    """Every type named (expanded; for the indexed pre-filter) and, when the selection has an `;`, the
    exact test on an entity's types; `types` is None for `*` (every type)."""

    types: list[str] | None
    test: TypeTest | None


class _Parser(BooleanParser):
    def __init__(self, text: str, terms: TermMap) -> None:
        super().__init__(text, _invalid_selection, self._type)
        self.terms = terms
        self.names: list[str] = []

    def _type(self, text: str) -> TypeTest:
        name = text.strip()
        if not _NAME.match(name):
            raise _invalid_selection(f"bad type name {name!r}", f"类型名 {name!r} 无效")
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
