"""Personal data and secrets kept out of the logs: phone numbers, e-mail addresses, one-time codes and
tracking codes (which open a citizen's report) are masked wherever a log line could carry them.

The log formatter runs every message through `redact_text`, and the access log writes paths through
`redact_path`; code that logs a message meant for a person (the development back-ends of the SMS and
e-mail channels) masks it first too, so the log shows that a message went out, not what it said.
"""

from __future__ import annotations

import re

# Mainland mobile numbers, with or without +86 / 0086 (a fixed-line number is an office's, not a person's).
_PHONE = re.compile(r"(?<!\d)((?:\+?86|0086)?[- ]?1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]*(@[\w-]+(?:\.[\w-]+)+)")
# A one-time code: six digits after the words that introduce one.
_CODE = re.compile(r"(验证码\D{0,6}|\bcode\b\D{0,12})(\d{6})(?!\d)", re.IGNORECASE)
# A tracking code: in a /track/ path, or after the words that introduce one.
_TRACKING = re.compile(r"((?:/track/|查询码\s*|tracking code:?\s*))([A-Za-z0-9_-]{3})[A-Za-z0-9_-]{5,}",
                       re.IGNORECASE)


def redact_text(text: str) -> str:
    if not text:
        return text
    text = _TRACKING.sub(r"\1\2***", text)
    text = _CODE.sub(r"\1******", text)
    text = _PHONE.sub(r"\1****\3", text)
    return _EMAIL.sub(r"\1***\2", text)


def redact_path(path: str) -> str:
    """A request path fit for the access log: a tracking code in it is cut to its first characters."""
    return _TRACKING.sub(r"\1\2***", path) if "/track/" in path else path
