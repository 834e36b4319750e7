"""The e-mail channel: real SMTP to a local server, the log back-end when unset, retries when it is down."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import replace
from email import message_from_bytes, policy
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from wecity.core import outbox
from wecity.core.context import AppContext
from wecity.core.errors import ConfigurationError
from wecity.core.models import outbox_messages
from wecity.core.runner import Runner
from wecity.core.settings import load_settings
from wecity.notify.channels import email_channel
from wecity.notify.email import parse_smtp_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _send_one(ctx: AppContext) -> int:
    mid = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="email", target="citizen@example.org", now=ctx.clock.now(),
                                                     payload={"subject": "您的诉求已办结 / Your report is resolved",
                                                              "body": "查询码 / tracking code: ABC123\n"}))
    ctx.registry.add_channel("email", email_channel(ctx))
    asyncio.run(Runner(ctx).run_once())
    return mid


def _row(ctx: AppContext, mid: int) -> sa.Row:
    return ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages).where(outbox_messages.c.id == mid)).one())


def test_email_is_sent_through_smtp(ctx: AppContext) -> None:
    inbox = _Inbox()
    port = _free_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    try:
        ctx.settings = replace(ctx.settings, smtp_url=f"smtp://127.0.0.1:{port}?from=noreply@city.example")
        mid = _send_one(ctx)
    finally:
        server.stop()
    assert _row(ctx, mid).status == "delivered"
    [(sender, rcpts, raw)] = inbox.messages
    assert sender == "noreply@city.example" and rcpts == ["citizen@example.org"]
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "您的诉求已办结 / Your report is resolved"
    assert msg.get_content().replace("\r\n", "\n") == "查询码 / tracking code: ABC123\n"  # SMTP line ends
    assert msg["Message-ID"] == f"<outbox-{mid}@wecity>"


def test_smtp_server_down_means_retry_not_loss(ctx: AppContext) -> None:
    ctx.settings = replace(ctx.settings, smtp_url=f"smtp://127.0.0.1:{_free_port()}")
    row = _row(ctx, _send_one(ctx))
    assert (row.status, row.attempts) == ("pending", 1) and "Connection" in row.last_error


def test_without_smtp_the_log_back_end_says_so(ctx: AppContext, caplog: pytest.LogCaptureFixture) -> None:
    assert ctx.settings.smtp_url is None
    with caplog.at_level(logging.WARNING):
        mid = _send_one(ctx)
    assert _row(ctx, mid).status == "delivered"
    text = caplog.text
    assert "WECITY_SMTP_URL is not set" in text and "log back-end, not sent" in text and "ABC123" in text


def test_email_without_subject_is_dead_at_once(ctx: AppContext) -> None:
    mid = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="email", target="a@example.org", payload={"body": "x"},
                                                     now=ctx.clock.now()))
    ctx.registry.add_channel("email", email_channel(ctx))
    asyncio.run(Runner(ctx).run_once())
    assert _row(ctx, mid).status == "dead"


@pytest.mark.parametrize("target", ["victim1@example.com, victim2@example.org", "a@example.com,b",
                                    "a@example.com\r\nBcc: z@example.com", "Someone <a@example.org>"])
def test_a_target_that_is_not_one_address_is_dead_at_once(ctx: AppContext, target: str) -> None:
    # Kept from before the channels checked addresses: sent, it would reach several people, or fail at
    # every attempt.
    mid = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="email", target=target, now=ctx.clock.now(),
                                                     payload={"subject": "s", "body": "b"}))
    ctx.registry.add_channel("email", email_channel(ctx))
    asyncio.run(Runner(ctx).run_once())
    row = _row(ctx, mid)
    assert (row.status, row.attempts) == ("dead", 1) and "not one e-mail address" in row.last_error


def test_smtp_url_forms() -> None:
    cfg = parse_smtp_url("smtp://user%40city:p%3Ass@mail.city.example?starttls=1&from=wecity@city.example")
    assert (cfg.host, cfg.port, cfg.username, cfg.password, cfg.starttls, cfg.use_ssl, cfg.sender) == (
        "mail.city.example", 587, "user@city", "p:ss", True, False, "wecity@city.example")
    assert parse_smtp_url("smtps://mail.example").port == 465
    assert parse_smtp_url("smtp://mail.example").port == 25
    with pytest.raises(ConfigurationError, match="WECITY_SMTP_URL"):
        load_settings({"WECITY_SECRET_KEY": "k" * 40, "WECITY_SMTP_URL": "http://mail.example"})
