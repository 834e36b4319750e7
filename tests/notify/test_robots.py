"""Group robots: the documented WeCom and DingTalk payloads posted to fake robots on 127.0.0.1, DingTalk's
加签, errcode answers retried then dead, the generic webhook's signature, one push per event, bursts
spread to the robots' rate, and case events from the case engine reaching exactly one robot message."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from wecity.cases import citizen_voice, engine, handling, notifications
from wecity.cases.engine import Actor
from wecity.core import outbound, outbox
from wecity.core.context import AppContext
from wecity.core.errors import ValidationFailed
from wecity.core.models import outbox_messages
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import RetryPolicy
from wecity.core.runner import Runner
from wecity.identity.models import audit_log, users
from wecity.identity.service import get_user
from wecity.notify import robots, service
from wecity.notify.channels import install

from ..cases.conftest import Staff, open_case, staff
from ..conftest import City
from .robot_server import FakeRobot

__all__ = ["staff"]

PUBLIC = "https://city.example"
CHENGGUAN = 2  # the demo city's urban management bureau: manhole cases go there


@pytest.fixture
def robot_ctx(ctx: AppContext) -> AppContext:
    # The fake robots are on this machine: allowed as an operator allows an internal receiver.
    ctx.settings = replace(ctx.settings, outbound_allow=("127.0.0.1",), public_url=PUBLIC)
    return ctx


@pytest.fixture
def fake() -> Iterator[FakeRobot]:
    server = FakeRobot()
    yield server
    server.close()


def _policy(ctx: AppContext) -> OutboundPolicy:
    return OutboundPolicy.from_settings(ctx.settings)


def _add_robot(ctx: AppContext, **fields: object) -> dict[str, object]:
    return ctx.db.write_sync(lambda c: robots.set_robot(c, now=ctx.clock.now(), policy=_policy(ctx), **fields))  # type: ignore[arg-type]


def _user_id(ctx: AppContext, username: str) -> int:
    return int(ctx.db.read_sync(lambda c: c.execute(sa.select(users.c.id).where(users.c.username == username))
                                .scalar_one()))


def _run(ctx: AppContext, *, policy: RetryPolicy | None = None, rounds: int = 1, step: float = 0.0) -> None:
    async def go() -> None:
        async with outbound.async_client(_policy(ctx)) as client:
            install(ctx, client=client)
            runner = Runner(ctx, policy=policy) if policy else Runner(ctx)
            for _ in range(rounds):
                await runner.run_until_idle()
                ctx.clock.advance(seconds=step)

    asyncio.run(go())


def _robot_messages(ctx: AppContext) -> list[sa.Row]:
    return ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages).where(outbox_messages.c.channel == "robot")
                                                .order_by(outbox_messages.c.id)).all())


def test_a_wecom_robot_gets_the_documented_markdown_and_the_assignee_is_mentioned_by_mobile(
        robot_ctx: AppContext, city: City, staff: Staff, fake: FakeRobot) -> None:
    ctx = robot_ctx
    url = fake.url("/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa")
    _add_robot(ctx, name="城管群", kind="wecom", url=url, department_ids=[CHENGGUAN],
               events=["dispatched", "assigned", "escalated", "low_rating"])
    handler = _user_id(ctx, "chengguan")
    ctx.db.write_sync(lambda c: robots.set_link(c, user_id=handler, mobile="139 1234 5678", wecom_userid="zhangwei",
                                                now=ctx.clock.now()))

    case_id = open_case(city, phone="13700001111", last_name="李", first_name="小明")  # dispatched to 城管 by the intake
    _run(ctx)
    lead_user = ctx.db.read_sync(lambda c: get_user(c, _user_id(ctx, "chengguan-lead")))
    assert lead_user is not None
    lead = Actor.staff(lead_user)
    ctx.db.write_sync(lambda c: handling.assign(c, case_id, handler, lead, ctx.clock.now()))
    _run(ctx, rounds=2, step=robots.SPACING.total_seconds())

    assert [r.path for r in fake.received] == ["/cgi-bin/webhook/send"] * 2
    assert all(r.query == {"key": "693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"} for r in fake.received)
    dispatched, assigned = (r.body for r in fake.received)
    link = f"{PUBLIC}/staff/cases/{case_id}"
    assert set(dispatched) == {"msgtype", "markdown"} and dispatched["msgtype"] == "markdown"
    content = dispatched["markdown"]["content"]
    assert content.startswith(f"**【新派遣】案件 #{case_id}**") and f"[在工作台查看]({link})" in content
    assert "井盖缺失" in content or "井盖" in content
    # A mention needs the text message: markdown cannot mention by mobile.
    assert assigned["msgtype"] == "text"
    assert assigned["text"]["mentioned_mobile_list"] == ["13912345678"]
    assert assigned["text"]["mentioned_list"] == ["zhangwei"]
    assert f"案件 #{case_id} 交由 城管 张伟 处置" in assigned["text"]["content"] and link in assigned["text"]["content"]
    # Group chats: nothing of the citizen.
    for r in fake.received:
        text = r.raw.decode()
        assert "13700001111" not in text and "小明" not in text and "井盖没了" not in text
    assert [m.status for m in _robot_messages(ctx)] == ["delivered", "delivered"]
    # The staff member's mobile left the platform: on the record.
    audits = ctx.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.target)
                                                  .where(audit_log.c.action.like("staff_link.%"))).all())
    assert [tuple(a) for a in audits] == [("staff_link.set", f"user:{handler}"), ("staff_link.mention", f"user:{handler}")]


def test_dispatching_a_case_to_a_department_with_a_robot_delivers_exactly_one_message(
        robot_ctx: AppContext, city: City, staff: Staff, fake: FakeRobot) -> None:
    ctx = robot_ctx
    _add_robot(ctx, name="住建群", kind="wecom", url=fake.url("/send?key=k1"), department_ids=[3], events=["dispatched"])
    case_id = open_case(city)  # 城管's: not this robot's department
    _run(ctx)
    assert fake.received == []
    ctx.db.write_sync(lambda c: engine.transfer(c, case_id, 3, staff.dispatcher, ctx.clock.now(), note="属住建职责"))
    _run(ctx, rounds=3, step=60)
    assert len(fake.received) == 1
    assert f"/staff/cases/{case_id}" in fake.received[0].body["markdown"]["content"]
    assert "市住房和城乡建设局" in fake.received[0].body["markdown"]["content"]
    assert [m.status for m in _robot_messages(ctx)] == ["delivered"]


def test_a_dingtalk_robot_is_signed_and_mentions_by_mobile(robot_ctx: AppContext, city: City, fake: FakeRobot) -> None:
    ctx = robot_ctx
    secret = "SECb5a1c0d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1"
    _add_robot(ctx, name="督办群", kind="dingtalk", url=fake.url("/robot/send?access_token=abc123"), secret=secret,
               events=["low_rating"], locale="en")
    handler = _user_id(ctx, "chengguan")
    ctx.db.write_sync(lambda c: robots.set_link(c, user_id=handler, mobile="13912345678", wecom_userid=None,
                                                now=ctx.clock.now()))
    case_id = open_case(city)
    ctx.db.write_sync(lambda c: c.execute(sa.text("UPDATE cases SET assignee_id = :u WHERE id = :c"),
                                          {"u": handler, "c": case_id}))
    ctx.db.write_sync(lambda c: notifications.low_rating(c, case_id=case_id, stars=1, now=ctx.clock.now()))
    before = int(time.time() * 1000)
    _run(ctx)
    [got] = fake.received
    assert got.path == "/robot/send" and got.query["access_token"] == "abc123"
    timestamp = got.query["timestamp"]
    assert abs(int(timestamp) - before) < 60_000  # DingTalk refuses a timestamp more than an hour off
    expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest())
    assert got.query["sign"] == expected.decode()
    body = got.body
    assert body["msgtype"] == "markdown" and body["at"] == {"atMobiles": ["13912345678"], "isAtAll": False}
    # One person mentioned: their language (the demo's handler reads Chinese), whatever the robot's.
    assert body["markdown"]["title"] == f"【差评回访】案件 #{case_id} 收到 1 星评价"
    assert "@13912345678" in body["markdown"]["text"] and f"{PUBLIC}/staff/cases/{case_id}" in body["markdown"]["text"]


def test_a_citizen_s_urge_of_a_case_nobody_holds_mentions_the_department_s_supervisors(
        robot_ctx: AppContext, city: City, fake: FakeRobot) -> None:
    ctx = robot_ctx
    _add_robot(ctx, name="城管群", kind="wecom", url=fake.url("/send?key=k2"), department_ids=[CHENGGUAN],
               events=["citizen_urged"])
    lead = _user_id(ctx, "chengguan-lead")
    ctx.db.write_sync(lambda c: robots.set_link(c, user_id=lead, mobile="13811112222", wecom_userid=None,
                                                now=ctx.clock.now()))
    case_id = open_case(city)  # dispatched to 城管, not yet taken by anyone
    token = ctx.db.read_sync(lambda c: c.execute(sa.text("SELECT token FROM reports WHERE case_id = :c"),
                                                 {"c": case_id}).scalar_one())
    ctx.clock.advance(hours=25)
    ctx.db.write_sync(lambda c: citizen_voice.urge(c, token, ctx.clock.now()))
    _run(ctx)
    [got] = fake.received  # the robot hears of urges only, not of the dispatch
    assert got.body["msgtype"] == "text" and got.body["text"]["mentioned_mobile_list"] == ["13811112222"]
    assert f"【市民催办】案件 #{case_id}" in got.body["text"]["content"]


def test_an_errcode_answer_is_a_failure_retried_then_dead(robot_ctx: AppContext, city: City) -> None:
    ctx = robot_ctx
    busy = FakeRobot(answer={"errcode": 45009, "errmsg": "api freq out of limit"})  # HTTP 200 all the same
    try:
        _add_robot(ctx, name="城管群", kind="wecom", url=busy.url("/send?key=k2"), events=["dispatched"])
        open_case(city)
        policy = RetryPolicy(max_attempts=2, base_seconds=10, jitter=0)
        _run(ctx, policy=policy)
        [message] = _robot_messages(ctx)
        assert (message.status, message.attempts) == ("pending", 1)
        assert "errcode 45009" in message.last_error and "k2" not in message.last_error  # the key stays out of it
        ctx.clock.advance(seconds=10)
        _run(ctx, policy=policy)
        [message] = _robot_messages(ctx)
        assert (message.status, message.attempts) == ("dead", 2)
        assert len(busy.received) == 2
    finally:
        busy.close()


def test_the_generic_webhook_carries_the_hmac_signature(robot_ctx: AppContext, city: City, fake: FakeRobot) -> None:
    ctx = robot_ctx
    robot = _add_robot(ctx, name="区网格系统", kind="webhook", url=fake.url("/hooks/wecity"), events=["dispatched"])
    assert robot["secret"]  # generated, shown once
    case_id = open_case(city)
    _run(ctx)
    [got] = fake.received
    assert service.verify(str(robot["secret"]), got.raw, got.headers["x-wecity-signature"])
    assert not service.verify("another secret", got.raw, got.headers["x-wecity-signature"])
    body = got.body
    assert (body["event"], body["case_id"], body["link"]) == ("case.dispatched", case_id, f"{PUBLIC}/staff/cases/{case_id}")
    assert got.headers["x-wecity-message-id"].isdigit()


def test_an_event_fanned_out_twice_queues_one_message_per_robot(robot_ctx: AppContext, city: City) -> None:
    ctx = robot_ctx
    robot = _add_robot(ctx, name="城管群", kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k3",
                       events=["dispatched"])
    case_id = open_case(city)
    [event] = ctx.db.read_sync(lambda c: c.execute(sa.select(outbox_messages).where(
        outbox_messages.c.channel == "staff_event")).all())
    assert event.payload["case_id"] == case_id and "phone" not in event.payload

    def fan(conn: sa.Connection) -> list[int]:
        return robots.fan_out(conn, message_id=event.id, event=event.payload, robot_ids=[int(robot["id"])],  # type: ignore[call-overload]
                              now=ctx.clock.now(), public_url=PUBLIC)

    first = ctx.db.write_sync(fan)
    assert len(first) == 1
    assert ctx.db.write_sync(fan) == []
    assert len(_robot_messages(ctx)) == 1


def test_a_burst_for_one_robot_is_spread_to_twenty_a_minute_and_none_is_dropped(robot_ctx: AppContext,
                                                                                 city: City) -> None:
    ctx = robot_ctx
    robot = _add_robot(ctx, name="城管群", kind="wecom", url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k4",
                       events=["escalated"])
    case_id = open_case(city)
    now = ctx.clock.now()

    def burst(conn: sa.Connection) -> None:
        for n in range(45):
            event = {"event": "escalated", "detail": "resolve_escalated", "case_id": case_id, "category": "manhole",
                     "department_id": CHENGGUAN, "assignee_id": None, "stars": None, "at": now.isoformat()}
            robots.fan_out(conn, message_id=10_000 + n, event=event, robot_ids=[int(robot["id"])],  # type: ignore[call-overload]
                           now=now, public_url=PUBLIC)

    ctx.db.write_sync(burst)
    due = sorted(m.next_attempt_at for m in _robot_messages(ctx))
    assert len(due) == 45
    assert due[0] == now
    for i, first in enumerate(due):
        within_a_minute = [d for d in due[i:] if d < first + timedelta(minutes=1)]
        assert len(within_a_minute) <= robots.ROBOT_MESSAGES_PER_MINUTE
    assert due[-1] - due[0] == robots.SPACING * 44


def test_robot_urls_go_through_the_outbound_policy(ctx: AppContext) -> None:
    policy = OutboundPolicy.from_settings(ctx.settings)  # nothing internal allowed
    for url in ("http://127.0.0.1:8080/send?key=k", "http://169.254.169.254/send?key=k", "ftp://robot.example/?key=k"):
        with pytest.raises(ValidationFailed):
            ctx.db.write_sync(lambda c, url=url: robots.set_robot(c, name="x", kind="wecom", url=url, events=["dispatched"],
                                                                  now=ctx.clock.now(), policy=policy))
    with pytest.raises(ValidationFailed, match="access_token"):
        ctx.db.write_sync(lambda c: robots.set_robot(c, name="x", kind="dingtalk", url="https://oapi.dingtalk.com/robot/send",
                                                     events=["dispatched"], now=ctx.clock.now(), policy=policy))
    assert ctx.db.read_sync(outbox.counts)["pending"] == 0
    assert ctx.db.read_sync(robots.list_robots) == []
