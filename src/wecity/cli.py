"""The `wecity` command: serve the platform, run the demo city, upgrade the database; every domain adds
its own sub-commands through its wiring (`wecity.core.assemble`)."""

from __future__ import annotations

import argparse
import os
import sys

from wecity.core.errors import WeCityError


def _settings():  # noqa: ANN202
    from wecity.core.settings import load_settings

    return load_settings()


def _database(settings):  # noqa: ANN001, ANN202
    from wecity.core.db import Database

    return Database(settings.database_url, pool_size=2)


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
    app.state.freeze_heap_after_start = True  # one app per process here (wecity.api.app's lifespan says why)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False, loop="auto", http="auto")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if args.no_runner:
        from dataclasses import replace

        settings = replace(settings, run_background=False)
    return _serve(settings, args.host, args.port, migrate=not args.no_migrate)


def cmd_demo(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from wecity.demo.changsha import DEMO_PASSWORD, STAFF
    from wecity.demo.database import create_demo_database
    from wecity.demo.seed import DEMO_KEYS

    settings = replace(_settings(), demo=True)
    if not os.environ.get("WECITY_DATABASE_URL"):
        settings = replace(settings, database_url=f"sqlite:///{settings.var_dir / 'demo.db'}")
    if args.simulate_sensors and not settings.mqtt_url:
        settings = replace(settings, mqtt_url="mqtt://127.0.0.1:1883")
    print("creating the demo city 长沙市 with 30 days of history / 正在生成演示城市…", flush=True)
    keys = create_demo_database(settings, history=not args.no_history)
    url = f"http://{args.host}:{args.port}"
    print(f"\nWeCity demo city 长沙市 / Changsha is at {url}\n")
    print(f"Staff logins / 工作人员账号 (password / 密码: {DEMO_PASSWORD}):")
    for username, name, dept, roles, _phone in STAFF:
        print(f"  {username:<16} {name:<14} {dept:<10} {' '.join(roles)}")
    print("  <department> and <department>-lead for the service departments (gongan, minzheng, zhufangbaozhang, "
          "…)\n  / 各办事部门另有 <部门> 与 <部门>-lead（科长）账号；zhengwu-lead 协调数据共享 "
          "(coordinates data sharing)")
    print("Citizens / 市民: sign in on /my or /services with 13900000001 … 13900000006; no SMS is sent in the demo, "
          "the code is shown on the page / 演示城市不发短信，验证码直接显示在页面上")
    print("\nAPI keys, one per purpose / API 密钥（各司其职）:")
    for purpose, (name, scopes) in DEMO_KEYS.items():
        print(f"  {name} [{' '.join(scopes)}]: {keys[purpose]}")
    from wecity.geo.basemap import basemap_dir, load_basemap

    basemap = load_basemap(settings.var_dir)
    if basemap is not None:
        print(f"\nBase map / 底图: {basemap.path} ({basemap.size / 1e6:.1f} MB)")
    else:
        print(f"\nNo base map in / 未导入底图: {basemap_dir(settings.var_dir)} (wecity city import-basemap CITY.osm.pbf)")
    print("", flush=True)
    if args.simulate_sensors:
        from wecity.demo import simulator

        assert settings.mqtt_url
        print(f"simulating 100 sensors over {settings.mqtt_url} / 正在模拟传感器上报", flush=True)
        simulator.start(settings.mqtt_url)
    return _serve(settings, args.host, args.port, migrate=False)


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

    # Every domain's own commands (runner, outbox, calendar, city, user, apikey, notify, device, ...).
    from wecity.core.assemble import wire_domains
    from wecity.core.registry import Registry

    for add_commands in wire_domains(Registry()).commands:
        add_commands(sub)
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
