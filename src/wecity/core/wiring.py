"""What the base layer plugs into an app: the runner, outbox and calendar commands of `wecity`, and the
purge of ended rate-limit windows."""

from __future__ import annotations

from wecity.core import commands, limits
from wecity.core.registry import Registry

PURGE_COUNTERS_SECONDS = 600


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
    registry.add_periodic("core.rate_limit_purge", PURGE_COUNTERS_SECONDS, limits.purge_counters)
