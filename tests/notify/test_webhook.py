"""The webhook channel: HMAC-signed JSON, named gateways, retries, and a receiver that is down then back."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace

import httpx
import pytest
import sqlalchemy as sa

from wecity.core import outbound, outbox
from wecity.core.context import AppContext
from wecity.core.models import outbox_messages
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import RetryPolicy
from wecity.core.runner import Runner
from wecity.notify import service
from wecity.notify.channels import install

from ..core.receiver import Receiver, free_port


def _enqueue(ctx: AppContext, target: str, payloads: list[dict[str, object]]) -> list[int]:
    return ctx.db.write_sync(lambda c: [outbox.enqueue(c, channel="webhook", target=target, payload=p,
                                                       now=ctx.clock.now()) for p in payloads])


def _status(ctx: AppContext) -> dict[int, tuple[str, int, str | None]]:
    rows = ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.id, outbox_messages.c.status,
                                                          outbox_messages.c.attempts, outbox_messages.c.last_error)).all())
    return {r.id: (r.status, r.attempts, r.last_error) for r in rows}


def test_body_is_signed_with_hmac_sha256_and_named_gateways_use_their_own_secret(
        ctx: AppContext, caplog: pytest.LogCaptureFixture) -> None:
    requests: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: requests.append(r) or httpx.Response(204))
    ctx.db.write_sync(lambda c: service.set_webhook(c, name="sms", url="https://sms.example/send", secret="s3cret",
                                                    now=ctx.clock.now()))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            install(ctx, client=client)
            [a] = _enqueue(ctx, "https://dept.example/hook", [{"event": "case.dispatched", "名称": "井盖"}])
            [b] = _enqueue(ctx, "sms", [{"phone": "13800000000", "text": "【WeCity】已派遣"}])
            with caplog.at_level(logging.WARNING):
                [c] = _enqueue(ctx, "wechat", [{"text": "hello"}])
                await Runner(ctx).run_until_idle()
            assert {m: s[0] for m, s in _status(ctx).items()} == {a: "delivered", b: "delivered", c: "delivered"}

    asyncio.run(run())
    default = service.default_webhook_secret(ctx.settings)
    by_url = {str(r.url): r for r in requests}
    assert set(by_url) == {"https://dept.example/hook", "https://sms.example/send"}
    dept, sms = by_url["https://dept.example/hook"], by_url["https://sms.example/send"]
    assert json.loads(dept.content) == {"event": "case.dispatched", "名称": "井盖"}
    assert dept.headers["content-type"].startswith("application/json")
    assert service.verify(default, dept.content, dept.headers["x-wecity-signature"])
    assert service.verify("s3cret", sms.content, sms.headers["x-wecity-signature"])
    assert not service.verify("s3cret", dept.content, dept.headers["x-wecity-signature"])
    assert dept.headers["x-wecity-message-id"].isdigit()
    # A gateway that is not configured goes to the log (development back-end), loudly.
    assert any("'wechat' is not configured" in r.message and "hello" in r.message for r in caplog.records)


def test_error_answers_are_retried_and_410_gone_is_dead_at_once(ctx: AppContext) -> None:
    answers = {"https://a.example/": 500, "https://b.example/": 410}
    transport = httpx.MockTransport(lambda r: httpx.Response(answers[str(r.url)]))

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            install(ctx, client=client)
            await Runner(ctx).run_once()

    [a] = _enqueue(ctx, "https://a.example/", [{}])
    [b] = _enqueue(ctx, "https://b.example/", [{}])
    asyncio.run(run())
    status = _status(ctx)
    assert status[a][:2] == ("pending", 1) and "HTTP 500" in str(status[a][2])
    assert status[b][:2] == ("dead", 1) and "410" in str(status[b][2])


def test_every_message_is_delivered_when_a_down_receiver_comes_back(ctx: AppContext) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    n = 60
    ids = _enqueue(ctx, url, [{"seq": i, "text": f"案件 {i}"} for i in range(n)])
    policy = RetryPolicy(base_seconds=10, max_seconds=600, jitter=0.5)
    # The receiver is on this machine: allowed by name, as an operator allows an internal gateway.
    ctx.settings = replace(ctx.settings, outbound_allow=("127.0.0.1",))

    async def scenario() -> Receiver:
        async with outbound.async_client(OutboundPolicy.from_settings(ctx.settings)) as client:
            install(ctx, client=client)
            runner = Runner(ctx, policy=policy)
            # The receiver is down: three rounds of refused connections, each followed by the backoff.
            for attempt in range(1, 4):
                assert await runner.run_once() == n
                assert all(s[:2] == ("pending", attempt) and "could not be reached" in str(s[2])
                           for s in _status(ctx).values())
                assert await runner.run_once() == 0            # nothing is due during the backoff
                ctx.clock.advance(seconds=policy.base_seconds * 2 ** (attempt - 1))
            receiver = Receiver(port, service.default_webhook_secret(ctx.settings))
            for _ in range(10):
                await runner.run_until_idle()
                if ctx.db.read_sync(outbox.counts)["pending"] == 0:
                    break
                ctx.clock.advance(seconds=policy.max_seconds)
            return receiver

    receiver = asyncio.run(scenario())
    receiver.close()
    assert sorted(receiver.received) == sorted(ids)
    assert set(receiver.received.values()) == {1}
    assert receiver.bad == []
    assert ctx.db.read_sync(outbox.counts) == {"pending": 0, "delivered": n, "dead": 0}
    assert all(s[:2] == ("delivered", 4) for s in _status(ctx).values())
