"""What the domains mounted on one app plug into it: outbox channels, jobs, periodic tasks, event
listeners, runner start/stop hooks and CLI commands.

Each app (`wecity serve`, `wecity runner`, a CLI command, a test) has its own `Registry` on its
`AppContext`, filled at start by every domain's `wire(registry)` (`wecity.<domain>.wiring`, see
`wecity.core.assemble`). Nothing is registered at import and nothing is process-wide, so two apps in one
process (two cities, or a test beside the demo) never see or replace each other's parts.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from wecity.core.context import AppContext
    from wecity.core.outbox import OutboxMessage

DeliverFn = Callable[["OutboxMessage"], Awaitable[None]]
JobFn = Callable[["AppContext", dict[str, Any]], Awaitable[None]]
PeriodicFn = Callable[["AppContext"], Awaitable[None]]
HookFn = Callable[["AppContext"], Awaitable[None]]
Listener = Callable[..., None]
# A command adds its sub-parser to `wecity`'s and sets `func` on it (argparse's own way of dispatching).
CommandFn = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    every_seconds: float
    fn: PeriodicFn
    # How long a run may take (it is cut off at half of it), when longer than the runner's own lease: a
    # model's training takes minutes. Also how long a dead runner keeps the task from the others.
    lease_seconds: float | None = None


class Events:
    """In-transaction domain events: one domain tells another what changed, without importing it.

    `emit` calls every listener synchronously, on the emitter's connection, inside its transaction, so
    what a listener writes commits or rolls back with the change that caused it. The context broker
    emits "context.entity_changed"; the case engine listens to open cases from sensor rules. A listener
    that fails must not break the emitter's change: listeners guard their own work (a SAVEPOINT) and log.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, name: str, listener: Listener) -> None:
        listeners = self._listeners.setdefault(name, [])
        if listener not in listeners:
            listeners.append(listener)

    def emit(self, name: str, conn: Connection, **payload: Any) -> None:
        for listener in self._listeners.get(name, ()):
            listener(conn, **payload)

    def listeners(self, name: str) -> list[Listener]:
        return list(self._listeners.get(name, ()))


@dataclass
class Registry:
    channels: dict[str, DeliverFn] = field(default_factory=dict)
    jobs: dict[str, JobFn] = field(default_factory=dict)
    periodic: dict[str, Periodic] = field(default_factory=dict)
    events: Events = field(default_factory=Events)
    runner_start: list[HookFn] = field(default_factory=list)
    runner_stop: list[HookFn] = field(default_factory=list)
    commands: list[CommandFn] = field(default_factory=list)
    # NGSI-LD entities a platform domain keeps in step with its own records (the case engine's
    # ServiceRequest): entity id prefix -> the domain. Read-only through the broker's API.
    owned_entities: dict[str, str] = field(default_factory=dict)

    def add_channel(self, name: str, deliver: DeliverFn) -> None:
        """Deliver outbox messages of `channel=name` with `deliver`; it returns on success, raises to fail."""
        self.channels[name] = deliver

    def add_job(self, name: str, fn: JobFn) -> None:
        """Run queued jobs named `name` with `await fn(ctx, args)`; raise to fail (it is retried)."""
        self.jobs[name] = fn

    def add_periodic(self, name: str, every_seconds: float, fn: PeriodicFn, *,
                     lease_seconds: float | None = None) -> None:
        """Run `await fn(ctx)` about every `every_seconds`, once per period in the whole installation (a run
        is cut off at half of `lease_seconds`, if longer than the runner's lease)."""
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        self.periodic[name] = Periodic(name, every_seconds, fn, lease_seconds)

    def on_runner(self, *, start: HookFn | None = None, stop: HookFn | None = None) -> None:
        """Set-up the runner needs with the context and a running loop (an HTTP client, say), and its undoing."""
        if start is not None:
            self.runner_start.append(start)
        if stop is not None:
            self.runner_stop.append(stop)

    def own_entities(self, id_prefix: str, owner: str) -> None:
        """NGSI-LD entities whose id starts with `id_prefix` are written only by `owner` (a domain), never
        through the broker's API, which refuses such writes."""
        self.owned_entities[id_prefix] = owner

    def add_commands(self, add: CommandFn) -> None:
        """Sub-commands of `wecity` that this domain brings."""
        self.commands.append(add)
