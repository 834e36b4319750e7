"""What the city model plugs into an app: the `wecity city` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.geo import commands


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
