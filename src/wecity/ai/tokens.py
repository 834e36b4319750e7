"""Words of any language, found by ICU's word breaker (the Unicode rules, with dictionaries for Chinese,
Japanese, Thai, Lao, Khmer and Burmese), so that no language needs a segmenter of its own."""

from __future__ import annotations

import threading

import icu

_local = threading.local()  # a BreakIterator holds the text it walks: one per thread


def _breaker() -> icu.BreakIterator:
    breaker = getattr(_local, "breaker", None)
    if breaker is None:
        breaker = _local.breaker = icu.BreakIterator.createWordInstance(icu.Locale.getRoot())
    return breaker


def words(text: str) -> list[str]:
    """The words and numbers of `text`, in order; spaces and punctuation left out."""
    breaker = _breaker()
    # ICU counts in UTF-16 units: slice its own string, or text after an emoji would be cut askew.
    units = icu.UnicodeString(text)
    breaker.setText(units)
    found = []
    start = breaker.first()
    for end in breaker:
        # Rule status 0 (UBRK_WORD_NONE) marks spaces and punctuation; words, numbers, kana and
        # ideographs have statuses of 100 and over.
        if breaker.getRuleStatus() != 0:
            found.append(str(units[start:end]))
        start = end
    return found
