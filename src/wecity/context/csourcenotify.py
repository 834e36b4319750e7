"""Subscriptions to context source registrations (clause 5.11): each registration written is matched
against them, and a ContextSourceNotification (5.3.2) put in the outbox in the write's transaction, with
the trigger reason newlyMatching, updated or noLongerMatching. The notifications leave like every other
(`matching.enqueue`, channel "ngsild", `delivery.py`); periodic ones are `periodic.py`'s.

The registration writes themselves are here too, so that a registration and the notifications it
triggers are one transaction."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import notification, registrations, sources, subforward
from wecity.context.env import Env
from wecity.context.geo import parse_geoq
from wecity.context.history import TimeFilter
from wecity.context.ldcontext import TermMap
from wecity.context.matching import enqueue
from wecity.context.models import subscriptions as t
from wecity.context.query import compile_stored_q
from wecity.context.scopeq import compile_scope_q
from wecity.context.selection import parse_type_selection
from wecity.context.subscriptions import CSOURCE

NOTIFICATION_TYPE = "ContextSourceNotification"
# Periodic ones (timeInterval) are left to the periodic runner.
_ACTIVE = sa.select(t).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.kind == CSOURCE,
                             t.c.is_active.is_(True), t.c.time_interval.is_(None)).order_by(t.c.pk)


def _entity_selector_matches(item: dict[str, Any], entity: dict[str, Any], terms: TermMap) -> bool:
    """A subscription's entities item (expanded as `subscriptions.validate` keeps it) against a
    registered EntityInfo: may they name the same entities?"""
    registered = sources._types(entity)
    if item.get("selection"):
        test = parse_type_selection(item["selection"], terms).test
        if registered and test is not None and not test(registered):
            return False
    else:
        wanted = [item["type"]] if item.get("type") else item.get("types")
        if registered and wanted is not None and not any(x in registered for x in wanted):
            return False
    return sources.entity_matches(entity, entity_id=item.get("id"),
                                  id_pattern=None if item.get("id") else item.get("idPattern"))


def info_matches(sub: dict[str, Any], info: dict[str, Any], terms: TermMap) -> bool:
    """Whether one RegistrationInfo answers the subscription's entities and watchedAttributes."""
    items = sub.get("_entities")
    entities = info.get("entities") or []
    if items and entities and not any(_entity_selector_matches(i, e, terms) for i in items for e in entities):
        return False
    watched = sub.get("_watched")
    names = sources.names_of(info)
    return not (watched and names and not set(watched) & set(names))


def matching_information(sub: dict[str, Any], reg: dict[str, Any], terms: TermMap, core: TermMap) -> list[Any]:
    """The RegistrationInfo elements of `reg` that the subscription is interested in; empty when the
    registration as a whole does not match (its q, csf, scopeQ, geoQ, temporalQ)."""
    infos = [i for i in reg.get("information") or () if info_matches(sub, i, terms)]
    if not infos:
        return []
    props = None
    for key in ("q", "csf"):
        if sub.get(key):
            props = props if props is not None else registrations.properties_of(reg, core)
            if not compile_stored_q(unquote(sub[key]), terms)(props):
                return []
    if sub.get("scopeQ") and not compile_scope_q(sub["scopeQ"])(reg.get("scope")):
        return []
    if sub.get("geoQ") and not registrations.geo_matches(reg, parse_geoq(sub["geoQ"], terms.expand,
                                                                         required=False), core):
        return []
    temporal = sub.get("temporalQ")
    if temporal:
        when = TimeFilter.parse(temporal.get("timerel"), temporal.get("timeAt"), temporal.get("endTimeAt"))
        if not registrations.interval_matches(reg, when, temporal.get("timeproperty", "observedAt")):
            return []
    return infos


def _notify(conn: Connection, env: Env, row: Any, regs: list[tuple[dict[str, Any], list[Any]]], reason: str) -> None:
    """One notification of `row` with the registrations (each shown with its matching information)."""
    terms = env.subscription_terms(conn, row, notification.context_of(row))
    if terms is None:
        return
    data = [registrations.render(reg, terms, information=infos) for reg, infos in regs]
    enqueue(conn, env, row, data, note_type=NOTIFICATION_TYPE, extra={"triggerReason": reason})


def _live(row: Any, env: Env) -> bool:
    return row.is_active and not (row.expires_at is not None and row.expires_at <= env.now)


def on_registration(conn: Connection, env: Env, before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """Notify the subscribers a registration change concerns (none before: created; none after:
    deleted); returns how many notifications were queued."""
    sent = 0
    core = env.store.core
    for row in conn.execute(_ACTIVE, {"b_tenant": env.tenant}).all():
        if not _live(row, env):
            continue
        terms = env.subscription_terms(conn, row, row.context)
        if terms is None:
            continue
        was = matching_information(row.body, before, terms, core) if before is not None and not _gone(before, env) \
            else []
        now = matching_information(row.body, after, terms, core) if after is not None and not _gone(after, env) \
            else []
        if row.body.get(subforward.WATCHES):
            continue  # the broker's own, for a forwarded subscription: `subforward.on_registration` acts
        if now:
            _notify(conn, env, row, [(after, now)], "updated" if was else "newlyMatching")  # type: ignore[list-item]
        elif was:
            _notify(conn, env, row, [(before, was)], "noLongerMatching")  # type: ignore[list-item]
        else:
            continue
        sent += 1
    return sent


def _gone(reg: dict[str, Any], env: Env) -> bool:
    expires = reg.get("expiresAt")
    return bool(expires) and sources.expired(registrations.parse_time(expires, "expiresAt"), env.now)


def every_match(conn: Connection, env: Env, row: Any, reason: str) -> int:
    """One notification with every registration the subscription `row` matches now, if any (on
    subscribing, on a change of the subscription, and at each interval of a periodic one)."""
    if not _live(row, env) or row.body.get(subforward.WATCHES):
        return 0
    terms = env.subscription_terms(conn, row, row.context)
    if terms is None:
        return 0
    core = env.store.core
    found = []
    for reg in conn.execute(sa.select(registrations.t).where(registrations.t.c.tenant == env.tenant)
                            .order_by(registrations.t.c.pk)).all():
        if sources.expired(reg.expires_at, env.now):
            continue
        infos = matching_information(row.body, reg.body, terms, core)
        if infos:
            found.append((reg.body, infos))
    if not found:
        return 0
    _notify(conn, env, row, found, reason)
    return 1


def after_subscription_write(conn: Connection, env: Env, sub_id: str) -> int:
    """The notification a new or changed subscription gets at once: every registration it matches
    (newlyMatching). A periodic subscription gets its first one from the periodic runner, now."""
    row = conn.execute(sa.select(t).where(t.c.tenant == env.tenant, t.c.subscription_id == sub_id,
                                          t.c.kind == CSOURCE)).first()
    if row is None or row.time_interval is not None:
        return 0
    return every_match(conn, env, row, "newlyMatching")


# -- registration writes, with their notifications --------------------------------------------------

def create_registration(conn: Connection, env: Env, reg: dict[str, Any], context: Any) -> str:
    stored = registrations.create(conn, env, reg, context)
    on_registration(conn, env, None, stored)
    subforward.on_registration(conn, env, str(stored["id"]), {**stored, "@context": context})
    return str(stored["id"])


def update_registration(conn: Connection, env: Env, reg_id: str, fragment: dict[str, Any]) -> None:
    before, after = registrations.update(conn, env, reg_id, fragment)
    on_registration(conn, env, before, after)
    subforward.on_registration(conn, env, reg_id, after)


def delete_registration(conn: Connection, env: Env, reg_id: str) -> None:
    before = registrations.delete(conn, env.tenant, reg_id)
    on_registration(conn, env, before, None)
    subforward.on_registration(conn, env, reg_id, None)
