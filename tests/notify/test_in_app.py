"""In-app notices: delivered from the outbox once, listed per recipient, marked read only by their owner."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from wecity.core import outbox
from wecity.core.context import AppContext
from wecity.core.errors import NotFound, ValidationFailed
from wecity.core.models import outbox_messages
from wecity.core.runner import Runner
from wecity.notify import service
from wecity.notify.channels import in_app_channel


def _notice(ctx: AppContext, target: str, title: str, **extra: object) -> int:
    return ctx.db.write_sync(lambda c: outbox.enqueue(
        c, channel="in_app", target=target, now=ctx.clock.now(),
        payload={"title_zh": f"{title}（中文）", "title_en": title, "body": "b", "link": "/staff/cases/1", **extra}))


def test_notices_are_stored_once_listed_and_marked_read(ctx: AppContext) -> None:
    ctx.registry.add_channel("in_app", in_app_channel(ctx))
    first = _notice(ctx, "user:1", "first", case_id=7)
    _notice(ctx, "department:3", "for the department")
    _notice(ctx, "user:2", "someone else's")
    asyncio.run(Runner(ctx).run_until_idle())

    mine = ctx.db.read_sync(lambda c: service.list_notifications(c, ["user:1", "department:3"]))
    assert [n["title_en"] for n in mine] == ["for the department", "first"]  # newest first
    assert mine[1]["title_zh"] == "first（中文）" and mine[1]["link"] == "/staff/cases/1"
    assert mine[1]["data"] == {"case_id": 7} and mine[1]["outbox_id"] == first
    assert ctx.db.read_sync(lambda c: service.unread_count(c, ["user:1", "department:3"])) == 2

    # A repeated delivery of the same outbox message adds nothing.
    again = ctx.db.write_sync(lambda c: service.add_notification(
        c, recipient="user:1", title_zh="x", title_en="x", now=ctx.clock.now(), outbox_id=first))
    assert again is None
    assert len(ctx.db.read_sync(lambda c: service.list_notifications(c, "user:1"))) == 1

    # user:1 cannot mark user:2's notice read, whatever id it sends.
    theirs = ctx.db.read_sync(lambda c: service.list_notifications(c, "user:2"))[0]["id"]
    assert ctx.db.write_sync(lambda c: service.mark_read(c, "user:1", ids=[theirs], now=ctx.clock.now())) == 0
    assert ctx.db.read_sync(lambda c: service.unread_count(c, "user:2")) == 1
    assert ctx.db.write_sync(lambda c: service.mark_read(c, "user:1", ids=[mine[1]["id"]], now=ctx.clock.now())) == 1
    assert ctx.db.read_sync(lambda c: service.unread_count(c, ["user:1", "department:3"])) == 1
    assert ctx.db.write_sync(lambda c: service.mark_read(c, ["user:1", "department:3"], now=ctx.clock.now())) == 1
    unread = ctx.db.read_sync(lambda c: service.list_notifications(c, ["user:1", "department:3"], unread_only=True))
    assert unread == []


def test_notice_without_titles_is_dead_at_once(ctx: AppContext) -> None:
    ctx.registry.add_channel("in_app", in_app_channel(ctx))
    mid = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="in_app", target="user:1", payload={"body": "x"},
                                                     now=ctx.clock.now()))
    asyncio.run(Runner(ctx).run_once())
    status = ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages.c.status)
                                                  .where(outbox_messages.c.id == mid)).scalar())
    assert status == "dead"


def test_named_webhooks_are_configured_and_found(ctx: AppContext) -> None:
    secret = ctx.db.write_sync(lambda c: service.set_webhook(c, name="sms", url="https://gw.example/sms",
                                                             now=ctx.clock.now()))
    assert len(secret) >= 32
    assert ctx.db.read_sync(service.find_webhook, "sms") == ("https://gw.example/sms", secret)
    assert ctx.db.read_sync(service.find_webhook, "https://gw.example/sms") == ("https://gw.example/sms", secret)
    assert ctx.db.read_sync(service.find_webhook, "wechat") is None
    with pytest.raises(ValidationFailed):
        ctx.db.write_sync(lambda c: service.set_webhook(c, name="x", url="ftp://nope", now=ctx.clock.now()))
    ctx.db.write_sync(service.remove_webhook, "sms")
    with pytest.raises(NotFound):
        ctx.db.write_sync(service.remove_webhook, "sms")
