"""What the operations centre plugs into an app: the rollup kept from the case engine's events, and the
`wecity insight` commands."""

from __future__ import annotations

from typing import Any

from wecity.core.context import AppContext
from wecity.core.registry import Registry

ROLLUP_SECONDS = 5.0  # the dashboard's figures trail the events by this much at most


async def keep_rollup(ctx: AppContext) -> None:
    from wecity.insight.rollup import consume

    now = ctx.clock.now()
    while await ctx.db.write(lambda conn: consume(conn, now=now)):
        pass  # a full batch: there may be more


def _rebuild(args: Any) -> int:
    from wecity.core.commands import opened
    from wecity.insight.rollup import rebuild

    with opened() as ctx:
        covered = ctx.db.write_sync(lambda conn: rebuild(conn, now=ctx.clock.now()))
    print(f"rollup rebuilt from {covered} case events / 已由 {covered} 条案件事件重建汇总")
    return 0


def add_commands(sub: Any) -> None:
    insight = sub.add_parser("insight", help="the operations centre's figures / 运营中心指标").add_subparsers(
        dest="insight_command", required=True)
    rebuild = insight.add_parser("rebuild", help="recompute the daily rollup from every case event / 重建日汇总")
    rebuild.set_defaults(func=_rebuild)


def wire(registry: Registry) -> None:
    registry.add_periodic("insight.rollup", ROLLUP_SECONDS, keep_rollup)
    registry.add_commands(add_commands)
