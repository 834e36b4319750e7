"""What the base layer plugs into an app: the runner, outbox and calendar commands of `wecity`."""

from __future__ import annotations

from wecity.core import commands
from wecity.core.registry import Registry


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
