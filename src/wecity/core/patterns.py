"""Regular expressions that callers write (an NGSI-LD `q` term with `~=`, an `idPattern`), run on RE2.

Python's `re` backtracks: `^(a+)+$` against 28 characters takes it about 20 seconds, holding the
interpreter the whole time, so one query could stop every request of the process. RE2 takes time linear
in the text whatever the pattern. It has no backreferences or lookarounds (no linear engine can): a
pattern using them is refused like a malformed one, as are repetitions over 1000 and patterns whose
program would need more than `_MAX_MEM` bytes.

Patterns the platform writes itself stay on `re`: they are fixed and reviewed.
"""

from __future__ import annotations

from functools import lru_cache

import re2
from re2 import _re2

# RE2's memory budget for one compiled pattern (its default); a pattern that needs more is refused.
_MAX_MEM = 8 << 20
_NO_MATCH = (-1, -1)
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED
_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH


class BadPattern(ValueError):
    """A pattern RE2 cannot compile; the message says why, in RE2's words."""


class Pattern:
    """A compiled caller's pattern that answers yes or no: `search` (anywhere in the text, as `re.search`)
    and `fullmatch` (the whole text)."""

    __slots__ = ("text", "_program")

    def __init__(self, text: str) -> None:
        options = re2.Options()
        options.log_errors = False  # a caller's mistake is answered with a 400, not written to stderr
        options.never_capture = True  # only whether it matches is asked, never the groups
        options.max_mem = _MAX_MEM
        # The binding's own module: the wrapper around it works out every group's span in characters
        # for each call, four times the cost of asking only whether there is a match.
        program = _re2.RE2(text.encode("utf-8", "surrogatepass"), options)
        if not program.ok():
            raise BadPattern(program.error().decode("utf-8", "replace"))
        self.text = text
        self._program = program

    def search(self, text: str) -> bool:
        encoded = text.encode("utf-8", "surrogatepass")
        return self._program.Match(_UNANCHORED, encoded, 0, len(encoded))[0] != _NO_MATCH  # type: ignore[no-any-return]

    def fullmatch(self, text: str) -> bool:
        encoded = text.encode("utf-8", "surrogatepass")
        return self._program.Match(_BOTH, encoded, 0, len(encoded))[0] != _NO_MATCH  # type: ignore[no-any-return]


@lru_cache(maxsize=1024)
def compile_pattern(text: str) -> Pattern:
    """The pattern `text` compiled once (queries and subscriptions repeat theirs); BadPattern when RE2
    cannot compile it."""
    return Pattern(text)
