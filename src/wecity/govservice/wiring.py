"""What digital government plugs into an app: the application clock check and the `wecity govservice`
commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.govservice import commands, tasks

CLOCK_CHECK_SECONDS = 300.0  # limits are in working days: a check every five minutes is plenty


def wire(registry: Registry) -> None:
    registry.add_periodic("govservice.clocks", CLOCK_CHECK_SECONDS, tasks.clock_check)
    registry.add_commands(commands.add_commands)
