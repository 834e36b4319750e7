"""What the context broker plugs into an app: periodic notifications and the "ngsild" delivery channel."""

from __future__ import annotations

from wecity.context import tasks
from wecity.core.registry import Registry


def wire(registry: Registry) -> None:
    registry.add_periodic("context.periodic_notifications", tasks.PERIODIC_CHECK_SECONDS,
                          tasks.periodic_notifications)
    # The channel needs the app's HTTP client, made when the runner starts (the web app makes it at start).
    registry.on_runner(start=tasks.on_runner_start, stop=tasks.on_runner_stop)
