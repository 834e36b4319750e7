"""Subscriptions as resources: checked (`validate`), created, read, updated, deleted and shown as the
spec shows them, with the counters of the notifications that leave through the platform's outbox
(channel "ngsild"). Matching entity changes against them is `matching.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import mqttnotify, notification
from wecity.context.entity import check_name, is_uri, now_text, parse_time
from wecity.context.env import Env, keep_named_contexts
from wecity.context.errors import (
    already_exists,
    bad_request_data,
    operation_not_supported,
    resource_not_found,
)
from wecity.context.geo import parse_geoq
from wecity.context.ldcontext import TermMap
from wecity.context.models import subscriptions as t
from wecity.context.query import compile_q
from wecity.context.search import compile_pattern
from wecity.context.selection import parse_type_selection
from wecity.core.errors import NotFound
from wecity.core.outbound import FORBIDDEN_HEADERS

CHANNEL = "ngsild"
ENTITY = "entity"  # a subscription to entities (/subscriptions)
CSOURCE = "csource"  # a subscription to context source registrations (/csourceSubscriptions, 5.11)
FORMATS = ("normalized", "keyValues", "simplified", "concise")  # simplified: another name for keyValues
TRIGGERS = ("entityCreated", "entityUpdated", "entityDeleted", "attributeCreated", "attributeUpdated",
            "attributeDeleted")
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
_SYSTEM = ("status", "timesSent", "timesFailed", "lastNotification", "lastSuccess", "lastFailure")
# Members a subscription cannot drop with null (5.8.2): without them it is no subscription.
_MANDATORY = ("type", "notification", "id")


def _not_found(sub_id: str) -> NotFound:
    return resource_not_found(f"subscription {sub_id} not found", f"订阅 {sub_id} 不存在")


def _names(value: Any, what: str, *, allow_empty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value) or \
            (not value and not allow_empty):
        raise bad_request_data(f"{what} must be a non-empty list of names", f"{what} 必须是非空名称列表")
    for name in value:
        check_name(name)
    return value


def validate(body: Any, terms: TermMap, *, partial: bool = False, now: datetime | None = None,
             kind: str = ENTITY) -> dict[str, Any]:
    """A subscription (or, with `partial`, a fragment of one) checked, with types and names expanded
    under `_`-prefixed keys that matching uses; BadRequestData when malformed. Client members starting
    with `_` are dropped: those names are the broker's own. A subscription to context source
    registrations (`kind` CSOURCE) may also carry a temporalQ (on the registrations' intervals)."""
    if not isinstance(body, dict):
        raise bad_request_data("a subscription must be a JSON object", "订阅必须是 JSON 对象")
    sub = {k: v for k, v in body.items() if k != "@context" and k not in _SYSTEM and not k.startswith("_")}
    if partial:
        _check_fragment(sub)
    else:
        _check_required(sub)
    if "id" in sub and not is_uri(sub["id"]):
        raise bad_request_data("subscription id must be a URI", "订阅 id 必须是 URI")
    _check_time_interval(sub)
    if sub.get("entities") is not None:
        sub["_entities"] = _expanded_entities(sub["entities"], terms)
    if sub.get("watchedAttributes") is not None:
        sub["_watched"] = [terms.expand(w) for w in _names(sub["watchedAttributes"], "watchedAttributes")]
    if sub.get("notificationTrigger") is not None:
        triggers = sub["notificationTrigger"]
        if not isinstance(triggers, list) or not triggers or any(x not in TRIGGERS for x in triggers):
            raise bad_request_data(f"notificationTrigger must list some of {', '.join(TRIGGERS)}",
                                   f"notificationTrigger 只能取 {'、'.join(TRIGGERS)}")
    _check_queries(sub, terms)
    if sub.get("temporalQ") is not None:
        if kind != CSOURCE:
            raise bad_request_data("temporalQ is for subscriptions to context source registrations",
                                   "temporalQ 只适用于上下文源注册订阅")
        _check_temporal_q(sub["temporalQ"])
    _check_settings(sub, now)
    if sub.get("notification") is not None:
        # In a fragment too, notification is whole NotificationParams (endpoint included): it replaces.
        sub["notification"] = _validate_notification(sub["notification"], terms)
        note = sub["notification"]
        if "attributes" in note:
            sub["_attrs"] = [terms.expand(a) for a in note["attributes"]]
    return sub


def _check_temporal_q(value: Any) -> None:
    """A TemporalQuery (5.2.21): timerel and timeAt (endTimeAt with between), timeproperty observedAt
    (the default), createdAt or modifiedAt."""
    from wecity.context.history import TimeFilter

    if not isinstance(value, dict):
        raise bad_request_data("temporalQ must be an object", "temporalQ 必须是对象")
    TimeFilter.parse(value.get("timerel"), value.get("timeAt"), value.get("endTimeAt"))
    if not value.get("timerel"):
        raise bad_request_data("temporalQ needs timerel and timeAt", "temporalQ 需要 timerel 和 timeAt")
    if value.get("timeproperty", "observedAt") not in ("observedAt", "createdAt", "modifiedAt"):
        raise bad_request_data("temporalQ.timeproperty must be observedAt, createdAt or modifiedAt",
                               "temporalQ.timeproperty 只能取 observedAt、createdAt 或 modifiedAt")


def _check_required(sub: dict[str, Any]) -> None:
    """The members a new subscription cannot do without."""
    if sub.get("type") != "Subscription":
        raise bad_request_data("type must be 'Subscription'", "type 必须是 'Subscription'")
    if "entities" not in sub and "watchedAttributes" not in sub:
        raise bad_request_data("a subscription needs entities or watchedAttributes",
                               "订阅需要 entities 或 watchedAttributes")
    if "notification" not in sub:
        raise bad_request_data("a subscription needs notification", "订阅需要 notification")


def _check_fragment(sub: dict[str, Any]) -> None:
    """An update fragment: it changes something, and removes no mandatory member."""
    if not sub:
        raise bad_request_data("the fragment changes nothing", "更新内容为空")
    for key in _MANDATORY:
        if key in sub and sub[key] is None:
            raise bad_request_data(f"{key} cannot be removed from a subscription", f"不能删除订阅的 {key}")
    if "type" in sub and sub["type"] != "Subscription":
        raise bad_request_data("type must be 'Subscription'", "type 必须是 'Subscription'")


def _check_time_interval(sub: dict[str, Any]) -> None:
    if sub.get("timeInterval") is None:
        return
    interval = sub["timeInterval"]
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval <= 0:
        raise bad_request_data("timeInterval must be a positive number of seconds", "timeInterval 必须是正的秒数")
    if sub.get("watchedAttributes") or sub.get("throttling"):
        raise bad_request_data("timeInterval cannot be combined with watchedAttributes or throttling",
                               "timeInterval 不能与 watchedAttributes 或 throttling 同时使用")


def _expanded_entities(items: Any, terms: TermMap) -> list[dict[str, Any]]:
    """The `entities` selectors checked, with their types expanded as matching reads them."""
    if not isinstance(items, list) or not items:
        raise bad_request_data("entities must be a non-empty list", "entities 必须是非空列表")
    expanded = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not item["type"]:
            raise bad_request_data("each entities item needs a type", "entities 的每一项都需要 type")
        if "id" in item and not is_uri(item["id"]):
            raise bad_request_data("entities id must be a URI", "entities 中的 id 必须是 URI")
        if "idPattern" in item:
            _check_pattern(item["idPattern"])
        selection = parse_type_selection(item["type"], terms)
        simple = _simple_type(item["type"]) and item["type"] != "*"
        expanded.append({"type": terms.expand(item["type"]) if simple else None,
                         # the expanded type selection (4.17): `types` when any of them will do
                         "types": selection.types,
                         "selection": None if simple or selection.test is None else item["type"],
                         "id": item.get("id"), "idPattern": item.get("idPattern")})
    return expanded


def _check_queries(sub: dict[str, Any], terms: TermMap) -> None:
    """q, csf and scopeQ (their syntax), and geoQ."""
    if sub.get("q") is not None:
        if not isinstance(sub["q"], str):
            raise bad_request_data("q must be a string", "q 必须是字符串")
        compile_q(unquote(sub["q"]), terms)
    for key in ("csf", "scopeQ"):
        if sub.get(key) is not None:
            if not isinstance(sub[key], str) or not _balanced(sub[key]):
                raise bad_request_data(f"{key} is not a valid query", f"{key} 不是有效的查询")
            if key == "csf":
                compile_q(unquote(sub[key]), terms)
    if sub.get("geoQ") is not None:
        parse_geoq(sub["geoQ"], terms.expand)


def _check_settings(sub: dict[str, Any], now: datetime | None) -> None:
    """throttling, expiresAt (not past), isActive, jsonldContext, datasetId and lang."""
    if sub.get("throttling") is not None:
        th = sub["throttling"]
        if not isinstance(th, int | float) or isinstance(th, bool) or th <= 0:
            raise bad_request_data("throttling must be a positive number of seconds", "throttling 必须是正的秒数")
    if sub.get("expiresAt") is not None:
        expires = parse_time(sub["expiresAt"], "expiresAt")
        if now is not None and expires <= now:
            raise bad_request_data("expiresAt is in the past", "expiresAt 已是过去的时间")
    if "isActive" in sub and not isinstance(sub["isActive"], bool):
        raise bad_request_data("isActive must be true or false", "isActive 必须是 true 或 false")
    if sub.get("jsonldContext") is not None and not is_uri(sub["jsonldContext"]):
        raise bad_request_data("jsonldContext must be a URI", "jsonldContext 必须是 URI")
    if sub.get("datasetId") is not None:
        ids = sub["datasetId"] if isinstance(sub["datasetId"], list) else [sub["datasetId"]]
        if not ids or not all(is_uri(d) for d in ids):
            raise bad_request_data("datasetId must be a URI or a list of URIs", "datasetId 必须是 URI 或 URI 列表")
    if sub.get("lang") is not None and not isinstance(sub["lang"], str):
        raise bad_request_data("lang must be a string", "lang 必须是字符串")


def _simple_type(text: str) -> bool:
    return not any(c in text for c in ",|;()")


def _check_pattern(pattern: Any) -> None:
    if not isinstance(pattern, str):
        raise bad_request_data("idPattern must be a string", "idPattern 必须是字符串")
    compile_pattern(pattern)


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0 and bool(text.strip())


def check_key_values(value: Any, what: str) -> None:
    """receiverInfo / notifierInfo: a list of {"key": string, "value": string} (5.2.22)."""
    ok = isinstance(value, list) and all(
        isinstance(p, dict) and set(p) == {"key", "value"} and isinstance(p["key"], str) and p["key"]
        and isinstance(p["value"], str) for p in value)
    if not ok:
        raise bad_request_data(f"{what} must be a list of string key and value pairs", f"{what} 必须是字符串键值对列表")
    reserved = sorted({p["key"] for p in value if p["key"].lower() in FORBIDDEN_HEADERS})
    if reserved:
        raise bad_request_data(f"{what} cannot set {', '.join(reserved)}: the broker sets these headers itself",
                               f"{what} 不能设置 {', '.join(reserved)}：这些请求头由代理自行设置")


def _validate_notification(note: Any, terms: TermMap) -> dict[str, Any]:
    if not isinstance(note, dict):
        raise bad_request_data("notification must be an object", "notification 必须是对象")
    note = {k: v for k, v in note.items() if k not in _SYSTEM}
    endpoint = note.get("endpoint")
    if not isinstance(endpoint, dict) or not is_uri(endpoint.get("uri")):
        raise bad_request_data("notification.endpoint.uri must be a URI", "notification.endpoint.uri 必须是 URI")
    mqtt = mqttnotify.is_mqtt(endpoint["uri"])
    if mqtt:
        try:
            mqttnotify.parse(endpoint["uri"])
        except ValueError as exc:
            raise bad_request_data(f"notification.endpoint.uri is not a usable MQTT endpoint: {exc}",
                                   "notification.endpoint.uri 不是可用的 MQTT 端点（mqtt[s]://[用户[:密码]@]主机[:端口]/主题）"
                                   ) from None
    elif not str(endpoint["uri"]).startswith(("http://", "https://")):
        raise operation_not_supported("a notification endpoint other than HTTP or MQTT is not supported",
                                      "不支持 HTTP 和 MQTT 以外的通知端点")
    accept = endpoint.get("accept", "application/json")
    if accept not in ("application/json", "application/ld+json"):
        raise bad_request_data("endpoint.accept must be application/json or application/ld+json",
                               "endpoint.accept 必须是 application/json 或 application/ld+json")
    for key in ("receiverInfo", "notifierInfo"):
        if key in endpoint:
            check_key_values(endpoint[key], f"endpoint.{key}")
    problem = mqttnotify.check_notifier_info(endpoint.get("notifierInfo") or []) if mqtt else None
    if problem:
        raise bad_request_data(f"endpoint.notifierInfo: {problem}",
                               "endpoint.notifierInfo 无效：MQTT-Version 取 mqtt3.1.1 或 mqtt5.0，MQTT-QoS 取 0、1 或 2")
    form = note.get("format", "normalized")
    if form not in FORMATS:
        raise bad_request_data(f"notification.format must be one of {', '.join(FORMATS)}",
                               "notification.format 无效")
    if note.get("showChanges") is not None and not isinstance(note["showChanges"], bool):
        raise bad_request_data("showChanges must be true or false", "showChanges 必须是 true 或 false")
    if note.get("sysAttrs") is not None and not isinstance(note["sysAttrs"], bool):
        raise bad_request_data("sysAttrs must be true or false", "sysAttrs 必须是 true 或 false")
    if note.get("showChanges") and form in ("keyValues", "simplified"):
        raise bad_request_data("showChanges cannot be used with the keyValues format",
                               "showChanges 不能与 keyValues 格式同时使用")
    for key in ("attributes", "pick", "omit"):
        if key in note:
            _names(note[key], f"notification.{key}")
    if "attributes" in note and ("pick" in note or "omit" in note):
        raise bad_request_data("notification.attributes cannot be combined with pick or omit",
                               "notification.attributes 不能与 pick 或 omit 同时使用")
    if set(note.get("pick", ())) & set(note.get("omit", ())):
        raise bad_request_data("a member cannot be both in pick and in omit", "同一成员不能同时出现在 pick 和 omit 中")
    notification.shape({"notification": note}, terms)  # the pick / omit grammar, join and joinLevel
    return note


# -- CRUD -----------------------------------------------------------------------------------------

def _derived(sub: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The columns kept beside the body: what matching and the periodic runner look up by index."""
    interval = sub.get("timeInterval")
    return dict(is_active=sub.get("isActive", True), expires_at=_expires(sub), throttling=sub.get("throttling"),
                time_interval=float(interval) if interval else None, next_notification_at=now if interval else None)


# The URL of the implicitly created @context of a subscription whose @context was not one URL: its
# jsonldContext when it names none itself (wecity.context.routes_contexts).
IMPLICIT_CONTEXT = "_jsonldContext"


def create(conn: Connection, env: Env, sub: dict[str, Any], context: Any, kind: str = ENTITY) -> str:
    sub_id = sub.setdefault("id", f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
    exists = conn.execute(sa.select(t.c.pk).where(t.c.tenant == env.tenant, t.c.subscription_id == sub_id)).first()
    if exists:
        raise already_exists(f"subscription {sub_id} already exists", f"订阅 {sub_id} 已存在")
    conn.execute(t.insert().values(tenant=env.tenant, subscription_id=sub_id, kind=kind, body=sub, context=context,
                                   times_sent=0, times_failed=0, created_at=env.now, modified_at=env.now,
                                   **_derived(sub, env.now)))
    keep_named_contexts(conn, env, context, sub.get("jsonldContext"))
    return str(sub_id)


def _expires(sub: dict[str, Any]) -> datetime | None:
    return parse_time(sub["expiresAt"], "expiresAt") if sub.get("expiresAt") else None


def _row(conn: Connection, tenant: str, sub_id: str, kind: str = ENTITY) -> Any:
    row = conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.subscription_id == sub_id,
                                          t.c.kind == kind)).first()
    if row is None:
        raise _not_found(sub_id)
    return row


def get(conn: Connection, tenant: str, sub_id: str, now: datetime, terms: TermMap | None = None,
        kind: str = ENTITY) -> dict[str, Any]:
    return render(_row(conn, tenant, sub_id, kind), now, terms)


def list_all(conn: Connection, tenant: str, now: datetime, *, limit: int, offset: int,
             terms: TermMap | None = None, kind: str = ENTITY) -> tuple[list[dict[str, Any]], int]:
    mine = (t.c.tenant == tenant, t.c.kind == kind)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(*mine)).scalar_one())
    rows = conn.execute(sa.select(t).where(*mine).order_by(t.c.pk).limit(limit).offset(offset))
    return [render(r, now, terms) for r in rows], total


_DERIVED_KEYS = {"entities": "_entities", "watchedAttributes": "_watched"}


def update(conn: Connection, env: Env, sub_id: str, fragment: dict[str, Any], kind: str = ENTITY) -> None:
    """PATCH: the members given replace those stored, null removes one; notification merges member-wise."""
    row = _row(conn, env.tenant, sub_id, kind)
    if "id" in fragment and fragment["id"] != sub_id:
        raise bad_request_data("the id of a subscription cannot change", "订阅的 id 不能修改")
    body = dict(row.body)
    for key, value in fragment.items():
        if key == "notification":
            body["notification"] = _keep_password(value, body.get("notification"))
            body.pop("_attrs", None)
            if fragment.get("_attrs"):
                body["_attrs"] = fragment["_attrs"]
        elif value is None:
            body.pop(key, None)
            body.pop(_DERIVED_KEYS.get(key, "-"), None)
        else:
            body[key] = value
    _check_whole(body, env.now)
    values = _derived(body, env.now)
    if values["time_interval"] is not None and row.time_interval == values["time_interval"] \
            and row.next_notification_at is not None:
        values["next_notification_at"] = row.next_notification_at
    if "isActive" not in body:
        # Re-activating (isActive dropped or status not given) keeps the paused state unless asked.
        values["is_active"] = row.is_active if "isActive" not in fragment else True
    conn.execute(t.update().where(t.c.pk == row.pk).values(body=body, modified_at=env.now, **values))
    if "jsonldContext" in fragment:
        keep_named_contexts(conn, env, body.get("jsonldContext"))


def _keep_password(new: dict[str, Any], old: Any) -> dict[str, Any]:
    """A notification given back as it was shown (the MQTT password masked) keeps the stored password."""
    uri = (new.get("endpoint") or {}).get("uri")
    kept = ((old or {}).get("endpoint") or {}).get("uri")
    if isinstance(uri, str) and isinstance(kept, str) and uri != kept and mqttnotify.masked(kept) == uri:
        return dict(new, endpoint=dict(new["endpoint"], uri=kept))
    return new


def _check_whole(body: dict[str, Any], now: datetime) -> None:
    """Rules across members, checked on the result of an update."""
    if "entities" not in body and "watchedAttributes" not in body:
        raise bad_request_data("a subscription needs entities or watchedAttributes",
                               "订阅需要 entities 或 watchedAttributes")
    if body.get("timeInterval") and (body.get("watchedAttributes") or body.get("throttling")):
        raise bad_request_data("timeInterval cannot be combined with watchedAttributes or throttling",
                               "timeInterval 不能与 watchedAttributes 或 throttling 同时使用")
    note = body.get("notification") or {}
    if "attributes" in note and ("pick" in note or "omit" in note):
        raise bad_request_data("notification.attributes cannot be combined with pick or omit",
                               "notification.attributes 不能与 pick 或 omit 同时使用")
    if note.get("showChanges") and note.get("format") in ("keyValues", "simplified"):
        raise bad_request_data("showChanges cannot be used with the keyValues format",
                               "showChanges 不能与 keyValues 格式同时使用")


def delete(conn: Connection, tenant: str, sub_id: str, kind: str = ENTITY) -> None:
    row = _row(conn, tenant, sub_id, kind)
    conn.execute(t.delete().where(t.c.pk == row.pk))


def _compacted(body: dict[str, Any], stored: dict[str, Any], terms: TermMap) -> None:
    """Entity types and attribute names in the terms of the reader's @context (they are kept expanded)."""
    items = stored.get("_entities")
    if isinstance(body.get("entities"), list) and items and len(items) == len(body["entities"]):
        body["entities"] = [dict(given, type=terms.compact(kept["type"])) if kept.get("type") else given
                            for given, kept in zip(body["entities"], items, strict=True)]
    if stored.get("_watched"):
        body["watchedAttributes"] = [terms.compact(w) for w in stored["_watched"]]
    if stored.get("_attrs") and isinstance(body.get("notification"), dict):
        body["notification"] = dict(body["notification"], attributes=[terms.compact(a) for a in stored["_attrs"]])


def render(row: Any, now: datetime, terms: TermMap | None = None) -> dict[str, Any]:
    """The subscription as the spec shows it: as given (names compacted with `terms` when given), with
    status, the default notificationTrigger and the notification's counters once there are some."""
    body = {k: v for k, v in row.body.items() if not k.startswith("_")}
    if "jsonldContext" not in body and row.body.get(IMPLICIT_CONTEXT):
        body["jsonldContext"] = row.body[IMPLICIT_CONTEXT]
    if terms is not None:
        _compacted(body, row.body, terms)
    expired = row.expires_at is not None and row.expires_at <= now
    body["status"] = "expired" if expired else ("active" if row.is_active else "paused")
    if row.kind == ENTITY:  # a registration has no triggers: it is new, updated or no longer matching
        body.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
    note = dict(body.get("notification", {}))
    endpoint = note.get("endpoint")
    if isinstance(endpoint, dict) and isinstance(endpoint.get("uri"), str):
        note["endpoint"] = dict(endpoint, uri=mqttnotify.masked(endpoint["uri"]))  # no password shown
    if row.times_sent:
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


def endpoint_uri(conn: Connection, tenant: str, sub_id: str) -> str | None:
    """The notification endpoint a subscription has now (with its credentials), if it still exists."""
    body = conn.execute(sa.select(t.c.body).where(t.c.tenant == tenant, t.c.subscription_id == sub_id)).scalar()
    uri = ((body or {}).get("notification") or {}).get("endpoint", {}).get("uri")
    return uri if isinstance(uri, str) else None


def record_sending(conn: Connection, tenant: str, sub_id: str, now: datetime) -> bool:
    """A notification is about to leave: counted before the subscriber can look (timesSent). False when
    the subscription is gone (deleted after the notification was queued): then it is not sent."""
    done = conn.execute(t.update().where(t.c.tenant == tenant, t.c.subscription_id == sub_id).values(
        last_notification=now, times_sent=t.c.times_sent + 1))
    return bool(done.rowcount)


def record_attempt(conn: Connection, tenant: str, sub_id: str, ok: bool, now: datetime) -> None:
    """What the delivery of one notification did, on the subscription's counters."""
    values: dict[str, Any] = {}
    if ok:
        values["last_success"] = now
    else:
        values["last_failure"] = now
        values["last_notification"] = now
        values["times_failed"] = t.c.times_failed + 1
    conn.execute(t.update().where(t.c.tenant == tenant, t.c.subscription_id == sub_id).values(**values))
