"""E-mail: SMTP from WECITY_SMTP_URL, or a log back-end for development when it is unset."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from urllib.parse import parse_qs, unquote, urlparse

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_ssl: bool = False
    starttls: bool = False
    sender: str = "wecity@localhost"
    timeout: float = 20.0


def parse_smtp_url(url: str) -> SmtpConfig:
    """smtp://[user:pass@]host[:port][?from=addr&starttls=1] (port 25, or 587 with starttls);
    smtps://... for implicit TLS (port 465)."""
    parsed = urlparse(url)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    use_ssl = parsed.scheme == "smtps"
    starttls = query.get("starttls", "0").lower() in ("1", "true", "yes")
    port = parsed.port or (465 if use_ssl else 587 if starttls else 25)
    return SmtpConfig(host=parsed.hostname or "localhost", port=port,
                      username=unquote(parsed.username) if parsed.username else None,
                      password=unquote(parsed.password) if parsed.password else None,
                      use_ssl=use_ssl, starttls=starttls, sender=query.get("from", "wecity@localhost"))


def one_address(to: str) -> bool:
    """Whether `to` is one bare address as a mail header reads it. A list ("a@x.cn, b@y.cn") would reach
    every one of them, a display name is not ours to send, and a line break cannot be sent at all (the
    message would fail at every attempt until it is dead)."""
    if "\r" in to or "\n" in to or "@" not in to:
        return False
    found = getaddresses([to])
    return len(found) == 1 and found[0][1] == to.strip()


def build_message(cfg: SmtpConfig, *, to: str, subject: str, body: str, message_id: str | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id or make_msgid(domain="wecity")
    msg.set_content(body)  # UTF-8, so Chinese text goes through unchanged
    return msg


def send_sync(cfg: SmtpConfig, msg: EmailMessage) -> None:
    """Send one message; raises smtplib errors (the outbox retries them)."""
    if cfg.use_ssl:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout,
                                              context=ssl.create_default_context())
    else:
        smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
    with smtp:
        if cfg.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if cfg.username:
            smtp.login(cfg.username, cfg.password or "")
        smtp.send_message(msg)
