"""What the notification domain plugs into an app: the webhook, email and in-app channels, and
the `wecity notify` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.notify import commands, tasks


def wire(registry: Registry) -> None:
    # The channels need the app's HTTP client, made when the runner starts.
    registry.on_runner(start=tasks.on_runner_start, stop=tasks.on_runner_stop)
    registry.add_commands(commands.add_commands)
