"""What the AI platform plugs into an app: for now only the `wecity ai` commands."""

from __future__ import annotations

from wecity.ai import commands
from wecity.core.registry import Registry


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
