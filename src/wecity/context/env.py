"""The types the broker's modules share: who and when a change happens (`Env`), and an entity as it is
stored (`Stored`). They live in a module of their own so that the verbs, the history, subscriptions,
notifications and linked-entity retrieval all import them at top level."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wecity.context.ldcontext import ContextStore
from wecity.core.registry import Events


@dataclass
class Env:
    """Who and when: the tenant, the time of the change, where @contexts come from, and who hears of
    changes (the app's `registry.events`: the case engine's sensor rules)."""

    tenant: str
    now: datetime
    store: ContextStore
    events: Events
    # Entity id prefixes kept by another domain (`Registry.owned_entities`): a write through the API
    # (whose Env carries them) to such an entity is refused; the owning domain writes with none.
    owned: dict[str, str] = field(default_factory=dict)


@dataclass
class Stored:
    pk: int
    id: str
    types: list[str]
    attrs: dict[str, Any]
    created_at: datetime
    modified_at: datetime
    scope: Any = None
    # Transient entities (wecity.context.transient): the entity's own expiresAt, and the earliest expiresAt
    # of its attribute instances.
    expires_at: datetime | None = None
    prune_at: datetime | None = None

    @property
    def type(self) -> str:
        return self.types[0]
