"""What enterprise services plug into an app: the incremental policy match (with its grants and notices)
and the `wecity enterprise` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.enterprise import commands, tasks

MATCH_SECONDS = 10.0  # an enterprise whose data change hears of a benefit within seconds


def wire(registry: Registry) -> None:
    registry.add_periodic("enterprise.match", MATCH_SECONDS, tasks.match_task)
    registry.add_commands(commands.add_commands)
