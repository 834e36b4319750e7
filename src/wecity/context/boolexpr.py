"""The boolean skeleton the NGSI-LD selection grammars share (scopeQ, entity type selections): terms joined
by `;` (and, binding tighter) and `|` or `,` (or), grouped with parentheses. Each grammar says what a term
is; the parser turns the whole text into one predicate, once."""

from __future__ import annotations

from collections.abc import Callable

from wecity.core.errors import ValidationFailed

Predicate = Callable[[list[str]], bool]
_STOP = ";|,()"
# How deep parentheses may nest in the selection languages and q (and linked-entity terms in q). The
# parsers recurse once per level, and so do the predicates they build: without a bound, a few hundred
# parentheses end in a RecursionError (a 500) instead of a 400. No sensible query comes near it.
MAX_NESTING = 32


class BooleanParser:
    """`term(text)` turns one term of the grammar into a predicate; `bad(why, zh)` builds its own error."""

    def __init__(self, text: str, bad: Callable[[str, str], ValidationFailed],
                 term: Callable[[str], Predicate]) -> None:
        self.text = text
        self.pos = 0
        self.bad = bad
        self.term = term
        self.has_and = False
        self.nesting = 0

    def parse(self) -> Predicate:
        predicate = self._or()
        if self.pos != len(self.text):
            rest = self.text[self.pos:]
            raise self.bad(f"unexpected {rest!r}", f"无法解析 {rest!r}")
        return predicate

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() in ("|", ","):
            self.pos += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else (lambda values: any(p(values) for p in parts))

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == ";":
            self.has_and = True
            self.pos += 1
            parts.append(self._atom())
        return parts[0] if len(parts) == 1 else (lambda values: all(p(values) for p in parts))

    def _atom(self) -> Predicate:
        if self._peek() == "(":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise self.bad(f"parentheses nest deeper than {MAX_NESTING} levels", f"括号嵌套超过 {MAX_NESTING} 层")
            self.pos += 1
            inner = self._or()
            if self._peek() != ")":
                raise self.bad("missing ')'", "缺少右括号")
            self.pos += 1
            self.nesting -= 1
            return inner
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _STOP:
            self.pos += 1
        return self.term(self.text[start:self.pos])
