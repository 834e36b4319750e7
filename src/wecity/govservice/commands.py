"""`wecity govservice ...`: the catalogue of matters in and out as JSON, and the certificate key."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from wecity.core.commands import opened


def cmd_import(args: argparse.Namespace) -> int:
    from wecity.govservice.catalogue import import_catalogue

    document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    with opened() as ctx:
        counts = ctx.db.write_sync(lambda c: import_catalogue(c, document, now=ctx.clock.now()))
    print(f"matters / 事项: {counts['created']} created / 新增, {counts['updated']} updated / 更新, "
          f"{counts['unchanged']} unchanged / 未变")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wecity.govservice.catalogue import export_catalogue

    with opened() as ctx:
        document = ctx.db.read_sync(export_catalogue)
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"{len(document['matters'])} matters written to / 个事项已写入 {args.file}")
    return 0


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from wecity.govservice.certificates import rotate_key

    with opened() as ctx:
        key = ctx.db.write_sync(lambda c: rotate_key(c, ctx.settings.var_dir, ctx.clock.now()))
    print(f"new certificate signing key / 新的证照签名密钥: {key.key_id}")
    return 0


def add_commands(sub: Any) -> None:
    gov = sub.add_parser("govservice", help="digital government: matters, certificates / 政务服务：事项、证照").add_subparsers(
        dest="govservice_command", required=True)
    imp = gov.add_parser("import-matters", help="load a catalogue of matters (JSON) / 导入事项目录")
    imp.add_argument("file")
    imp.set_defaults(func=cmd_import)
    exp = gov.add_parser("export-matters", help="write the catalogue as JSON / 导出事项目录")
    exp.add_argument("file", nargs="?", default="-")
    exp.set_defaults(func=cmd_export)
    rot = gov.add_parser("rotate-key", help="retire the certificate signing key, make a new one / 轮换证照签名密钥")
    rot.set_defaults(func=cmd_rotate_key)
