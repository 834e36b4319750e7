"""Subscriptions: their CRUD, matching each entity change against them, and the notifications that
leave through the platform's transactional outbox (channel "ngsild")."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context.bulk import driver, run
from wecity.context.entity import (
    View,
    bad,
    check_name,
    instances,
    is_uri,
    now_text,
    parse_time,
    render_entity,
)
from wecity.context.geo import GeoQuery, parse_geoquery
from wecity.context.ldcontext import TermMap
from wecity.context.models import subscriptions as t
from wecity.context.query import compile_q
from wecity.core import events, outbox
from wecity.core.errors import AlreadyExists, NotFound, ValidationFailed

if TYPE_CHECKING:
    from wecity.context.service import Env, Stored

CHANNEL = "ngsild"
FORMATS = ("normalized", "keyValues", "concise")
DEFAULT_TRIGGERS = ("entityCreated", "entityUpdated", "attributeCreated", "attributeUpdated")
_SYSTEM = ("status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure")


def _not_found(sub_id: str) -> NotFound:
    return NotFound(f"subscription {sub_id} not found", message_zh=f"订阅 {sub_id} 不存在", code="ngsild.not_found")


def _unsupported(what: str, zh: str) -> ValidationFailed:
    return ValidationFailed(f"{what} is not supported", message_zh=f"不支持{zh}", code="ngsild.operation_not_supported")


def validate(body: Any, terms: TermMap, *, partial: bool = False) -> dict[str, Any]:
    """A subscription (or, with `partial`, a fragment of one) checked, with types and names expanded
    under `_`-prefixed keys that matching uses; BadRequestData when malformed."""
    if not isinstance(body, dict):
        raise bad("a subscription must be a JSON object", "订阅必须是 JSON 对象")
    sub = {k: v for k, v in body.items() if k != "@context" and k not in _SYSTEM}
    if not partial:
        if sub.get("type") != "Subscription":
            raise bad("type must be 'Subscription'", "type 必须是 'Subscription'")
        if "entities" not in sub and "watchedAttributes" not in sub:
            raise bad("a subscription needs entities or watchedAttributes", "订阅需要 entities 或 watchedAttributes")
        if "notification" not in sub:
            raise bad("a subscription needs notification", "订阅需要 notification")
    elif "type" in sub and sub["type"] != "Subscription":
        raise bad("type must be 'Subscription'", "type 必须是 'Subscription'")
    if "id" in sub and not is_uri(sub["id"]):
        raise bad("subscription id must be a URI", "订阅 id 必须是 URI")
    if "timeInterval" in sub:
        raise _unsupported("timeInterval (periodic notification)", "定时通知（timeInterval）")
    if "entities" in sub:
        items = sub["entities"]
        if not isinstance(items, list) or not items:
            raise bad("entities must be a non-empty list", "entities 必须是非空列表")
        expanded = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                raise bad("each entities item needs a type", "entities 的每一项都需要 type")
            if "id" in item and not is_uri(item["id"]):
                raise bad("entities id must be a URI", "entities 中的 id 必须是 URI")
            expanded.append({"type": terms.expand(item["type"]), "id": item.get("id"),
                             "idPattern": item.get("idPattern")})
        sub["_entities"] = expanded
    if "watchedAttributes" in sub:
        watched = sub["watchedAttributes"]
        if not isinstance(watched, list) or not watched or not all(isinstance(w, str) for w in watched):
            raise bad("watchedAttributes must be a non-empty list of names", "watchedAttributes 必须是非空名称列表")
        for w in watched:
            check_name(w)
        sub["_watched"] = [terms.expand(w) for w in watched]
    if "q" in sub:
        if not isinstance(sub["q"], str):
            raise bad("q must be a string", "q 必须是字符串")
        compile_q(sub["q"], terms)
    if "geoQ" in sub:
        g = sub["geoQ"]
        if not isinstance(g, dict):
            raise bad("geoQ must be an object", "geoQ 必须是对象")
        parse_geoquery(g.get("georel"), g.get("geometry"), g.get("coordinates"),
                       terms.expand(g.get("geoproperty") or "location"))
    if "throttling" in sub:
        th = sub["throttling"]
        if not isinstance(th, int | float) or isinstance(th, bool) or th <= 0:
            raise bad("throttling must be a positive number of seconds", "throttling 必须是正的秒数")
    if "expiresAt" in sub:
        parse_time(sub["expiresAt"], "expiresAt")
    if "isActive" in sub and not isinstance(sub["isActive"], bool):
        raise bad("isActive must be true or false", "isActive 必须是 true 或 false")
    if "notification" in sub:
        sub["notification"] = _validate_notification(sub["notification"], terms)
        note = sub["notification"]
        sub["_attrs"] = [terms.expand(a) for a in note.get("attributes", [])]
    return sub


def _validate_notification(note: Any, terms: TermMap) -> dict[str, Any]:
    if not isinstance(note, dict):
        raise bad("notification must be an object", "notification 必须是对象")
    note = {k: v for k, v in note.items() if k not in _SYSTEM}
    endpoint = note.get("endpoint")
    if not isinstance(endpoint, dict) or not is_uri(endpoint.get("uri")):
        raise bad("notification.endpoint.uri must be a URI", "notification.endpoint.uri 必须是 URI")
    if not str(endpoint["uri"]).startswith(("http://", "https://")):
        raise _unsupported("a notification endpoint other than HTTP", "HTTP 以外的通知端点")
    accept = endpoint.get("accept", "application/json")
    if accept not in ("application/json", "application/ld+json"):
        raise bad("endpoint.accept must be application/json or application/ld+json",
                  "endpoint.accept 必须是 application/json 或 application/ld+json")
    if note.get("format", "normalized") not in FORMATS:
        raise bad(f"notification.format must be one of {', '.join(FORMATS)}", "notification.format 无效")
    attributes = note.get("attributes", [])
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        raise bad("notification.attributes must be a list of names", "notification.attributes 必须是名称列表")
    return note


# -- CRUD -----------------------------------------------------------------------------------------

def create(conn: Connection, env: Env, sub: dict[str, Any], context: Any) -> str:
    sub_id = sub.setdefault("id", f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
    exists = conn.execute(sa.select(t.c.pk).where(t.c.tenant == env.tenant, t.c.subscription_id == sub_id)).first()
    if exists:
        raise AlreadyExists(f"subscription {sub_id} already exists", message_zh=f"订阅 {sub_id} 已存在",
                            code="ngsild.already_exists")
    conn.execute(t.insert().values(tenant=env.tenant, subscription_id=sub_id, body=sub, context=context,
                                   is_active=sub.get("isActive", True), expires_at=_expires(sub),
                                   throttling=sub.get("throttling"), times_sent=0, times_failed=0,
                                   created_at=env.now, modified_at=env.now))
    return str(sub_id)


def _expires(sub: dict[str, Any]) -> datetime | None:
    return parse_time(sub["expiresAt"], "expiresAt") if sub.get("expiresAt") else None


def _row(conn: Connection, tenant: str, sub_id: str) -> Any:
    row = conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.subscription_id == sub_id)).first()
    if row is None:
        raise _not_found(sub_id)
    return row


def get(conn: Connection, tenant: str, sub_id: str, now: datetime) -> dict[str, Any]:
    return render(_row(conn, tenant, sub_id), now)


def list_all(conn: Connection, tenant: str, now: datetime, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    total = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.tenant == tenant)).scalar_one())
    rows = conn.execute(sa.select(t).where(t.c.tenant == tenant).order_by(t.c.pk).limit(limit).offset(offset))
    return [render(r, now) for r in rows], total


def update(conn: Connection, env: Env, sub_id: str, fragment: dict[str, Any]) -> None:
    row = _row(conn, env.tenant, sub_id)
    if "id" in fragment and fragment["id"] != sub_id:
        raise bad("the id of a subscription cannot change", "订阅的 id 不能修改")
    body = dict(row.body)
    for key, value in fragment.items():
        if key == "notification" and isinstance(body.get("notification"), dict):
            merged = dict(body["notification"])
            merged.update(value)
            body["notification"] = merged
        else:
            body[key] = value
    conn.execute(t.update().where(t.c.pk == row.pk).values(
        body=body, is_active=body.get("isActive", True), expires_at=_expires(body),
        throttling=body.get("throttling"), modified_at=env.now))


def delete(conn: Connection, tenant: str, sub_id: str) -> None:
    row = _row(conn, tenant, sub_id)
    conn.execute(t.delete().where(t.c.pk == row.pk))


def render(row: Any, now: datetime) -> dict[str, Any]:
    body = {k: v for k, v in row.body.items() if not k.startswith("_")}
    expired = row.expires_at is not None and row.expires_at <= now
    body["isActive"] = bool(row.is_active)
    body["status"] = "expired" if expired else ("active" if row.is_active else "paused")
    note = dict(body.get("notification", {}))
    note["timesSent"] = row.times_sent
    if row.times_failed:
        note["timesFailed"] = row.times_failed
    for key, value in (("lastNotification", row.last_notification), ("lastSuccess", row.last_success),
                       ("lastFailure", row.last_failure)):
        if value is not None:
            note[key] = now_text(value)
    if row.last_notification is not None:
        note["status"] = "failed" if row.last_failure == row.last_notification else "ok"
    body["notification"] = note
    return body


# -- matching -------------------------------------------------------------------------------------

_ACTIVE = sa.select(t).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.is_active.is_(True))
_RAW_ANY = "SELECT 1 FROM ngsild_subscriptions WHERE tenant = ? AND is_active = 1 LIMIT 1"
_ANY = sa.select(t.c.pk).where(t.c.tenant == sa.bindparam("b_tenant"), t.c.is_active.is_(True)).limit(1)


def has_any(conn: Connection, tenant: str) -> bool:
    """Whether the tenant has an active subscription: one indexed look-up, through the driver on SQLite,
    so a change in a tenant without subscriptions (the usual case for sensor readings) reads nothing more."""
    raw = driver(conn)
    if raw is not None:
        return run(raw, _RAW_ANY, (tenant,)).fetchone() is not None
    return conn.execute(_ANY, {"b_tenant": tenant}).first() is not None


def _entity_matches(items: list[dict[str, Any]] | None, entity: Stored) -> bool:
    if not items:
        return True
    import re

    for item in items:
        if item["type"] not in entity.types:
            continue
        if item.get("id") and item["id"] != entity.id:
            continue
        if item.get("idPattern") and not re.fullmatch(item["idPattern"], entity.id):
            continue
        return True
    return False


def emit_change(conn: Connection, env: Env, entity: Stored, changed: set[str], *, deleted: bool = False) -> None:
    """Other platforms (the case engine's sensor rules) hear of every change, in this transaction."""
    events.emit("context.entity_changed", conn, tenant=env.tenant, now=env.now, terms=env.store.core,
                entity=entity, changed=changed, deleted=deleted)


def on_change(conn: Connection, env: Env, entity: Stored, changed: set[str], *, deleted: bool = False,
              trigger: str | None = None) -> int:
    """Queue a notification for every subscription the change triggers; returns how many."""
    emit_change(conn, env, entity, changed, deleted=deleted)
    if not has_any(conn, env.tenant):
        return 0
    rows = conn.execute(_ACTIVE, {"b_tenant": env.tenant}).all()
    sent = 0
    for row in rows:
        sub = row.body
        if row.expires_at is not None and row.expires_at <= env.now:
            continue
        triggers = sub.get("notificationTrigger") or DEFAULT_TRIGGERS
        if deleted and "entityDeleted" not in triggers:
            continue
        if trigger and trigger not in triggers:
            continue
        if not deleted and not changed:
            continue
        if not _entity_matches(sub.get("_entities"), entity):
            continue
        watched = sub.get("_watched")
        if watched and not deleted and not changed.intersection(watched):
            continue
        terms = env.store.term_map(row.context)
        if sub.get("q") and not deleted and not compile_q(sub["q"], terms)(entity.attrs):
            continue
        if sub.get("geoQ") and not deleted and not _geo_matches(sub["geoQ"], terms, entity):
            continue
        if row.throttling and row.last_triggered is not None and \
                (env.now - row.last_triggered).total_seconds() < row.throttling:
            continue
        _enqueue(conn, env, row, terms, entity)
        sent += 1
    return sent


def _geo_matches(geo: dict[str, Any], terms: TermMap, entity: Stored) -> bool:
    query: GeoQuery | None = parse_geoquery(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"),
                                            terms.expand(geo.get("geoproperty") or "location"))
    assert query is not None
    attr = entity.attrs.get(query.geoproperty)
    return attr is not None and any(query.matches(i.get("value")) for i in instances(attr))


def _enqueue(conn: Connection, env: Env, row: Any, terms: TermMap, entity: Stored) -> None:
    sub = row.body
    note = sub.get("notification", {})
    attrs = sub.get("_attrs") or None
    view = View(terms=terms, form=note.get("format", "normalized"), sys_attrs=bool(note.get("sysAttrs")),
                attrs=frozenset(attrs) if attrs else None, lang=sub.get("lang"))
    data = render_entity(entity.id, entity.types, entity.attrs, view, created_at=now_text(entity.created_at),
                         modified_at=now_text(entity.modified_at), scope=entity.scope)
    endpoint = note["endpoint"]
    body: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
                            "subscriptionId": row.subscription_id, "notifiedAt": now_text(env.now), "data": [data]}
    outbox.enqueue(conn, channel=CHANNEL, target=endpoint["uri"], now=env.now, payload={
        "tenant": env.tenant, "subscriptionId": row.subscription_id, "notification": body,
        "accept": endpoint.get("accept", "application/json"), "context": row.context,
        "receiverInfo": endpoint.get("receiverInfo") or []})
    conn.execute(t.update().where(t.c.pk == row.pk).values(last_triggered=env.now))


def record_attempt(conn: Connection, tenant: str, sub_id: str, ok: bool, now: datetime) -> None:
    """What the delivery of one notification did, on the subscription's counters."""
    values: dict[str, Any] = {"last_notification": now, "times_sent": t.c.times_sent + 1}
    if ok:
        values["last_success"] = now
    else:
        values["last_failure"] = now
        values["times_failed"] = t.c.times_failed + 1
    conn.execute(t.update().where(t.c.tenant == tenant, t.c.subscription_id == sub_id).values(**values))

