"""Periodic subscriptions (timeInterval): at each interval, one notification with every entity that
matches, put in the outbox like the others by the background runner."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import csourcenotify, notification
from wecity.context.env import Env
from wecity.context.geo import parse_geoq
from wecity.context.ldcontext import ContextStore, TermMap
from wecity.context.matching import enqueue, entity_matches
from wecity.context.models import subscriptions as t
from wecity.context.query import compile_stored_q
from wecity.context.rows import entities_by_id
from wecity.context.search import Query, query
from wecity.context.subscriptions import CSOURCE
from wecity.core.registry import Events

BATCH = 50  # subscriptions handled per transaction
MAX_ENTITIES = 1000  # entities in one periodic notification

_DUE = (sa.select(t).where(t.c.next_notification_at <= sa.bindparam("b_now"), t.c.is_active.is_(True))
        .order_by(t.c.next_notification_at).limit(BATCH))


def matching(conn: Connection, tenant: str, sub: dict[str, Any], terms: TermMap) -> list[Any]:
    """The entities a subscription selects now (entities, q, geoQ), oldest first; `terms`, its @context's."""
    items = sub.get("_entities") or []
    named = [item.get("types") or ([item["type"]] if item.get("type") else None) for item in items]
    types = None if not named or any(n is None for n in named) else sorted({x for n in named for x in n or ()})
    spec = Query(types=types)
    if sub.get("q"):
        spec.q = compile_stored_q(unquote(sub["q"]), terms)
    geo = sub.get("geoQ")
    if geo:
        spec.geo = parse_geoq(geo, terms.expand, required=False)
    found, _ = query(conn, tenant, spec, limit=MAX_ENTITIES * 10, offset=0, count=False)
    return [e for e in found if entity_matches(items, e.id, e.types, terms)][:MAX_ENTITIES]


def run_due(conn: Connection, store: ContextStore, now: datetime, events: Events) -> int:
    """Queue the notifications of every periodic subscription that is due; returns how many."""
    sent = 0
    for row in conn.execute(_DUE, {"b_now": now}).all():
        interval = timedelta(seconds=row.time_interval or 1.0)
        conn.execute(t.update().where(t.c.pk == row.pk).values(next_notification_at=now + interval))
        if row.expires_at is not None and row.expires_at <= now:
            continue
        env = Env(row.tenant, now, store, events)
        if row.kind == CSOURCE:
            sent += csourcenotify.every_match(conn, env, row, "newlyMatching")
            continue
        selecting, terms = env.subscription_terms(conn, row, row.context), env.subscription_terms(
            conn, row, notification.context_of(row))
        if selecting is None or terms is None:
            continue
        entities = matching(conn, row.tenant, row.body, selecting)
        if not entities:
            continue
        change = notification.Change(now=now)
        data = notification.entities(row.body, [(e, change) for e in entities], terms,
                                     partial(entities_by_id, conn, row.tenant))
        if data:
            enqueue(conn, env, row, data)
            sent += 1
    return sent
