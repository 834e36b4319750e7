"""The application context: everything a request or a background job needs, built once at start."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wecity.core.clock import Clock
from wecity.core.db import Database
from wecity.core.limits import Limiter
from wecity.core.registry import Registry
from wecity.core.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    clock: Clock = field(default_factory=Clock)
    # What the domains plug into this app (channels, tasks, listeners): see wecity.core.assemble.
    registry: Registry = field(default_factory=Registry)
    # Filled by domains at start (e.g. "gazetteer" by geo); looked up by name to keep the base
    # free of imports from the layers above it.
    services: dict[str, Any] = field(default_factory=dict)
    # The rate limits of this app (WECITY_RATE_LIMIT_*), on its clock and database.
    limits: Limiter = field(init=False)

    def __post_init__(self) -> None:
        self.limits = Limiter(self.settings.rate_limits, self.clock, self.db)

    def __getitem__(self, name: str) -> Any:
        return self.services[name]
