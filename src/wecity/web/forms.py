"""Reading a staff form's text fields: an over-long value is refused with a clear message, never cut short.

The forms say `maxlength`, so a browser never sends more; a value longer than that comes from a script or
a hostile caller, and cutting it would store a note other than the one sent while answering "saved".
"""

from __future__ import annotations

from starlette.datastructures import FormData

from wecity.core.errors import ValidationFailed


def form_text(form: FormData, name: str, *, limit: int) -> str:
    """The field `name`, stripped, its line breaks as "\n"; at most `limit` characters, or a ValidationFailed
    naming the limit. (A browser counts a line break as one character against `maxlength` and sends it as
    two, CR LF: counted as sent, a note the browser allowed would be refused.)"""
    value = str(form.get(name, "")).replace("\r\n", "\n").strip()
    if len(value) > limit:
        raise ValidationFailed(f"{name.replace('_', ' ')} is too long: at most {limit:,} characters ({len(value):,} sent)",
                               message_zh=f"内容过长：最多 {limit} 字（提交了 {len(value)} 字）",
                               code="form.too_long", details={"field": name, "limit": limit})
    return value
