"""The outbox channels: webhook (HMAC-signed JSON POST), email (SMTP or log), in_app (a stored notice), and
staff_event (a case event passed on to the group robots) with robot (one message to one robot)."""

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
from wecity.core.errors import NotFound
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import OutboxMessage, Undeliverable
from wecity.core.redact import redact_text
from wecity.core.registry import DeliverFn
from wecity.notify import robots, service
from wecity.notify.choices import RobotKind
from wecity.notify.email import build_message, one_address, parse_smtp_url, send_sync
from wecity.notify.robot_messages import dingtalk_signed_url

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
        except outbound.OutboundRefused as exc:  # trying again cannot make it allowed
            raise Undeliverable(f"{outbound.shown_url(url)}: {exc.reason}") from None
        shown = outbound.shown_url(url)  # the error is kept and shown: without the URL's query, which may hold a key
        if response.status_code == 410:
            raise Undeliverable(f"{shown} answered 410 Gone")
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"{shown} answered HTTP {response.status_code}")

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
        if not one_address(msg.target):
            raise Undeliverable("the target is not one e-mail address")
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


def staff_event_channel(ctx: AppContext) -> DeliverFn:
    """A case event for staff (target ``case:<id>``), passed on as one ``robot`` message per robot that wants
    it (wecity.notify.robots.fan_out)."""
    if not ctx.settings.public_url:
        log.warning("WECITY_PUBLIC_URL is not set: group robot messages link to cases by path only, "
                    "which a chat cannot open")

    async def deliver(msg: OutboxMessage) -> None:
        event = msg.payload
        if not isinstance(event.get("case_id"), int) or not isinstance(event.get("event"), str):
            raise Undeliverable("a staff event needs case_id and event")
        # A read first: most events have no robot, and then no write is needed.
        wanted = [r["id"] for r in await ctx.db.read(lambda c: robots.list_robots(c, active_only=True))
                  if robots.wants(r, event)]
        if wanted:
            await ctx.db.write(lambda conn: robots.fan_out(conn, message_id=msg.id, event=event, robot_ids=wanted,
                                                           now=ctx.clock.now(), public_url=ctx.settings.public_url))

    return deliver


# The most of a robot's answer read for its errcode: the services answer a few dozen bytes.
ROBOT_ANSWER_BYTES = 64 * 1024


def robot_answer_error(response: httpx.Response) -> str | None:
    """What went wrong by a WeCom or DingTalk robot's answer, or None when it accepted the message. Both
    answer {"errcode": 0, "errmsg": "ok"}; any other errcode is a failure even with HTTP 200."""
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    if len(response.content) > ROBOT_ANSWER_BYTES:
        return "an answer too long to be a robot's"
    try:
        answer = json.loads(response.content)
    except ValueError:
        return "an answer that is not JSON"
    if not isinstance(answer, dict) or "errcode" not in answer:
        return "an answer without errcode"
    if answer["errcode"] != 0:
        return f"errcode {answer['errcode']}: {str(answer.get('errmsg', ''))[:200]}"
    return None


def robot_channel(ctx: AppContext, client: httpx.AsyncClient) -> DeliverFn:
    """One message to one robot (target ``robot:<id>``; payload ``body``, the JSON it is sent)."""
    default_secret = service.default_webhook_secret(ctx.settings)
    policy = OutboundPolicy.from_settings(ctx.settings)

    async def deliver(msg: OutboxMessage) -> None:
        try:
            robot_id = int(msg.target.removeprefix("robot:"))
        except ValueError:
            raise Undeliverable(f"not a robot: {msg.target!r}") from None
        try:
            robot = await ctx.db.read(lambda c: robots.get_robot(c, robot_id))
        except NotFound:
            raise Undeliverable(f"robot {robot_id} was removed") from None
        if not robot["active"]:
            raise Undeliverable(f"robot {robot['name']!r} is switched off")
        body = msg.payload.get("body")
        if not isinstance(body, dict):
            raise Undeliverable("a robot message needs a body")
        content = body_bytes(body)
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": f"WeCity/{__version__}"}
        url = robot["url"]
        if robot["kind"] == RobotKind.DINGTALK and robot["secret"]:
            # The service checks the timestamp against its own clock (within an hour): the real time, then.
            url = dingtalk_signed_url(url, robot["secret"], int(time.time() * 1000))
        elif robot["kind"] == RobotKind.WEBHOOK:
            headers |= {"X-WeCity-Signature": service.sign(robot["secret"] or default_secret, content),
                        "X-WeCity-Message-Id": str(msg.id), "X-WeCity-Attempt": str(msg.attempts + 1)}
        try:
            response = await outbound.post(client, policy, url, content=content, headers=headers)
        except outbound.OutboundRefused as exc:
            raise Undeliverable(f"robot {robot['name']!r}: {exc.reason}") from None
        except outbound.OutboundFailed:
            # The URL carries the robot's key: the error names the robot instead.
            raise DeliveryFailed(f"robot {robot['name']!r} could not be reached") from None
        if robot["kind"] == RobotKind.WEBHOOK:
            if response.status_code == 410:
                raise Undeliverable(f"robot {robot['name']!r} answered 410 Gone")
            if not 200 <= response.status_code < 300:
                raise DeliveryFailed(f"robot {robot['name']!r} answered HTTP {response.status_code}")
            return
        error = robot_answer_error(response)
        if error is not None:
            raise DeliveryFailed(f"robot {robot['name']!r} answered {error}")

    return deliver


def install(ctx: AppContext, *, client: httpx.AsyncClient) -> None:
    """Add the channels to this app's registry, bound to its context and HTTP client."""
    ctx.registry.add_channel("webhook", webhook_channel(ctx, client))
    ctx.registry.add_channel("email", email_channel(ctx))
    ctx.registry.add_channel("in_app", in_app_channel(ctx))
    ctx.registry.add_channel("staff_event", staff_event_channel(ctx))
    ctx.registry.add_channel("robot", robot_channel(ctx, client))
