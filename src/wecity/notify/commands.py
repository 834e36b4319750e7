"""`wecity notify ...`: named notification gateways and group robots."""

from __future__ import annotations

import argparse
from typing import Any

from wecity.core.commands import opened
from wecity.notify.choices import RobotEvent


def cmd_add_webhook(args: argparse.Namespace) -> int:
    from wecity.core.commands import cli_actor
    from wecity.core.outbound import shown_url
    from wecity.identity.audit import record_audit
    from wecity.notify.service import set_webhook

    with opened() as ctx:
        def write(conn: Any) -> str:
            secret = set_webhook(conn, name=args.name, url=args.url, secret=args.secret, now=ctx.clock.now())
            record_audit(conn, at=ctx.clock.now(), actor=cli_actor(), action="webhook.set",
                         target=f"webhook:{args.name}", detail={"url": shown_url(args.url)})  # no key kept
            return secret

        secret = ctx.db.write_sync(write)
        print(f"webhook {args.name} -> {args.url}; signing secret / 签名密钥: {secret}")
    return 0


def cmd_add_robot(args: argparse.Namespace) -> int:
    from wecity.core.commands import cli_actor
    from wecity.core.outbound import OutboundPolicy
    from wecity.identity.audit import record_audit
    from wecity.identity.service import department_id_by_code
    from wecity.notify import robots

    with opened() as ctx:
        def write(conn: Any) -> dict[str, Any]:
            department_ids = [department_id_by_code(conn, code) for code in args.department or ()]
            robot = robots.set_robot(conn, name=args.name, kind=args.kind, url=args.url, secret=args.secret,
                                     department_ids=department_ids, events=args.event or ["dispatched", "escalated"],
                                     locale=args.locale, now=ctx.clock.now(),
                                     policy=OutboundPolicy.from_settings(ctx.settings))
            record_audit(conn, at=ctx.clock.now(), actor=cli_actor(), action="robot.set", target=f"robot:{robot['id']}",
                         detail={"name": robot["name"], "kind": robot["kind"], "departments": robot["department_ids"],
                                 "events": robot["events"], "active": robot["active"]})
            return robot

        robot = ctx.db.write_sync(write)
        shown = robots.public_robot(robot)
        print(f"robot {shown['name']} ({shown['kind']}) -> {shown['url']}; events / 事件: {', '.join(shown['events'])}")
        if args.kind == "webhook" and not args.secret:
            print(f"signing secret / 签名密钥: {robot['secret']}")
    return 0


def cmd_list_robots(args: argparse.Namespace) -> int:
    from wecity.notify import robots

    with opened() as ctx:
        for robot in ctx.db.read_sync(robots.list_robots):
            shown = robots.public_robot(robot)
            print(f"{shown['id']}\t{shown['name']}\t{shown['kind']}\t{'on' if shown['active'] else 'off'}\t"
                  f"{shown['url']}\t{','.join(shown['events'])}\tdepartments={shown['department_ids'] or 'all'}")
    return 0


def cmd_remove_robot(args: argparse.Namespace) -> int:
    from wecity.core.commands import cli_actor
    from wecity.identity.audit import record_audit
    from wecity.notify import robots

    with opened() as ctx:
        def remove(conn: Any) -> dict[str, Any]:
            robot = robots.remove_robot(conn, args.id)
            record_audit(conn, at=ctx.clock.now(), actor=cli_actor(), action="robot.remove",
                         target=f"robot:{args.id}", detail={"name": robot["name"]})
            return robot

        robot = ctx.db.write_sync(remove)
        print(f"removed robot {robot['name']} / 已删除机器人")
    return 0


def add_commands(sub: Any) -> None:
    notify = sub.add_parser("notify", help="notification gateways / 通知网关").add_subparsers(
        dest="notify_command", required=True)
    wh = notify.add_parser("add-webhook", help="add a named webhook (sms, wechat, ...) / 添加 Webhook 网关")
    wh.add_argument("name")
    wh.add_argument("url")
    wh.add_argument("--secret", help="signing secret (default: generated) / 签名密钥（默认自动生成）")
    wh.set_defaults(func=cmd_add_webhook)

    robot = notify.add_parser("add-robot", help="add or replace a group robot (WeCom, DingTalk) or webhook / "
                              "添加或替换群机器人")
    robot.add_argument("name")
    robot.add_argument("kind", choices=["wecom", "dingtalk", "webhook"])
    robot.add_argument("url", help="the robot's webhook address, with its key or access_token / 机器人 Webhook 地址")
    robot.add_argument("--secret", help="DingTalk 加签 secret (SEC...), or a webhook's signing secret / 加签密钥")
    robot.add_argument("--department", action="append", help="department code, repeatable (default: all) / 部门代码")
    robot.add_argument("--event", action="append", choices=[e.value for e in RobotEvent],
                       help="repeatable (default: dispatched and escalated) / 事件")
    robot.add_argument("--locale", default="zh_CN", choices=["zh_CN", "en"])
    robot.set_defaults(func=cmd_add_robot)
    notify.add_parser("list-robots", help="the group robots / 群机器人列表").set_defaults(func=cmd_list_robots)
    remove = notify.add_parser("remove-robot", help="remove a group robot / 删除群机器人")
    remove.add_argument("id", type=int)
    remove.set_defaults(func=cmd_remove_robot)
