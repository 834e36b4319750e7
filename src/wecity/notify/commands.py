"""`wecity notify ...`: named notification gateways."""

from __future__ import annotations

import argparse
from typing import Any

from wecity.core.commands import opened


def cmd_add_webhook(args: argparse.Namespace) -> int:
    from wecity.notify.service import set_webhook

    with opened() as ctx:
        secret = ctx.db.write_sync(lambda c: set_webhook(c, name=args.name, url=args.url, secret=args.secret,
                                                         now=ctx.clock.now()))
        print(f"webhook {args.name} -> {args.url}; signing secret / 签名密钥: {secret}")
    return 0


def add_commands(sub: Any) -> None:
    notify = sub.add_parser("notify", help="notification gateways / 通知网关").add_subparsers(
        dest="notify_command", required=True)
    wh = notify.add_parser("add-webhook", help="add a named webhook (sms, wechat, ...) / 添加 Webhook 网关")
    wh.add_argument("name")
    wh.add_argument("url")
    wh.add_argument("--secret", help="signing secret (default: generated) / 签名密钥（默认自动生成）")
    wh.set_defaults(func=cmd_add_webhook)
