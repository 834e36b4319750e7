"""The types the broker's modules share: who and when a change happens (`Env`), and an entity as it is
stored (`Stored`). They live in a module of their own so that the verbs, the history, subscriptions,
notifications and linked-entity retrieval all import them at top level."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wecity.context.ldcontext import ContextStore, TermMap
from wecity.core.errors import DependencyUnavailable, ValidationFailed
from wecity.core.registry import Events

log = logging.getLogger(__name__)


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

    def subscription_terms(self, conn: Any, row: Any, context: Any) -> TermMap | None:
        """The term map of a subscription's @context, inside a write: from what the broker keeps (in this
        process, else in the database: another process may have kept it since this one started), never
        fetched (a fetch would hold the one writer for seconds, and a source that is down would fail every
        write that touches the subscription). None, logged, when a document is kept nowhere (deleted from
        /jsonldContexts): that subscription is passed over, the write goes on."""
        for attempt in range(2):
            try:
                return self.store.term_map(context, fetch=False)
            except (DependencyUnavailable, ValidationFailed):  # not kept (a hosted one names no document)
                if attempt or not _keep_from_database(conn, self.store, context):
                    break
        log.warning("subscription %s passed over: its @context %s is kept neither here nor in the database",
                    getattr(row, "subscription_id", "?"), context)
        return None


def _keep_from_database(conn: Any, store: ContextStore, context: Any) -> int:
    """The documents of `context`'s references that the database keeps, put in `store`; how many."""
    import sqlalchemy as sa

    from wecity.context.ldcontext import HOSTED_PATH, is_core_url
    from wecity.context.models import contexts

    kept = 0
    for _ in range(NAMED_DEPTH):  # the references, then what those name in turn (hosted or remote)
        wanted: set[str] = set()
        for item in context if isinstance(context, list) else [context]:
            if isinstance(item, str) and not is_core_url(item):
                wanted.add(item)
                if HOSTED_PATH in item:
                    wanted.add(HOSTED_PATH + item.rsplit("/", 1)[1])
        if not wanted:
            break
        found = conn.execute(sa.select(contexts.c.url, contexts.c.body)
                             .where(contexts.c.url.in_(sorted(wanted)))).all()
        for url, body in found:
            store.keep(url, body)
        kept += len(found)
        context = [inner for _, body in found if isinstance(body, dict)
                   for inner in _listed(body.get("@context"))]
    return kept


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# How deep @contexts naming @contexts are followed (a hosted one naming Smart Data Models' naming others).
NAMED_DEPTH = 5


def keep_named_contexts(conn: Any, env: Env, *contexts: Any) -> None:
    """The remote @contexts a subscription or registration names, and those they name in turn, kept in the
    database (kind Cached) where this process holds them only in memory: matching inside a write never
    fetches, and another process (or this one after a restart) finds them only there."""
    import sqlalchemy as sa

    from wecity.context.ldcontext import HOSTED_PATH, is_core_url
    from wecity.context.models import contexts as t

    seen: set[str] = set()
    frontier = [item for context in contexts for item in _listed(context) if isinstance(item, str)]
    for _ in range(NAMED_DEPTH):
        named: list[str] = []
        for url in frontier:
            if url in seen or is_core_url(url):
                continue
            seen.add(url)
            key = env.store.key_of(url)
            document = env.store.documents.get(key) if key is not None else None
            if not isinstance(document, dict):
                continue
            named += [item for item in _listed(document.get("@context")) if isinstance(item, str)]
            if HOSTED_PATH in url or conn.execute(sa.select(t.c.pk).where(t.c.url == url)).first() is not None:
                continue
            try:
                with conn.begin_nested():  # another process may keep it at the same moment: then it is kept
                    conn.execute(t.insert().values(context_id=uuid.uuid4().hex, url=url, kind="Cached",
                                                   body=document, created_at=env.now, times_used=0))
            except sa.exc.IntegrityError:
                pass
        frontier = named


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
