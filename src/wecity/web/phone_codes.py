"""One-time codes by SMS so a citizen can list their own reports by phone number ("my reports")."""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import ValidationFailed
from wecity.core.outbox import enqueue
from wecity.identity.applicants import keyed_hash
from wecity.web.models import portal_codes

CODE_LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def normalise_phone(raw: str) -> str:
    """Digits only, without China's +86 prefix; a clear error when it is not a phone number."""
    digits = re.sub(r"[\s\-()]", "", raw or "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not re.fullmatch(r"\+?\d{6,15}", digits):
        raise ValidationFailed("enter a phone number (digits only)", message_zh="请输入正确的手机号码",
                               code="portal.phone")
    return digits


def phone_variants(phone: str) -> list[str]:
    """The spellings under which a report may have stored this number."""
    return [phone, f"+86{phone}", f"86{phone}", f"+86 {phone}"]


def issue_code(conn: Connection, phone: str, *, secret_key: str, now: datetime) -> str:
    """Make a 6-digit code and send it by SMS through the outbox (the `sms` webhook gateway). How often is
    the caller's to limit (the portal's `portal_code`, `sms_phone` and `sms_total` rate limits). Returns the
    code, which only a demo city shows (settings.demo)."""
    phone_hash = keyed_hash(secret_key, "phone", phone)
    code = f"{secrets.randbelow(1_000_000):06d}"
    conn.execute(portal_codes.insert().values(
        phone_hash=phone_hash, code_hash=keyed_hash(secret_key, "code", f"{phone}:{code}"), created_at=now,
        expires_at=now + CODE_LIFETIME, attempts=0))
    enqueue(conn, channel="webhook", target="sms", now=now, payload={
        "phone": phone, "event": "portal_code",
        "text": f"【WeCity】您的验证码是 {code}，10 分钟内有效。Your WeCity code is {code} (valid 10 minutes).",
    })
    return code


def check_code(conn: Connection, phone: str, code: str, *, secret_key: str, now: datetime) -> bool:
    """True, once, for the latest unexpired code of this number; at most MAX_ATTEMPTS guesses per code."""
    phone_hash = keyed_hash(secret_key, "phone", phone)
    # Locked (FOR UPDATE): guesses sent at the same moment are counted one after the other, so they cannot
    # all read the same count and get past the limit together.
    row = conn.execute(sa.select(portal_codes).where(
        portal_codes.c.phone_hash == phone_hash, portal_codes.c.used_at.is_(None),
        portal_codes.c.expires_at > now).order_by(portal_codes.c.id.desc()).limit(1).with_for_update()).first()
    if row is None or row.attempts >= MAX_ATTEMPTS:
        return False
    good = hmac.compare_digest(row.code_hash, keyed_hash(secret_key, "code", f"{phone}:{code.strip()}"))
    conn.execute(portal_codes.update().where(portal_codes.c.id == row.id).values(
        attempts=row.attempts + 1, used_at=now if good else None))
    return good
