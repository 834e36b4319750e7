"""`wecity user ...`, `wecity apikey ...` and `wecity audit ...`: staff users, API keys, the audit log."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from wecity.core.commands import cli_actor, database, now


def cmd_user_add(args: argparse.Namespace) -> int:
    from wecity.identity.audit import record_audit
    from wecity.identity.service import add_user

    password = args.password or os.environ.get("WECITY_NEW_USER_PASSWORD")
    if not password:
        password = getpass.getpass("password / 密码: ")
    db = database()
    at = now()

    def write(conn: Any) -> int:
        user_id = add_user(conn, username=args.username, password=password, display_name=args.name or args.username,
                           department_code=args.department, roles=args.role or [], phone=args.phone, email=args.email,
                           now=at)
        record_audit(conn, at=at, actor=cli_actor(), action="user.add", target=f"user:{user_id}",
                     detail={"username": args.username, "roles": sorted(args.role or []),
                             "department": args.department})
        return user_id

    user_id = db.write_sync(write)
    print(f"user {args.username} added (id {user_id}) / 已添加用户 {args.username}")
    return 0


def cmd_apikey_add(args: argparse.Namespace) -> int:
    from wecity.identity.audit import record_audit
    from wecity.identity.service import add_api_key

    db = database()
    at = now()

    def write(conn: Any) -> str:
        key = add_api_key(conn, name=args.name, username=args.user, scopes=args.scope, tenant=args.tenant, now=at)
        record_audit(conn, at=at, actor=cli_actor(), action="apikey.add", target=f"apikey:{key[:10]}",
                     detail={"name": args.name, "user": args.user, "scopes": sorted(args.scope or []),
                             "tenant": args.tenant})
        return key

    key = db.write_sync(write)
    print("API key (shown once; keep it safe) / API 密钥（仅显示一次，请妥善保存）:")
    print(key)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    from wecity.identity.service import list_api_keys

    keys = database().read_sync(list_api_keys)
    print("prefix / 前缀  name / 名称  user / 用户  scopes / 权限  tenant / 租户  created / 创建  revoked / 吊销")
    for k in keys:
        print(f"{k['prefix']}…  {k['name']}  {k['username'] or '-'}  {k['scopes']}  {k['tenant'] or '(default)'}  "
              f"{k['created_at']:%Y-%m-%d %H:%M}  {k['revoked_at'] and format(k['revoked_at'], '%Y-%m-%d %H:%M') or '-'}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    from wecity.identity.audit import record_audit
    from wecity.identity.service import revoke_api_key

    at = now()

    def write(conn: Any) -> int:
        done = revoke_api_key(conn, args.prefix, at)
        if done:
            record_audit(conn, at=at, actor=cli_actor(), action="apikey.revoke",
                         target=f"apikey:{args.prefix.rstrip('…')[:10]}", detail={"revoked": done})
        return done

    done = database().write_sync(write)
    if not done:
        print(f"no live key starts with {args.prefix!r} / 没有以 {args.prefix!r} 开头的有效密钥", file=sys.stderr)
        return 1
    print(f"revoked {done} key(s) / 已吊销 {done} 个密钥")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from wecity.identity.audit import verify_chain

    db = database()
    try:
        found = db.read_sync(verify_chain)
    finally:
        db.close()
    if not found.intact:
        print(f"audit log broken at entry {found.broken_id} ({found.broken_at:%Y-%m-%d %H:%M:%S} UTC, "
              f"{found.broken_action}): its hash does not match, so it or an entry before it was changed or removed; "
              f"the {found.checked} entries before it verify / 审计日志在第 {found.broken_id} 条处断裂"
              f"（{found.broken_at:%Y-%m-%d %H:%M:%S} UTC，{found.broken_action}）：哈希不符，该条或其之前的记录"
              f"被修改或删除；其前 {found.checked} 条校验通过", file=sys.stderr)
        return 1
    if found.last_id is None:
        print("audit log is empty / 审计日志为空")
        return 0
    print(f"audit log intact: {found.checked} entries / 审计日志完整：共 {found.checked} 条")
    print(f"last entry / 最后一条: {found.last_id} {found.last_hash}")
    print("keep that line somewhere else: a log with entries removed from its end still verifies, and only an "
          "older copy of that line shows it / 请另行保存上一行：从末尾删除记录后的日志仍能通过校验，只有保存的这一行能发现")
    return 0


def add_commands(sub: Any) -> None:
    user = sub.add_parser("user", help="staff users / 工作人员").add_subparsers(dest="user_command", required=True)
    uadd = user.add_parser("add", help="add a staff user / 添加工作人员")
    uadd.add_argument("username")
    uadd.add_argument("--name", help="display name / 显示名称")
    uadd.add_argument("--department", help="department code / 部门代码")
    uadd.add_argument("--role", action="append", choices=["handler", "dispatcher", "supervisor", "admin"])
    uadd.add_argument("--password", help="else WECITY_NEW_USER_PASSWORD or a prompt / 否则读取环境变量或提示输入")
    uadd.add_argument("--phone")
    uadd.add_argument("--email")
    uadd.set_defaults(func=cmd_user_add)

    key = sub.add_parser("apikey", help="API keys / API 密钥").add_subparsers(dest="apikey_command", required=True)
    kadd = key.add_parser("add", help="create an API key / 创建 API 密钥")
    kadd.add_argument("name")
    kadd.add_argument("--user", help="owner username / 所属用户")
    kadd.add_argument("--scope", action="append", required=True, metavar="SCOPE",
                      help="what the key may do, repeatable: open311:write, ngsild:read, ngsild:write, admin "
                           "/ 权限范围，可重复")
    kadd.add_argument("--tenant", default="", help='NGSI-LD tenant ("" the default one, "*" any) / 租户')
    kadd.set_defaults(func=cmd_apikey_add)
    key.add_parser("list", help="list API keys / 列出 API 密钥").set_defaults(func=cmd_apikey_list)
    krev = key.add_parser("revoke", help="revoke an API key / 吊销 API 密钥")
    krev.add_argument("prefix", help="the key, or its first 10 characters as `list` shows / 密钥或其前 10 个字符")
    krev.set_defaults(func=cmd_apikey_revoke)

    audit = sub.add_parser("audit", help="the audit log / 审计日志").add_subparsers(dest="audit_command", required=True)
    audit.add_parser("verify", help="check the audit log's hash chain / 校验审计日志哈希链").set_defaults(
        func=cmd_audit_verify)
