"""What the data platform plugs into an app: the `wecity data` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.datashare import commands


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
