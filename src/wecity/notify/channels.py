"""The outbox channels: webhook (HMAC-signed JSON POST), email (SMTP or log) and in_app (a stored notice)."""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import time
from typing import Any

import httpx

from wecity import __version__
from wecity.core import outbound
from wecity.core.context import AppContext
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import OutboxMessage, Undeliverable
from wecity.core.redact import redact_text
from wecity.core.registry import DeliverFn
from wecity.notify import service
from wecity.notify.email import build_message, parse_smtp_url, send_sync

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """A receiver answered, but not with success; the outbox tries again later."""


def body_bytes(payload: dict[str, object]) -> bytes:
    # Compact, key-sorted UTF-8: the exact bytes signed are the bytes sent.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


# How long the configured gateways are kept in memory: a change reaches the runners within this time.
GATEWAYS_TTL = 5.0


def with_link(payload: dict[str, Any], public_url: str | None) -> dict[str, Any]:
    """A message's `link` (a path of the portal) made absolute with the platform's public address and put
    at the end of its text and body, so that an SMS or an e-mail opens the page it speaks of."""
    link = payload.get("link")
    if not isinstance(link, str) or not link.startswith("/"):
        return payload
    absolute = f"{public_url}{link}" if public_url else link
    out = {**payload, "link": absolute}
    if isinstance(out.get("text"), str):
        out["text"] = f"{out['text']} {absolute}"
    if isinstance(out.get("body"), str):
        out["body"] = f"{out['body'].rstrip()}\n{absolute}\n"
    return out


def webhook_channel(ctx: AppContext, client: httpx.AsyncClient) -> DeliverFn:
    default_secret = service.default_webhook_secret(ctx.settings)
    policy = OutboundPolicy.from_settings(ctx.settings)
    cache: dict[str, tuple[str, str]] = {}
    loaded_at = [-GATEWAYS_TTL]
    lock = asyncio.Lock()

    async def gateway(target: str) -> tuple[str, str] | None:
        # One read for all the gateways every few seconds, not one per message.
        async with lock:
            if time.monotonic() - loaded_at[0] >= GATEWAYS_TTL:
                rows = await ctx.db.read(service.list_webhooks)
                cache.clear()
                for r in rows:
                    if r["active"]:
                        cache[r["url"]] = cache[r["name"]] = (r["url"], r["secret"])
                loaded_at[0] = time.monotonic()
        return cache.get(target)

    async def deliver(msg: OutboxMessage) -> None:
        found = await gateway(msg.target)
        payload = msg.payload if "://" in msg.target else with_link(msg.payload, ctx.settings.public_url)
        if found is not None:
            url, secret = found
        elif "://" in msg.target:
            url, secret = msg.target, default_secret
        else:
            # A gateway (sms, wechat) not configured: the development back-end writes it to the log.
            log.warning("webhook gateway %r is not configured (wecity notify add-webhook); message %d written "
                        "to the log instead, masked: %s", msg.target, msg.id,
                        redact_text(body_bytes(payload).decode()))
            return
        body = body_bytes(payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"WeCity/{__version__}",
            "X-WeCity-Signature": service.sign(secret, body),
            # Receivers use the id to ignore a repeat: delivery is at least once.
            "X-WeCity-Message-Id": str(msg.id),
            "X-WeCity-Attempt": str(msg.attempts + 1),
        }
        try:
            response = await outbound.post(client, policy, url, content=body, headers=headers)
        except outbound.OutboundRefused as exc:
            raise Undeliverable(f"{url}: {exc.reason}") from None  # trying again cannot make it allowed
        if response.status_code == 410:
            raise Undeliverable(f"{url} answered 410 Gone")
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"{url} answered HTTP {response.status_code}")

    return deliver


def email_channel(ctx: AppContext) -> DeliverFn:
    smtp_url = getattr(ctx.settings, "smtp_url", None)
    cfg = parse_smtp_url(smtp_url) if smtp_url else None
    if cfg is None:
        log.warning("WECITY_SMTP_URL is not set: e-mail is written to the log, not sent (development back-end)")
    else:
        log.info("e-mail goes through SMTP server %s:%d", cfg.host, cfg.port)

    async def deliver(msg: OutboxMessage) -> None:
        payload = with_link(msg.payload, ctx.settings.public_url)
        subject, body = payload.get("subject"), payload.get("body")
        if not isinstance(subject, str) or not isinstance(body, str):
            raise Undeliverable("an email message needs a subject and a body")
        if cfg is None:
            log.warning("e-mail (log back-end, not sent) message %d to %s, masked: %s\n%s", msg.id,
                        redact_text(msg.target), redact_text(subject), redact_text(body))
            return
        email = build_message(cfg, to=msg.target, subject=subject, body=body,
                              message_id=f"<outbox-{msg.id}@wecity>")
        try:
            await asyncio.to_thread(send_sync, cfg, email)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Undeliverable(f"recipient refused: {exc.recipients}") from exc

    return deliver


def in_app_channel(ctx: AppContext) -> DeliverFn:
    async def deliver(msg: OutboxMessage) -> None:
        p = msg.payload
        if not isinstance(p.get("title_zh"), str) or not isinstance(p.get("title_en"), str):
            raise Undeliverable("an in-app notice needs title_zh and title_en")
        extra = {k: v for k, v in p.items() if k not in ("title_zh", "title_en", "body", "link")}
        await ctx.db.write(lambda conn: service.add_notification(
            conn, recipient=msg.target, title_zh=p["title_zh"], title_en=p["title_en"], body=str(p.get("body", "")),
            link=p.get("link") if isinstance(p.get("link"), str) else None, data=extra or None,
            now=ctx.clock.now(), outbox_id=msg.id))

    return deliver


def install(ctx: AppContext, *, client: httpx.AsyncClient) -> None:
    """Add the three channels to this app's registry, bound to its context and HTTP client."""
    ctx.registry.add_channel("webhook", webhook_channel(ctx, client))
    ctx.registry.add_channel("email", email_channel(ctx))
    ctx.registry.add_channel("in_app", in_app_channel(ctx))
