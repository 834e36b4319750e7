"""What the context broker plugs into an app: periodic notifications, the sweep of expired transient
entities and EntityMaps (and of snapshots whose fill was lost), and the "ngsild" delivery channel."""

from __future__ import annotations

from wecity.context import subforward, tasks, transient
from wecity.core.registry import Registry


def wire(registry: Registry) -> None:
    registry.add_periodic("context.periodic_notifications", tasks.PERIODIC_CHECK_SECONDS,
                          tasks.periodic_notifications)
    registry.add_periodic("context.sweep_expired", transient.SWEEP_SECONDS, tasks.sweep_expired)
    # Subscriptions forwarded to context sources: their copies sent and withdrawn (5.8.1.4, 5.8.5.4).
    registry.add_job(subforward.JOB_FORWARD, subforward.forward)
    registry.add_job(subforward.JOB_WITHDRAW, subforward.withdraw)
    # The channel needs the app's HTTP client, made when the runner starts (the web app makes it at start).
    registry.on_runner(start=tasks.on_runner_start, stop=tasks.on_runner_stop)
