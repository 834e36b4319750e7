"""Reading a staff form's text fields: an over-long value is refused with a clear message, never cut short.

The forms say `maxlength`, so a browser never sends more; a value longer than that comes from a script or
a hostile caller, and cutting it would store a note other than the one sent while answering "saved".
"""

from __future__ import annotations

from starlette.datastructures import FormData

from wecity.core.errors import ValidationFailed


def form_text(form: FormData, name: str, *, limit: int) -> str:
    """The field `name`, stripped; at most `limit` characters, or a ValidationFailed naming the limit."""
    value = str(form.get(name, "")).strip()
    if len(value) > limit:
        raise ValidationFailed(f"{name.replace('_', ' ')} is too long: at most {limit:,} characters ({len(value):,} sent)",
                               message_zh=f"内容过长：最多 {limit} 字（提交了 {len(value)} 字）",
                               code="form.too_long", details={"field": name, "limit": limit})
    return value
