"""A small per-process cache of configuration the hot paths read on every request.

Categories, area overrides, API keys and the working calendar change rarely but are read by every
report. Each entry is kept for `ttl` seconds (so a change made by another process shows within that
time) and dropped at once when this process changes it (`invalidate`). Keys start with the database
URL, so two databases in one process (tests, tools) never see each other's entries.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Engine

T = TypeVar("T")
DEFAULT_TTL = 10.0

_entries: dict[tuple[Hashable, ...], tuple[float, Any]] = {}
_lock = threading.Lock()


# Rendering a URL costs more than the look-up it keys: done once per engine.
_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _database(conn: Connection) -> str:
    engine = conn.engine
    name = _names.get(engine)
    if name is None:
        name = _names[engine] = engine.url.render_as_string(hide_password=True)
    return name


def cached(conn: Connection, key: tuple[Hashable, ...], load: Callable[[], T], *, ttl: float = DEFAULT_TTL) -> T:
    full = (_database(conn), *key)
    now = time.monotonic()
    hit = _entries.get(full)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[no-any-return]
    value = load()
    with _lock:
        if len(_entries) > 10_000:  # bounded: a flood of distinct keys cannot grow memory without end
            _entries.clear()
        _entries[full] = (now + ttl, value)
    return value


def invalidate(conn: Connection, *prefix: Hashable) -> None:
    """Forget this database's entries whose key starts with `prefix` (all of them without one)."""
    database = _database(conn)
    with _lock:
        for key in [k for k in _entries if k[0] == database and k[1:1 + len(prefix)] == prefix]:
            del _entries[key]
