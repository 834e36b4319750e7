"""The NGSI-LD query language (`q`): parsed once into a predicate over an entity's stored attributes.

Grammar handled (ETSI GS CIM 009, 4.9): terms joined by `;` (and) and `|` (or; `;` binds tighter),
parentheses, `!attr` (does not exist), `attr` (exists), comparisons `== != > >= < <=`, patterns `~=` and
`!~=`, values as numbers, quoted strings, booleans, unquoted date-times or URIs, ranges `a..b` and lists
`a,b,c`; attribute paths with `.` for sub-attributes (and observedAt, unitCode, ...) and `[key]` for the
members of a compound value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from wecity.context.boolexpr import MAX_NESTING
from wecity.context.errors import language_error
from wecity.context.ldcontext import TermMap
from wecity.core.errors import ValidationFailed
from wecity.core.patterns import BadPattern, compile_pattern

log = logging.getLogger(__name__)

Predicate = Callable[[dict[str, Any]], bool]
_OPS = ("!~=", "==", "!=", ">=", "<=", "~=", ">", "<")
_META = {"observedAt", "createdAt", "modifiedAt", "unitCode", "datasetId", "lang", "deletedAt"}
_MISSING = object()


_invalid_q = language_error("q", "q 查询")


@dataclass(frozen=True)
class Path:
    attr: str  # expanded IRI
    subs: tuple[str, ...]  # expanded sub-attribute IRIs or metadata names
    keys: tuple[str, ...]  # members inside a compound value


class _Parser:
    def __init__(self, text: str, terms: TermMap, expand_values: frozenset[str] = frozenset()) -> None:
        self.text = text
        self.pos = 0
        self.terms = terms
        self.expand_values = expand_values
        self.depth = 0  # how deep linked-entity terms (`rel{attr}`) go
        self.nesting = 0  # how deep the parentheses around the current term go
        self.names: list[str] = []  # the attribute names the query's terms start with, as written

    def parse(self) -> Predicate:
        if not self.text.strip():
            raise _invalid_q("empty query", "查询为空")
        pred = self._or()
        if self.pos != len(self.text):
            raise _invalid_q(f"unexpected {self.text[self.pos:]!r}", f"无法解析 {self.text[self.pos:]!r}")
        return pred

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == "|":
            self.pos += 1
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: any(p(attrs) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._atom()]
        while self._peek() == ";":
            self.pos += 1
            parts.append(self._atom())
        if len(parts) == 1:
            return parts[0]
        return lambda attrs: all(p(attrs) for p in parts)

    def _atom(self) -> Predicate:
        if self._peek() == "(":
            self.nesting += 1
            if self.nesting > MAX_NESTING:
                raise _invalid_q(f"parentheses nest deeper than {MAX_NESTING} levels", f"括号嵌套超过 {MAX_NESTING} 层")
            self.pos += 1
            inner = self._or()
            if self._peek() != ")":
                raise _invalid_q("missing ')'", "缺少右括号")
            self.pos += 1
            self.nesting -= 1
            return inner
        return self._term()

    def _term(self) -> Predicate:
        negate_exists = False
        if self._peek() == "!" and not self.text.startswith(("!=", "!~="), self.pos):
            negate_exists = True
            self.pos += 1
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "=!<>~;|()":
            self.pos += 1
        raw_path = self.text[start:self.pos].strip()
        op = next((o for o in _OPS if self.text.startswith(o, self.pos)), None)
        if op is not None and negate_exists:
            raise _invalid_q("'!' only tests that an attribute does not exist", "'!' 只能用于判断属性不存在")
        raw = None
        if op is not None:
            self.pos += len(op)
            raw = self._value_text()
        self.names.append(raw_path.split("{")[0].split("[")[0].split(".")[0])
        return self._build(raw_path, op, raw, negate_exists, 0)

    def _build(self, raw_path: str, op: str | None, raw: str | None, negate_exists: bool, depth: int) -> Predicate:
        """A term's predicate; `rel{...}` terms are tested on the entities the Relationship targets."""
        if "{" in raw_path:
            rel_text, _, inner = raw_path.partition("{")
            if not inner.endswith("}"):
                raise _invalid_q(f"bad linked entity path {raw_path!r}", f"关联实体路径 {raw_path!r} 无效")
            inner = inner[:-1]
            head = inner.split("{")[0]
            type_hint = None
            if ":" in head and "://" not in head:
                hint, _, inner = inner.partition(":")
                type_hint = self.terms.expand(hint)
            rel = self._path(rel_text)
            if depth + 1 > MAX_NESTING:
                raise _invalid_q(f"linked-entity terms nest deeper than {MAX_NESTING} levels",
                                 f"关联实体查询嵌套超过 {MAX_NESTING} 层")
            self.depth = max(self.depth, depth + 1)
            return _linked(rel, type_hint, self._build(inner, op, raw, negate_exists, depth + 1))
        path = self._path(raw_path)
        if op is None or raw is None:
            if negate_exists:
                return lambda attrs: not _values(attrs, path)
            return lambda attrs: bool(_values(attrs, path))
        expand = (lambda v: self.terms.expand(v)) if raw_path.split(".")[0] in self.expand_values else None
        return _comparison(path, op, raw, self.terms, expand)

    def _value_text(self) -> str:
        out: list[str] = []
        in_quotes = False
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == '"':
                in_quotes = not in_quotes
            elif not in_quotes and ch in ";|)":
                break
            out.append(ch)
            self.pos += 1
        if in_quotes:
            raise _invalid_q("unterminated string", "字符串缺少结束引号")
        value = "".join(out)
        if not value:
            raise _invalid_q("missing value after operator", "运算符后缺少值")
        if value[0] in "=<>!~":
            raise _invalid_q(f"unexpected {value!r} after operator", f"运算符后出现无效内容 {value!r}")
        return value

    def _path(self, raw: str) -> Path:
        if not raw or any(c in raw for c in " \t\"'"):
            raise _invalid_q(f"bad attribute name {raw!r}", f"属性名 {raw!r} 无效")
        head, _, rest = raw.partition("[")
        keys: list[str] = []
        if rest:
            for chunk in ("[" + rest).split("]")[:-1]:
                if not chunk.startswith("["):
                    raise _invalid_q(f"bad path {raw!r}", f"路径 {raw!r} 无效")
                keys.extend(chunk[1:].split("."))
            if not ("[" + rest).endswith("]"):
                raise _invalid_q(f"bad path {raw!r}", f"路径 {raw!r} 无效")
        names = [head] if "://" in head else head.split(".")
        subs = tuple(n if n in _META else self.terms.expand(n) for n in names[1:])
        return Path(self.terms.expand(names[0]), subs, tuple(keys))


def _attr_value(attr: Any) -> Any:
    if not isinstance(attr, dict):
        return attr
    for key in ("value", "object", "languageMap", "json", "vocab", "valueList", "objectList"):
        if key in attr:
            found = attr[key]
            if key == "languageMap" and isinstance(found, dict):
                return list(found.values())
            return found
    return _MISSING


def _target(attrs: dict[str, Any], path: Path) -> Any:
    """The attribute or sub-attribute a path names (before metadata and value members), or _MISSING."""
    node: Any = attrs.get(path.attr, _MISSING)
    for sub in path.subs:
        if not isinstance(node, dict) or sub not in node or sub in _META:
            return node
        node = node[sub]
    return node


def _values(attrs: dict[str, Any], path: Path) -> list[Any]:
    """The values the path names (several when a value is a list); empty when it does not exist."""
    node: Any = attrs.get(path.attr, _MISSING)
    if node is _MISSING:
        return []
    if type(node) is list:  # a multi-attribute: the values of all its instances
        return [v for inst in node for v in _values({path.attr: inst}, path)]
    for sub in path.subs:
        if not isinstance(node, dict) or sub not in node:
            return []
        node = node[sub]
    if path.keys and isinstance(node, dict) and isinstance(node.get("languageMap"), dict):
        # [lang] picks the value in one language, [*] any language's (clause 4.9, LanguageProperty)
        lang_map = node["languageMap"]
        if len(path.keys) != 1:
            return []
        picked = list(lang_map.values()) if path.keys[0] == "*" else [lang_map.get(path.keys[0], _MISSING)]
        return [v for v in picked if v is not _MISSING and v is not None]
    value = _attr_value(node) if not path.subs or path.subs[-1] not in _META else node
    for key in path.keys:
        if isinstance(value, list):
            value = [v.get(key, _MISSING) for v in value if isinstance(v, dict)]
            value = [v for v in value if v is not _MISSING]
        elif isinstance(value, dict) and key in value:
            value = value[key]
        else:
            return []
    if value is _MISSING or value is None:
        return []
    return value if isinstance(value, list) else [value]


def _literal(token: str) -> Any:
    token = token.strip()
    if len(token) >= 2 and token[0] == '"' and token[-1] == '"':
        return token[1:-1]
    if token == "true":
        return True
    if token == "false":
        return False
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        return token


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, str) and len(value) >= 10 and value[:4].isdigit() and value[4] == "-":
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """The pair made comparable (numbers, times or strings), or None when they are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a, b
    if isinstance(a, str) and isinstance(b, str):
        ta, tb = _as_time(a), _as_time(b)
        if ta is not None and tb is not None and (ta.tzinfo is None) == (tb.tzinfo is None):
            return ta, tb
        return a, b
    return None


def _compare(target: Any, op: str, want: Any) -> bool:
    pair = _comparable(target, want)
    if pair is None:
        return False
    a, b = pair
    if op == "==":
        return bool(a == b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    if op == "<":
        return bool(a < b)
    return bool(a <= b)


_RELATIONSHIPS = ("Relationship", "ListRelationship")


def _kind(attrs: dict[str, Any], path: Path) -> Any:
    target = _target(attrs, path)
    return target.get("type") if isinstance(target, dict) and not path.keys else None


def _comparison(path: Path, op: str, raw: str, terms: TermMap, expand: Callable[[str], str] | None) -> Predicate:
    stripped = raw.strip()
    is_quoted = len(stripped) >= 2 and stripped[0] == '"' and stripped.find('"', 1) == len(stripped) - 1
    if op not in ("==", "!=") and not is_quoted and (".." in stripped or "," in stripped):
        raise _invalid_q(f"{op} takes a single value, not a range or list ({raw!r})", f"{op} 只能跟单个值，不能是范围或列表（{raw!r}）")
    base = _plain_comparison(path, op, raw, expand)
    if op not in ("==", "!="):
        # An ordering or pattern operator never matches a Relationship (clause 4.9).
        return lambda attrs: _kind(attrs, path) not in _RELATIONSHIPS and base(attrs)

    def vocab_aware(attrs: dict[str, Any]) -> bool:
        target = _target(attrs, path)
        if isinstance(target, dict) and target.get("type") == "VocabProperty" and not path.keys:
            # vocab values are IRIs: the stored term is compared in its expanded form
            vocab = target.get("vocab")
            expanded = [terms.expand(v) if isinstance(v, str) else v for v in (vocab if isinstance(vocab, list) else [vocab])]
            return base({path.attr: {"type": "Property", "value": expanded}})
        return base(attrs)

    return vocab_aware


def _plain_comparison(path: Path, op: str, raw: str, expand: Callable[[str], str] | None) -> Predicate:
    literal = _literal if expand is None else (lambda token: _expanded_literal(token, expand))
    if op in ("~=", "!~="):
        pattern_text = _literal(raw)
        try:  # RE2: linear in the value whatever the pattern (wecity.core.patterns)
            pattern = compile_pattern(str(pattern_text))
        except BadPattern as exc:
            raise _invalid_q(f"bad pattern {raw!r}: {exc}", f"正则表达式 {raw!r} 无效（{exc}）") from exc

        def matches(attrs: dict[str, Any]) -> bool:
            return any(isinstance(v, str) and pattern.search(v) for v in _values(attrs, path))

        return matches if op == "~=" else (lambda attrs: not matches(attrs))

    stripped = raw.strip()
    is_quoted = len(stripped) >= 2 and stripped[0] == '"' and stripped.find('"', 1) == len(stripped) - 1
    if not is_quoted and ".." in stripped and op in ("==", "!="):
        low_text, _, high_text = stripped.partition("..")
        low, high = literal(low_text), literal(high_text)

        def in_range(attrs: dict[str, Any]) -> bool:
            return any(_compare(v, ">=", low) and _compare(v, "<=", high) for v in _values(attrs, path))

        return in_range if op == "==" else (lambda attrs: bool(_values(attrs, path)) and not in_range(attrs))

    if not is_quoted and "," in stripped and op in ("==", "!="):
        choices = [literal(t) for t in _split_list(stripped)]

        def in_list(attrs: dict[str, Any]) -> bool:
            return any(_compare(v, "==", c) for v in _values(attrs, path) for c in choices)

        return in_list if op == "==" else (lambda attrs: bool(_values(attrs, path)) and not in_list(attrs))

    want = literal(stripped)
    if op == "!=":
        return lambda attrs: bool(vals := _values(attrs, path)) and not any(_compare(v, "==", want) for v in vals)
    return lambda attrs: any(_compare(v, op, want) for v in _values(attrs, path))


def _expanded_literal(token: str, expand: Callable[[str], str]) -> Any:
    value = _literal(token)
    return expand(value) if isinstance(value, str) else value


_RESOLVER: ContextVar[Callable[[list[str]], list[tuple[list[str], dict[str, Any]]]] | None] = \
    ContextVar("linked_entity_resolver", default=None)


@contextmanager
def linked_entities(resolve: Callable[[list[str]], list[tuple[list[str], dict[str, Any]]]]) -> Iterator[None]:
    """Within this block, linked-entity terms (`rel{attr}`) look their targets up with `resolve` (entity
    ids -> (types, attributes) of those that exist); without it such terms never match."""
    token = _RESOLVER.set(resolve)
    try:
        yield
    finally:
        _RESOLVER.reset(token)


def _linked(rel: Path, type_hint: str | None, inner: Predicate) -> Predicate:
    def matches(attrs: dict[str, Any]) -> bool:
        resolve = _RESOLVER.get()
        if resolve is None or _kind(attrs, rel) not in _RELATIONSHIPS:
            return False
        ids = [v for v in _values(attrs, rel) if isinstance(v, str)]
        return any((type_hint is None or type_hint in types) and inner(target)
                   for types, target in (resolve(ids) if ids else []))

    return matches


def _split_list(text: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    in_quotes = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        if ch == "," and not in_quotes:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def attribute_path(raw: str, terms: TermMap) -> Path:
    """An attribute path (`name`, `name.sub`, `name.observedAt`, `address[city]`) with its terms expanded."""
    return _Parser(raw, terms)._path(raw.strip())


def path_values(attrs: dict[str, Any], path: Path) -> list[Any]:
    """The values an attribute path names in stored attributes; empty when it does not exist."""
    return _values(attrs, path)


@dataclass(frozen=True)
class Compiled:
    predicate: Predicate
    depth: int  # how deep linked-entity terms go (0: none)
    names: tuple[str, ...]  # the attribute names the terms start with, as written


def compile_query(text: str, terms: TermMap, expand_values: frozenset[str] = frozenset()) -> Compiled:
    """`q` parsed, memoised per query text, term map and the attributes whose values are to be expanded
    (`expandValues`)."""
    return _compiled(text, terms, expand_values)


@lru_cache(maxsize=4096)
def _compiled(text: str, terms: TermMap, expand_values: frozenset[str]) -> Compiled:
    parser = _Parser(text, terms, expand_values)
    predicate = parser.parse()
    return Compiled(predicate, parser.depth, tuple(parser.names))


def compile_q(text: str, terms: TermMap, expand_values: frozenset[str] = frozenset()) -> Predicate:
    """A predicate over stored attributes for `q`."""
    return compile_query(text, terms, expand_values).predicate


@lru_cache(maxsize=1024)
def compile_stored_q(text: str, terms: TermMap) -> Predicate:
    """A `q` the platform keeps (a subscription's, a sensor rule's), checked when it was stored. One kept
    before a later version's limits (patterns on RE2, nesting depth) that no longer parses matches nothing,
    rather than failing every write matched against it."""
    try:
        return compile_q(text, terms)
    except ValidationFailed as exc:
        log.warning("a stored q no longer parses and matches nothing: %s (%s)", text[:200], exc.message)
        return lambda attrs: False
