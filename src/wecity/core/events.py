"""In-transaction domain events: one platform tells another what changed, without importing it.

`emit` calls every listener synchronously, on the emitter's connection, inside its transaction, so what
a listener writes commits or rolls back with the change that caused it. The context broker emits
"context.entity_changed"; the case engine listens to open cases from sensor rules. A listener that
fails must not break the emitter's change: listeners guard their own work (a SAVEPOINT) and log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = {}


def subscribe(name: str, listener: Listener) -> None:
    listeners = _listeners.setdefault(name, [])
    if listener not in listeners:
        listeners.append(listener)


def emit(name: str, conn: Connection, **payload: Any) -> None:
    for listener in _listeners.get(name, ()):
        listener(conn, **payload)
