"""The NGSI-LD Scope Query Language (`scopeQ`, ETSI GS CIM 009 clause 4.19), parsed once into a predicate.

Scopes are `/`-separated hierarchies. A query is a disjunction (`|` or `,`) of conjunctions (`;`, binding
tighter), with parentheses for grouping. A scope term matches an entity holding that exact scope; `+`
stands for exactly one level and a trailing `#` for that level and every level below it (so `/#` matches
any entity that has a scope at all).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from wecity.context.boolexpr import BooleanParser
from wecity.context.errors import language_error

ScopePredicate = Callable[[Any], bool]
_LEVEL = re.compile(r"^[^/;|,()#+\s]+$")


_invalid_scope_q = language_error("scopeQ", "scopeQ ")


def scopes_of(value: Any) -> list[str]:
    """An entity's scopes as a list (the stored `scope` is a string, a list of strings or absent)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _term(text: str) -> Callable[[list[str]], bool]:
    if not text.startswith("/"):
        raise _invalid_scope_q(f"scope {text!r} must start with '/'", f"范围 {text!r} 必须以 '/' 开头")
    levels = text[1:].split("/")
    if levels == ["#"]:
        return bool
    for i, level in enumerate(levels):
        if level in ("+",) or (level == "#" and i == len(levels) - 1):
            continue
        if not _LEVEL.match(level):
            raise _invalid_scope_q(f"bad scope level {level!r} in {text!r}", f"范围 {text!r} 中的层级 {level!r} 无效")
    if "+" not in levels and levels[-1] != "#":
        return lambda scopes: text in scopes
    pattern = re.compile("^" + "".join(
        "(?:/[^/]+)*" if level == "#" else "/[^/]+" if level == "+" else "/" + re.escape(level)
        for level in levels) + "$")
    return lambda scopes: any(pattern.match(s) for s in scopes)


class _Parser(BooleanParser):
    def __init__(self, text: str) -> None:
        super().__init__(text, _invalid_scope_q, _term)


@lru_cache(maxsize=4096)
def compile_scope_q(text: str) -> ScopePredicate:
    """A predicate over an entity's stored `scope` (string, list or None), memoised per query text."""
    if not text.strip():
        raise _invalid_scope_q("empty query", "查询为空")
    pred = _Parser(text.strip()).parse()

    def matcher(scope: Any) -> bool:
        return pred(scopes_of(scope))

    return matcher
