"""The `media_url` a back office pushes with a FIXED update: the case's evidence photo, checked before it is kept.

It is shown to staff and citizens as the photo of the result, so only two things are taken: the id of a photo
uploaded here (or this site's own `/media/<id>` URL for it), or an absolute http(s) URL of a photo hosted
elsewhere. Anything else — `javascript:` and `data:` URLs, paths of this site that a link would follow with the
viewer's session, text with spaces or control characters — is refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from sqlalchemy.engine import Connection

from wecity.cases.models import cases
from wecity.core.errors import ValidationFailed
from wecity.media.service import get_media, is_media_id

# The evidence column's width: a longer URL would not fit (PostgreSQL refuses it, SQLite would keep it whole).
MAX_LENGTH: int = getattr(cases.c.evidence_media_id.type, "length", None) or 64
_OWN_MEDIA_PATH = re.compile(r"^/media/([A-Za-z0-9_-]+)/?$")


def _refused(reason_en: str, reason_zh: str) -> ValidationFailed:
    return ValidationFailed(
        f"media_url must be the id of a photo uploaded here or an http(s) URL of a photo elsewhere: {reason_en}",
        message_zh=f"media_url 须为已上传照片的编号，或外部照片的 http(s) 地址：{reason_zh}", code="open311.media_url")


def check_form(media_url: str, site_host: str | None) -> str:
    """The evidence reference `media_url` names (a media id or an outside URL), or ValidationFailed.

    Checks the form only; `check_stored` then makes sure a media id names a photo that exists."""
    if is_media_id(media_url):
        return media_url
    if any(c.isspace() or not c.isprintable() for c in media_url):
        raise _refused("it holds spaces or control characters", "含空白或控制字符")
    parts = urlsplit(media_url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _refused("it is neither", "两者皆不是")
    if site_host and parts.hostname.lower() == site_host.lower():
        own = _OWN_MEDIA_PATH.match(parts.path)
        if own and is_media_id(own.group(1)) and not parts.query:
            return own.group(1)
        raise _refused("it points at this site, but not at an uploaded photo", "指向本站，但不是已上传的照片")
    if parts.username is not None or parts.password is not None:
        raise _refused("it carries a user name or password", "含用户名或密码")
    if len(media_url) > MAX_LENGTH:
        raise _refused(f"a URL may be at most {MAX_LENGTH} characters", f"地址不能超过 {MAX_LENGTH} 个字符")
    return media_url


def check_stored(conn: Connection, reference: str) -> str:
    """`reference` from `check_form`, once a media id in it is known to name an uploaded photo."""
    if is_media_id(reference) and get_media(conn, reference) is None:
        raise _refused("no photo with that id was uploaded", "没有该编号的已上传照片")
    return reference
