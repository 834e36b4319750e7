"""Callers' JSON parsed with a bound on nesting: too deep is a BadJson, never a RecursionError."""

from __future__ import annotations

import math

import pytest

from wecity.core.jsontext import MAX_DEPTH, BadJson, parse_json


@pytest.mark.parametrize("raw", [b"[" * 10_000 + b"]" * 10_000, "[" * 10_000, b"[" * 900 + b"]" * 900,
                                 b'{"a": ' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
                                 b"[NaN, " + b"[" * 2000 + b"]" * 2000 + b"]"])
def test_too_deep_is_refused_whichever_parser_reads_it(raw: bytes | str) -> None:
    with pytest.raises(BadJson) as info:
        parse_json(raw)
    assert info.value.too_deep


def test_the_limit_itself_and_wide_documents_are_taken() -> None:
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    wide = b"[" + b",".join([b'{"a": [1, {"b": 2}]}'] * 5000) + b"]"
    assert len(parse_json(wide)) == 5000


def test_what_orjson_refuses_the_standard_parser_decides() -> None:
    assert math.isnan(parse_json(b"[NaN]")[0])
    assert parse_json('{"名": "长沙"}') == {"名": "长沙"}
    with pytest.raises(BadJson) as info:
        parse_json(b"{not json")
    assert not info.value.too_deep


@pytest.mark.parametrize("raw", [b"[NaN]", b'{"a": Infinity}', b"[-Infinity]", b"[1e400]", b'["\\ud800"]',
                                 b'{"\\udc00": 1}', '["\\ud800"]'.encode("utf-16")])
def test_strict_takes_only_what_json_has(raw: bytes) -> None:
    parse_json(raw)  # the standard parser takes them
    with pytest.raises(BadJson) as info:
        parse_json(raw, strict=True)
    assert not info.value.too_deep


def test_strict_still_takes_what_orjson_refuses_but_json_has() -> None:
    assert parse_json('{"名": "长沙", "e": "\\ud83d\\ude00"}'.encode("utf-16"), strict=True) == {"名": "长沙", "e": "😀"}
    assert parse_json("[1e308, -1e-400]".encode("utf-16"), strict=True) == [1e308, -0.0]
