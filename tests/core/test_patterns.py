"""Callers' regular expressions run on RE2: linear in the text whatever the pattern."""

from __future__ import annotations

import time

import pytest

from wecity.core.patterns import BadPattern, compile_pattern


def test_a_catastrophic_pattern_answers_at_once() -> None:
    # Python's re backtracks through 2**27 ways of splitting the a's before failing (about 20 s).
    pattern = compile_pattern("^(a+)+$")
    started = time.perf_counter()
    assert pattern.search("a" * 27 + "!") is False
    assert pattern.search("a" * 100_000 + "!") is False
    assert pattern.search("a" * 28) is True
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("text", [r"(a)\1", "(?=a)b", "(?<!a)b", "(?<=a)b", "a{1001}", "(", "[z-a]"])
def test_patterns_re2_cannot_run_in_linear_time_or_at_all_are_refused(text: str) -> None:
    with pytest.raises(BadPattern):
        compile_pattern(text)


def test_search_and_fullmatch() -> None:
    pattern = compile_pattern("Manhole:[45]")
    assert pattern.search("urn:ngsi-ld:Manhole:4") and not pattern.search("urn:ngsi-ld:Manhole:6")
    assert not pattern.fullmatch("urn:ngsi-ld:Manhole:4") and pattern.fullmatch("Manhole:5")
    assert compile_pattern("^东门").search("东门井盖") and compile_pattern("^东门..$").fullmatch("东门井盖")
    assert compile_pattern("(?i)^MAN").search("manhole")
    assert compile_pattern("x").text == "x" and compile_pattern("x") is compile_pattern("x")


def test_text_that_is_not_valid_unicode_is_still_answered() -> None:
    # JSON may carry a lone surrogate; it must neither raise nor match what it is not.
    assert compile_pattern("^a").search("a\ud800") and not compile_pattern("^b").search("\ud800")
