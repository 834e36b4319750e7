"""In-app notices (list, count, mark read) and webhook gateway configuration."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from wecity.core.errors import NotFound, ValidationFailed
from wecity.notify.models import notifications, webhooks


def add_notification(conn: sa.Connection, *, recipient: str, title_zh: str, title_en: str, body: str = "",
                     now: datetime, link: str | None = None, data: dict[str, Any] | None = None,
                     outbox_id: int | None = None) -> int | None:
    """Store an in-app notice; with an `outbox_id` already used, nothing is added and None returned."""
    values = dict(recipient=recipient, title_zh=title_zh, title_en=title_en, body=body, link=link, data=data,
                  created_at=now, outbox_id=outbox_id)
    if outbox_id is None:
        return int(conn.execute(notifications.insert().values(**values).returning(notifications.c.id)).scalar_one())
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    result = conn.execute(dialect_insert(notifications).values(**values)
                          .on_conflict_do_nothing(index_elements=["outbox_id"]).returning(notifications.c.id))
    row = result.first()
    return None if row is None else int(row[0])


def _recipients(recipients: str | Sequence[str]) -> list[str]:
    return [recipients] if isinstance(recipients, str) else list(recipients)


def list_notifications(conn: sa.Connection, recipients: str | Sequence[str], *, unread_only: bool = False,
                       limit: int = 50, before_id: int | None = None) -> list[dict[str, Any]]:
    """Newest first, for one recipient key or several (a user sees their own and their department's)."""
    q = (sa.select(notifications).where(notifications.c.recipient.in_(_recipients(recipients)))
         .order_by(notifications.c.id.desc()).limit(max(1, min(limit, 500))))
    if unread_only:
        q = q.where(notifications.c.read_at.is_(None))
    if before_id is not None:
        q = q.where(notifications.c.id < before_id)
    return [dict(r._mapping) for r in conn.execute(q)]


def unread_count(conn: sa.Connection, recipients: str | Sequence[str]) -> int:
    q = sa.select(sa.func.count()).select_from(notifications).where(
        notifications.c.recipient.in_(_recipients(recipients)), notifications.c.read_at.is_(None))
    return int(conn.execute(q).scalar_one())


def mark_read(conn: sa.Connection, recipients: str | Sequence[str], *, now: datetime,
              ids: Sequence[int] | None = None) -> int:
    """Mark the given notices (default: all) of these recipients read; returns how many changed.
    Notices of other recipients are never touched, whatever ids are given."""
    q = notifications.update().where(notifications.c.recipient.in_(_recipients(recipients)),
                                     notifications.c.read_at.is_(None))
    if ids is not None:
        q = q.where(notifications.c.id.in_(list(ids)))
    return int(conn.execute(q.values(read_at=now)).rowcount)


# -- webhook gateways ---------------------------------------------------------------------------------

def _check_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationFailed(f"webhook URL {url!r} must be http(s)://host/...",
                               message_zh=f"Webhook 地址 {url!r} 必须是 http(s)://主机/...", code="notify.invalid_url")


def set_webhook(conn: sa.Connection, *, name: str, url: str, now: datetime, secret: str | None = None) -> str:
    """Add or replace the named gateway; returns its signing secret (generated when not given)."""
    if not name or "://" in name:
        raise ValidationFailed("a webhook name is a short word such as sms or wechat",
                               message_zh="Webhook 名称应为简短名称，如 sms 或 wechat", code="notify.invalid_name")
    _check_url(url)
    secret = secret or secrets.token_urlsafe(32)
    conn.execute(webhooks.delete().where(webhooks.c.name == name))
    conn.execute(webhooks.insert().values(name=name, url=url, secret=secret, active=True, created_at=now))
    return secret


def remove_webhook(conn: sa.Connection, name: str) -> None:
    if not conn.execute(webhooks.delete().where(webhooks.c.name == name)).rowcount:
        raise NotFound(f"webhook {name!r} not found", message_zh=f"Webhook {name!r} 不存在", code="notify.not_found")


def list_webhooks(conn: sa.Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(webhooks).order_by(webhooks.c.name))]


def find_webhook(conn: sa.Connection, target: str) -> tuple[str, str] | None:
    """(url, secret) of the active gateway named `target`, or registered at the URL `target`."""
    column = webhooks.c.url if "://" in target else webhooks.c.name
    row = conn.execute(sa.select(webhooks.c.url, webhooks.c.secret)
                       .where(column == target, webhooks.c.active.is_(True)).limit(1)).first()
    return None if row is None else (row.url, row.secret)


def default_webhook_secret(settings: Any) -> str:
    """The secret for webhooks without their own: WECITY_WEBHOOK_SECRET, else derived from the secret key."""
    if getattr(settings, "webhook_secret", None):
        return str(settings.webhook_secret)
    return hmac.new(settings.secret_key.encode(), b"wecity webhook signing", hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes) -> str:
    """The X-WeCity-Signature header value: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header)
