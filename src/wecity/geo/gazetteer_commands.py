"""`wecity city import-gazetteer`: build the address search's gazetteer from an OpenStreetMap extract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def cmd_import_gazetteer(args: argparse.Namespace) -> int:
    from wecity.core.settings import load_settings
    from wecity.geo.gazetteer import build_gazetteer
    from wecity.geo.geocode import GAZETTEER_FILE

    out = Path(args.out) if args.out else load_settings().var_dir / GAZETTEER_FILE
    try:
        stats = build_gazetteer(Path(args.file), out)
    except ValueError as exc:
        print(f"cannot import / 无法导入: {exc}", file=sys.stderr)
        return 2
    print(f"{out}: {stats.roads} roads / 道路, {stats.pois} POIs / 兴趣点, {stats.addresses} addresses / 门牌, "
          f"{stats.places} places / 地名, {stats.boundaries} boundaries / 行政区 in {stats.seconds:.1f} s "
          f"({stats.bytes // 1024} KiB); running servers use it from their next search / 运行中的服务下次查询即启用")
    return 0


def add(city: Any) -> None:
    """The gazetteer's sub-command of `wecity city`."""
    imp = city.add_parser("import-gazetteer", help="address search from an OSM extract / 从 OSM 数据导入地名库")
    imp.add_argument("file", help="an OpenStreetMap extract (.osm.pbf) / OSM 数据文件")
    imp.add_argument("--out", help="the gazetteer file (default: <var dir>/gazetteer.sqlite) / 地名库文件")
    imp.set_defaults(func=cmd_import_gazetteer)
