"""What identity plugs into an app: the `wecity user`, `wecity apikey` and `wecity audit` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.identity import commands


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
