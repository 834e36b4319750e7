"""`wecity enterprise ...`: import the register and the policies, match, and export the policies."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from wecity.core.commands import opened


def cmd_import(args: argparse.Namespace) -> int:
    from wecity.core.commands import cli_actor
    from wecity.enterprise.register import import_table

    path = Path(args.file)
    with opened() as ctx:
        counts = ctx.db.write_sync(lambda c: import_table(c, path.read_bytes(), path.name, now=ctx.clock.now(),
                                                          actor=cli_actor()))
    print(f"{counts['added']} added, {counts['changed']} changed, {counts['unchanged']} unchanged / "
          f"新增 {counts['added']}，更新 {counts['changed']}，未变 {counts['unchanged']}")
    return 0


def cmd_import_policies(args: argparse.Namespace) -> int:
    from wecity.enterprise.catalogue import import_policies

    document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    with opened() as ctx:
        counts = ctx.db.write_sync(lambda c: import_policies(c, document, now=ctx.clock.now(), actor="cli"))
    print(f"policies: {counts['added']} added, {counts['changed']} changed, {counts['unchanged']} unchanged / "
          f"政策：新增 {counts['added']}，新版本 {counts['changed']}，未变 {counts['unchanged']}")
    return 0


def cmd_export_policies(args: argparse.Namespace) -> int:
    from wecity.enterprise.catalogue import export_policies

    with opened() as ctx:
        document = ctx.db.read_sync(export_policies)
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2, default=str) + "\n")
    return 0


def cmd_match(args: argparse.Namespace) -> int:
    from wecity.enterprise.matching import match_all

    with opened() as ctx:
        start = time.perf_counter()
        report = ctx.db.write_sync(lambda c: match_all(c, now=ctx.clock.now()))
        took = time.perf_counter() - start
    o = report.outcomes
    print(f"{report.enterprises:,} enterprises x {report.policies} policies in {took:.1f} s: "
          f"{o['eligible']:,} eligible, {o['unknown']:,} unknown, {o['ineligible']:,} ineligible; "
          f"{report.written:,} written, {report.removed:,} removed / "
          f"{report.enterprises:,} 家企业 x {report.policies} 项政策，用时 {took:.1f} 秒")
    return 0


def add_commands(sub: Any) -> None:
    ent = sub.add_parser("enterprise", help="enterprise register and policies / 企业档案与惠企政策").add_subparsers(
        dest="enterprise_command", required=True)
    imp = ent.add_parser("import", help="add or update enterprises from CSV or XLSX / 导入企业档案")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    pol = ent.add_parser("import-policies", help="load a wecity-policies/1 document / 导入政策")
    pol.add_argument("file")
    pol.set_defaults(func=cmd_import_policies)
    exp = ent.add_parser("export-policies", help="the policies as a wecity-policies/1 document / 导出政策")
    exp.set_defaults(func=cmd_export_policies)
    match = ent.add_parser("match", help="match every policy over the whole register / 全量政策匹配")
    match.set_defaults(func=cmd_match)
