"""Commands of the base layer for `wecity`: runner, outbox dead letters, work calendar; and `opened`, the
context every domain's commands work in."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any


def database(pool_size: int = 2) -> Any:
    """The configured database, for a command that needs nothing else of the app."""
    from wecity.core.db import Database
    from wecity.core.settings import load_settings

    return Database(load_settings().database_url, pool_size=pool_size)


def now() -> Any:
    from wecity.core.clock import Clock

    return Clock().now()


def cli_actor() -> str:
    """Who a command's change is recorded as on the audit log: the operating-system account that ran it."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no name for the process's uid (a bare container)
        name = "unknown"
    return f"cli:{name}"[:100]


def context() -> Any:
    from wecity.core.assemble import build_context
    from wecity.core.settings import load_settings

    return build_context(load_settings(), pool_size=4)


@contextmanager
def opened() -> Iterator[Any]:
    """The app context a command works in (every domain wired in), its database closed afterwards."""
    ctx = context()
    try:
        yield ctx
    finally:
        ctx.db.close()


def cmd_runner(args: argparse.Namespace) -> int:
    from wecity.core.logs import configure_logging
    from wecity.core.runner import run_forever

    configure_logging()
    ctx = context()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print("runner started; Ctrl-C stops it / 后台任务已启动，按 Ctrl-C 停止", flush=True)
        await run_forever(ctx, stop, poll_seconds=args.poll, batch_size=args.batch, lease_seconds=args.lease,
                          delivery_timeout=args.timeout)

    try:
        asyncio.run(main())
    finally:
        ctx.db.close()
    return 0


def cmd_outbox_list(args: argparse.Namespace) -> int:
    from wecity.core import outbox

    with opened() as ctx:
        rows = ctx.db.read_sync(lambda c: outbox.list_messages(c, status=args.status, channel=args.channel,
                                                                limit=args.limit))
        counts = ctx.db.read_sync(outbox.counts)
        print(f"pending / 待发送 {counts['pending']}, delivered / 已送达 {counts['delivered']}, "
              f"dead / 死信 {counts['dead']}")
        for r in rows:
            print(f"#{r['id']:<7} {r['channel']:<8} {r['target'][:40]:<40} attempts/次数 {r['attempts']:<3} "
                  f"created/创建 {r['created_at']:%Y-%m-%d %H:%M} last error/最后错误: {r['last_error'] or '-'}")
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    from wecity.core import outbox

    with opened() as ctx:
        for message_id in args.ids:
            ctx.db.write_sync(lambda c, i=message_id: outbox.retry_dead(c, i, now=ctx.clock.now()))
            print(f"message {message_id} queued again / 消息 {message_id} 已重新排队")
    return 0


def cmd_calendar_list(args: argparse.Namespace) -> int:
    from wecity.core import worktime

    with opened() as ctx:
        for d in ctx.db.read_sync(worktime.list_days, args.year):
            kind = "放假 holiday" if d["kind"] == worktime.HOLIDAY else "上班 workday"
            print(f"{d['day']} {d['day']:%a} {kind:<12} {d['name_zh']} / {d['name_en']}")
    return 0


def cmd_calendar_load(args: argparse.Namespace) -> int:
    from wecity.core import worktime

    with opened() as ctx:
        n = ctx.db.write_sync(worktime.load_calendar_file, Path(args.file))
        print(f"{n} calendar days loaded / 已导入 {n} 个日历日")
    return 0


def cmd_calendar_set(args: argparse.Namespace) -> int:
    from wecity.core import worktime

    with opened() as ctx:
        day = date.fromisoformat(args.day)
        if args.kind == "normal":
            ctx.db.write_sync(worktime.remove_day, day)
        else:
            ctx.db.write_sync(worktime.set_days, [dict(day=day, kind=args.kind, name_zh=args.name_zh or args.kind,
                                                       name_en=args.name_en or args.kind, source="wecity calendar set")])
        print(f"{day} is now {args.kind} / 已设置")
    return 0


def add_commands(sub: Any) -> None:
    runner = sub.add_parser("runner", help="run background work only (outbox, jobs, SLA clocks) / 仅运行后台任务")
    runner.add_argument("--poll", type=float, default=1.0, help="seconds between polls when idle / 空闲轮询间隔秒数")
    runner.add_argument("--batch", type=int, default=100, help="messages claimed at a time / 每次领取的消息数")
    runner.add_argument("--lease", type=float, default=120.0,
                        help="seconds a claim lasts if this runner dies / 领取租约秒数（进程崩溃后由他人接手）")
    runner.add_argument("--timeout", type=float, default=30.0, help="seconds per delivery / 每次投递超时秒数")
    runner.set_defaults(func=cmd_runner)

    out = sub.add_parser("outbox", help="outgoing notifications / 待发消息").add_subparsers(
        dest="outbox_command", required=True)
    dead = out.add_parser("list-dead", help="list dead letters / 列出死信")
    dead.add_argument("--channel")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_outbox_list, status="dead")
    pend = out.add_parser("list-pending", help="list messages waiting to be sent / 列出待发送消息")
    pend.add_argument("--channel")
    pend.add_argument("--limit", type=int, default=100)
    pend.set_defaults(func=cmd_outbox_list, status="pending")
    retry = out.add_parser("retry", help="send dead letters again / 重新发送死信")
    retry.add_argument("ids", type=int, nargs="+", metavar="ID")
    retry.set_defaults(func=cmd_outbox_retry)

    cal = sub.add_parser("calendar", help="holidays and make-up working days / 节假日与调休").add_subparsers(
        dest="calendar_command", required=True)
    clist = cal.add_parser("list", help="days of a year that differ from Monday-Friday / 列出某年的节假日与调休")
    clist.add_argument("year", type=int)
    clist.set_defaults(func=cmd_calendar_list)
    cload = cal.add_parser("load", help="load a calendar file (format of cn-holidays.json) / 导入日历文件")
    cload.add_argument("file")
    cload.set_defaults(func=cmd_calendar_load)
    cset = cal.add_parser("set", help="make one day a holiday, a workday or normal / 设置某日")
    cset.add_argument("day", help="YYYY-MM-DD")
    cset.add_argument("kind", choices=["holiday", "workday", "normal"])
    cset.add_argument("--name-zh")
    cset.add_argument("--name-en")
    cset.set_defaults(func=cmd_calendar_set)
