"""JSON that callers send (request bodies, JSON in a query parameter or a string value, device payloads),
parsed with a bound on how deeply it nests.

Whatever reads a document afterwards (JSON-LD expansion, validation, writing it back out) recurses once
per level, so a body nested 10,000 deep ended in a RecursionError, a 500, somewhere after the parser.
MAX_DEPTH levels are far more than any entity, report or reading needs: a GeoJSON multipolygon inside an
NGSI-LD attribute inside a batch is eight.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

MAX_DEPTH = 64


class BadJson(ValueError):
    """Not JSON, or nested deeper than MAX_DEPTH; `too_deep` says which."""

    def __init__(self, message: str, *, too_deep: bool = False) -> None:
        super().__init__(message)
        self.too_deep = too_deep


def parse_json(raw: bytes | str, *, strict: bool = False) -> Any:
    """The value in `raw`: orjson, and the standard parser for what orjson refuses (integers beyond 64
    bits, NaN, UTF-16). BadJson when neither takes it or when it nests deeper than MAX_DEPTH.

    `strict`: only what JSON (RFC 8259) has and a database can keep, as orjson alone would take it: no NaN
    or Infinity, no number beyond a double, no lone UTF-16 surrogate in a string (PostgreSQL refuses the
    first two, and no response holding the third can be encoded)."""
    fallback = False
    try:
        value = orjson.loads(raw)  # stops by itself past 1024 levels, then the standard parser decides
    except orjson.JSONDecodeError:
        fallback = True
        try:
            value = json.loads(raw, **_STRICT) if strict else json.loads(raw)
        except RecursionError:  # the standard parser recurses per level: past ~1000 it gives up this way
            raise _too_deep() from None
        except ValueError as exc:
            raise BadJson(str(exc)) from exc
    if _may_be_too_deep(raw) and _deeper_than(value, MAX_DEPTH):
        raise _too_deep()
    if fallback and strict:
        try:
            json.dumps(value, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise BadJson("a string holds a lone UTF-16 surrogate") from exc
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is beyond the range of a number")
    return value


_STRICT: dict[str, Any] = {"parse_constant": _no_constant, "parse_float": _finite}


def _too_deep() -> BadJson:
    return BadJson(f"JSON nested deeper than {MAX_DEPTH} levels", too_deep=True)


def _may_be_too_deep(raw: bytes | str) -> bool:
    # A document with no more brackets than MAX_DEPTH cannot nest deeper: two scans in C settle it for
    # the small bodies of the write paths, which then skip the walk.
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{") > MAX_DEPTH
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than `limit` levels in `value`, level by level (no recursion
    of its own; one comprehension a level is about twice as fast as a stack of nodes)."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 1
    while level:
        level = [child for node in level for child in (node.values() if type(node) is dict else node)
                 if type(child) is dict or type(child) is list]
        if level and depth >= limit:
            return True
        depth += 1
    return False
