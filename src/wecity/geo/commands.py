"""`wecity city ...`: import the city's districts, find the area of a point, import the base map and the gazetteer."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from wecity.core.commands import database, now
from wecity.geo import gazetteer_commands


def cmd_import_areas(args: argparse.Namespace) -> int:
    from wecity.geo.service import import_areas, read_feature_collection

    db = database()
    features = read_feature_collection(Path(args.file))
    names = db.write_sync(lambda conn: import_areas(conn, features, coord_system=args.crs, now=now(),
                                                    name_property=args.name_property, replace=not args.keep))
    print(f"imported {len(names)} areas / 已导入 {len(names)} 个区域: {', '.join(names)}")
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    from wecity.geo.coords import to_wgs84
    from wecity.geo.service import load_area_index

    db = database()
    index = db.read_sync(load_area_index)
    lat, lon = to_wgs84(args.lat, args.long, args.coord_system)
    area = index.locate(lat, lon)
    if area is None:
        print(f"({lat:.6f}, {lon:.6f}) is outside the city / 不在本市范围内")
        return 1
    print(f"({lat:.6f}, {lon:.6f}) is in / 位于 {area.name_zh} {area.name_en} (id {area.id}, code {area.code})")
    return 0


def cmd_import_basemap(args: argparse.Namespace) -> int:
    from wecity.core.settings import load_settings
    from wecity.geo.basemap import basemap_dir, import_basemap

    var_dir = load_settings().var_dir
    out = Path(args.out) if args.out else basemap_dir(var_dir)
    meta = import_basemap(Path(args.file), out)
    west, south, east, north = meta["bounds"]
    print(f"base map / 底图: {out / meta['tiles']} ({meta['bytes'] / 1e6:.1f} MB, {meta['tile_count']} tiles, "
          f"z{meta['minzoom']}-{meta['maxzoom']}, {west:.4f},{south:.4f},{east:.4f},{north:.4f}) "
          f"in {meta['build_seconds']} s; {meta['attribution']}")
    if args.no_gazetteer:
        return 0
    # The same extract names the streets the map draws: the address search is built from it too, so the
    # map and the search never disagree about a street.
    gazetteer_args = argparse.Namespace(file=args.file, out=args.gazetteer_out)
    return gazetteer_commands.cmd_import_gazetteer(gazetteer_args)


def add_commands(sub: Any) -> None:
    city = sub.add_parser("city", help="the city model / 城市模型").add_subparsers(dest="city_command", required=True)
    imp = city.add_parser("import-areas", help="import districts from GeoJSON / 从 GeoJSON 导入区域")
    imp.add_argument("file")
    imp.add_argument("--crs", required=True, choices=["gcj02", "wgs84", "bd09"],
                     help="coordinate system of the file / 文件坐标系")
    imp.add_argument("--name-property", default="name", help="feature property with the name / 名称属性")
    imp.add_argument("--keep", action="store_true", help="keep areas not in the file / 保留文件中没有的区域")
    imp.set_defaults(func=cmd_import_areas)
    loc = city.add_parser("locate", help="which area contains a point / 查询坐标所在区域")
    loc.add_argument("lat", type=float)
    loc.add_argument("long", type=float)
    loc.add_argument("--coord-system", default="wgs84", choices=["wgs84", "gcj02", "bd09"])
    loc.set_defaults(func=cmd_locate)
    gazetteer_commands.add(city)
    basemap = city.add_parser("import-basemap", help="build the street map from an OpenStreetMap extract / "
                                                      "从 OpenStreetMap 数据生成街道底图")
    basemap.add_argument("file", help="the extract, .osm.pbf / OSM 数据文件（.osm.pbf）")
    basemap.add_argument("--out", help="folder for city.pmtiles and basemap.json (default: <var>/basemap) / 输出目录")
    basemap.add_argument("--no-gazetteer", action="store_true",
                         help="the map only, not the address search from the same extract / 只生成底图，不生成地名库")
    basemap.add_argument("--gazetteer-out", help="the gazetteer file (default: <var dir>/gazetteer.sqlite) / 地名库文件")
    basemap.set_defaults(func=cmd_import_basemap)
