"""`wecity device ...`: provision devices from a CSV, list them, remove one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from wecity.core.commands import database, now


def cmd_import(args: argparse.Namespace) -> int:
    from wecity.iot.provisioning import import_devices

    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error / 错误: cannot read {args.file} (UTF-8 CSV expected) / 无法读取 {args.file}（需 UTF-8 CSV）: {exc}",
              file=sys.stderr)
        return 2
    db = database(pool_size=1)
    try:
        done = db.write_sync(lambda conn: import_devices(conn, text, now()))
    finally:
        db.close()
    print(f"provisioned {len(done)} devices / 已登记 {len(done)} 台设备")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from wecity.iot.service import list_devices

    db = database(pool_size=1)
    try:
        devices = db.read_sync(list_devices, args.tenant)
    finally:
        db.close()
    print("tenant / 租户  device / 设备  entity / 实体  type / 类型")
    for d in devices:
        print(f"{d.tenant or '-'}  {d.device_id}  {d.entity_id}  {d.entity_type}")
    print(f"{len(devices)} devices / 台设备", file=sys.stderr)
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from wecity.iot.service import remove

    db = database(pool_size=1)
    try:
        db.write_sync(remove, args.tenant, args.device_id)
    finally:
        db.close()
    print(f"removed {args.device_id} / 已删除 {args.device_id}")
    return 0


def add_commands(sub: Any) -> None:
    device = sub.add_parser("device", help="MQTT devices / 物联设备").add_subparsers(dest="device_command", required=True)
    imp = device.add_parser("import", help="provision devices from a CSV file (all or nothing) / 从 CSV 批量登记设备")
    imp.add_argument("file", help="columns device_id, entity_id, entity_type[, tenant, attribute_map] / CSV 文件")
    imp.set_defaults(func=cmd_import)
    lst = device.add_parser("list", help="list provisioned devices / 列出设备")
    lst.add_argument("--tenant", default=None, help="only this NGSI-LD tenant / 仅此租户")
    lst.set_defaults(func=cmd_list)
    rem = device.add_parser("remove", help="remove a device / 删除设备")
    rem.add_argument("device_id")
    rem.add_argument("--tenant", default="", help="the device's NGSI-LD tenant / 设备所属租户")
    rem.set_defaults(func=cmd_remove)
