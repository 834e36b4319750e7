"""The `wecity` command: serve the platform, run the demo city, manage the database and the city."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from wecity.core.errors import WeCityError


def _settings():  # noqa: ANN202
    from wecity.core.settings import load_settings

    return load_settings()


def _database(settings):  # noqa: ANN001, ANN202
    from wecity.core.db import Database

    return Database(settings.database_url, pool_size=2)


def _now():  # noqa: ANN202
    from wecity.core.clock import Clock

    return Clock().now()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from wecity.core.migrate import upgrade

    settings = _settings()
    db = _database(settings)
    upgrade(db.engine)
    print("database is up to date / 数据库已是最新版本")
    return 0


def _serve(settings, host: str, port: int, *, migrate: bool) -> int:  # noqa: ANN001
    import uvicorn

    from wecity.api.app import create_app
    from wecity.core.logs import configure_logging
    from wecity.core.migrate import upgrade

    configure_logging()
    if migrate:
        db = _database(settings)
        upgrade(db.engine)
        db.close()
    app = create_app(settings)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, loop="auto", http="auto")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.no_runner:
        from dataclasses import replace

        settings = replace(settings, run_background=False)
    return _serve(settings, args.host, args.port, migrate=not args.no_migrate)


def create_demo_database(settings, *, history: bool = True) -> str:  # noqa: ANN001
    """Wipe the configured database and seed the demo city into it; return the demo API key."""
    import sqlalchemy as sa

    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.demo.seed import seed_demo

    if settings.is_sqlite:
        path = Path(settings.database_url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    db = Database(settings.database_url, pool_size=2)
    if not settings.is_sqlite:
        with db.engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    upgrade(db.engine)
    key = db.write_sync(lambda conn: seed_demo(conn, _now(), settings, history=history))
    db.close()
    return key


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from wecity.demo.changsha import DEMO_PASSWORD, STAFF

    settings = _settings()
    if not os.environ.get("WECITY_DATABASE_URL"):
        settings = replace(settings, database_url=f"sqlite:///{settings.var_dir / 'demo.db'}")
    if args.simulate_sensors and not settings.mqtt_url:
        settings = replace(settings, mqtt_url="mqtt://127.0.0.1:1883")
    print("creating the demo city 长沙市 with 30 days of history / 正在生成演示城市…", flush=True)
    key = create_demo_database(settings, history=not args.no_history)
    url = f"http://{args.host}:{args.port}"
    print(f"\nWeCity demo city 长沙市 / Changsha is at {url}\n")
    print(f"Staff logins / 工作人员账号 (password / 密码: {DEMO_PASSWORD}):")
    for username, name, dept, roles, _phone in STAFF:
        print(f"  {username:<16} {name:<14} {dept:<10} {' '.join(roles)}")
    print(f"\nAPI key for Open311 and NGSI-LD clients / Open311 与 NGSI-LD 客户端 API 密钥: {key}", flush=True)
    if args.simulate_sensors:
        from wecity.demo import simulator

        assert settings.mqtt_url
        print(f"simulating 100 sensors over {settings.mqtt_url} / 正在模拟传感器上报", flush=True)
        simulator.start(settings.mqtt_url)
    return _serve(settings, args.host, args.port, migrate=False)


def cmd_import_areas(args: argparse.Namespace) -> int:
    from wecity.geo.service import import_areas, read_feature_collection

    settings = _settings()
    db = _database(settings)
    features = read_feature_collection(Path(args.file))
    names = db.write_sync(lambda conn: import_areas(conn, features, coord_system=args.crs, now=_now(),
                                                    name_property=args.name_property, replace=not args.keep))
    print(f"imported {len(names)} areas / 已导入 {len(names)} 个区域: {', '.join(names)}")
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    from wecity.geo.coords import to_wgs84
    from wecity.geo.service import load_area_index

    settings = _settings()
    db = _database(settings)
    index = db.read_sync(load_area_index)
    lat, lon = to_wgs84(args.lat, args.long, args.coord_system)
    area = index.locate(lat, lon)
    if area is None:
        print(f"({lat:.6f}, {lon:.6f}) is outside the city / 不在本市范围内")
        return 1
    print(f"({lat:.6f}, {lon:.6f}) is in / 位于 {area.name_zh} {area.name_en} (id {area.id}, code {area.code})")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from wecity.identity.service import add_user

    password = args.password or os.environ.get("WECITY_NEW_USER_PASSWORD")
    if not password:
        password = getpass.getpass("password / 密码: ")
    db = _database(_settings())
    user_id = db.write_sync(lambda conn: add_user(
        conn, username=args.username, password=password, display_name=args.name or args.username,
        department_code=args.department, roles=args.role or [], phone=args.phone, email=args.email, now=_now()))
    print(f"user {args.username} added (id {user_id}) / 已添加用户 {args.username}")
    return 0


def cmd_apikey_add(args: argparse.Namespace) -> int:
    from wecity.identity.service import add_api_key

    db = _database(_settings())
    key = db.write_sync(lambda conn: add_api_key(conn, name=args.name, username=args.user, now=_now()))
    print("API key (shown once; keep it safe) / API 密钥（仅显示一次，请妥善保存）:")
    print(key)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    from wecity.identity.service import list_api_keys

    keys = _database(_settings()).read_sync(list_api_keys)
    print("prefix / 前缀  name / 名称  user / 用户  created / 创建  revoked / 吊销")
    for k in keys:
        print(f"{k['prefix']}…  {k['name']}  {k['username'] or '-'}  {k['created_at']:%Y-%m-%d %H:%M}  "
              f"{k['revoked_at'] and format(k['revoked_at'], '%Y-%m-%d %H:%M') or '-'}")
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    from wecity.identity.service import revoke_api_key

    done = _database(_settings()).write_sync(lambda conn: revoke_api_key(conn, args.prefix, _now()))
    if not done:
        print(f"no live key starts with {args.prefix!r} / 没有以 {args.prefix!r} 开头的有效密钥", file=sys.stderr)
        return 1
    print(f"revoked {done} key(s) / 已吊销 {done} 个密钥")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wecity", description="WeCity city operating platform / 城市运营平台")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the platform / 启动服务")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--no-runner", action="store_true", help="no background runner here / 不在本进程运行后台任务")
    serve.add_argument("--no-migrate", action="store_true", help="do not upgrade the database first / 启动前不升级数据库")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="create a fresh demo city (Changsha) and serve it / 创建演示城市并启动")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--no-history", action="store_true", help="no 30-day history, just the city / 不生成历史案件")
    demo.add_argument("--simulate-sensors", action="store_true",
                      help="publish device readings over MQTT (WECITY_MQTT_URL, default mqtt://127.0.0.1:1883), "
                           "now and then a fault / 通过 MQTT 模拟传感器上报（偶尔故障）")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database / 数据库").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations / 执行数据库迁移").set_defaults(func=cmd_db_upgrade)

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
    kadd.set_defaults(func=cmd_apikey_add)
    key.add_parser("list", help="list API keys / 列出 API 密钥").set_defaults(func=cmd_apikey_list)
    krev = key.add_parser("revoke", help="revoke an API key / 吊销 API 密钥")
    krev.add_argument("prefix", help="the key, or its first 10 characters as `list` shows / 密钥或其前 10 个字符")
    krev.set_defaults(func=cmd_apikey_revoke)

    from wecity.core.commands import add_commands  # runner, outbox, calendar, notify

    add_commands(sub)
    from wecity.iot.commands import add_commands as add_device_commands

    add_device_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WeCityError as exc:
        print(f"error / 错误: {exc.message_zh} / {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
