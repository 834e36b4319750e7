"""`wecity data ...`: publish datasets into the catalogue from a JSON file, and export the catalogue."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from wecity.core.commands import opened


def cmd_publish(args: argparse.Namespace) -> int:
    from wecity.datashare.catalogue import publish_all

    document = json.loads(Path(args.file).read_text(encoding="utf-8"))
    with opened() as ctx:
        count = ctx.db.write_sync(lambda c: publish_all(c, document, now=ctx.clock.now()))
    print(f"{count} datasets published / 个数据集已发布")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from wecity.datashare.dcat import catalogue_graph
    from wecity.datashare.queries import published

    with opened() as ctx:
        items = ctx.db.read_sync(published)  # every published dataset, however many
    graph = catalogue_graph(items, base=args.base.rstrip("/"), title_zh="城市数据资源目录", title_en="City data catalogue")
    sys.stdout.write(graph.serialize(format="turtle" if args.format == "ttl" else "json-ld"))
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    from wecity.datashare import queries, uploads
    from wecity.geo.service import city_timezone
    from wecity.identity.audit import record_audit

    path = Path(args.file)
    with opened() as ctx:
        now = ctx.clock.now()
        d = ctx.db.read_sync(lambda c: queries.dataset(c, args.name))
        if (d["source"], d["source_ref"]) != ("table", "upload"):
            print(f"dataset {d['name']} is read from {d['source']}, not from an uploaded table / 该数据集不是上传表格",
                  file=sys.stderr)
            return 2
        zone = ctx.db.read_sync(city_timezone)
        rows = uploads.parse_rows(d, uploads.read_table(path.read_bytes(), path.name), zone=zone)

        def run(conn: Any) -> int:
            count = uploads.replace_rows(conn, d, rows, now=now)
            record_audit(conn, at=now, actor="cli", action="dataset.upload", target=f"dataset:{d['name']}",
                         detail={"rows": count, "file": path.name})
            return count

        count = ctx.db.write_sync(run)
    print(f"{count} rows uploaded to {d['name']} / 已上传 {count} 行")
    return 0


def add_commands(sub: Any) -> None:
    data = sub.add_parser("data", help="the data catalogue / 数据资源目录").add_subparsers(dest="data_command",
                                                                                      required=True)
    pub = data.add_parser("publish", help="publish datasets from a wecity-datasets/1 file / 发布数据集")
    pub.add_argument("file")
    pub.set_defaults(func=cmd_publish)
    up = data.add_parser("upload", help="replace an uploaded-table dataset's rows from CSV or XLSX / 上传表格数据")
    up.add_argument("name")
    up.add_argument("file")
    up.set_defaults(func=cmd_upload)
    exp = data.add_parser("export", help="the catalogue as DCAT-AP / 导出 DCAT-AP 目录")
    exp.add_argument("--format", choices=("ttl", "jsonld"), default="ttl")
    exp.add_argument("--base", default="http://127.0.0.1:8000", help="the platform's public address / 平台地址")
    exp.set_defaults(func=cmd_export)
