"""What the device platform plugs into an app: the `wecity device` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.iot import commands


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
