"""Delivery of NGSI-LD notifications taken from the outbox: an HTTP POST to the subscriber, or a message
published on an MQTT endpoint (`mqttnotify`), and the subscription's timesSent / lastNotification /
lastSuccess / lastFailure kept as the spec says."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from wecity.context import mqttnotify, subscriptions
from wecity.context.ldcontext import CORE_URL, link_header
from wecity.core import outbound
from wecity.core.context import AppContext
from wecity.core.outbound import OutboundPolicy
from wecity.core.outbox import OutboxMessage, Undeliverable

log = logging.getLogger(__name__)


def _link_for(context: Any) -> tuple[str, Any]:
    """The Link header URL and the @context member for a notification compacted with `context`."""
    if isinstance(context, str):
        return context, context
    if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
        return context[0], context
    return CORE_URL, context if context is not None else CORE_URL


def make_deliver(ctx: AppContext) -> Callable[[OutboxMessage], Awaitable[None]]:
    """The "ngsild" outbox channel for this app: POSTs each notification with the app's HTTP client, or
    publishes it with the app's MQTT publisher, under the outbound policy (wecity.core.outbound)."""
    policy = OutboundPolicy.from_settings(ctx.settings)

    async def deliver(message: OutboxMessage) -> None:
        payload = message.payload
        body, headers = _prepared(payload)
        tenant, sub_id = payload.get("tenant", ""), payload["subscriptionId"]
        mqtt = mqttnotify.is_mqtt(message.target)
        endpoint = await _mqtt_endpoint(ctx, message.target, tenant, sub_id) if mqtt else None
        # Counted before it leaves, so a subscriber that looks as soon as it is told sees it counted.
        if not await ctx.db.write(subscriptions.record_sending, tenant, sub_id, ctx.clock.now()):
            # Deleted after the notification was queued: nobody is subscribed any more, nothing to send.
            log.debug("notification of deleted subscription %s dropped", sub_id)
            return
        with _in_flight(ctx, tenant, sub_id):
            await _send(ctx, policy, message, payload, body, headers, endpoint)

    return deliver


async def _send(ctx: AppContext, policy: OutboundPolicy, message: OutboxMessage, payload: dict[str, Any],
                body: dict[str, Any], headers: dict[str, str], endpoint: mqttnotify.Endpoint | None) -> None:
    """Send one notification and record what the subscriber answered."""
    tenant, sub_id = payload.get("tenant", ""), payload["subscriptionId"]
    status: int | None = None
    try:
        if endpoint is not None:
            version, qos = mqttnotify.settings(payload.get("notifierInfo"))
            publisher: mqttnotify.Publisher = ctx.services["ngsild_mqtt"]
            await publisher.publish(endpoint, version, qos, headers, body)
            status = 200  # the broker took it (at QoS 1 and 2, acknowledged)
        else:
            http: httpx.AsyncClient = ctx.services["ngsild_http"]
            response = await outbound.post(http, policy, message.target,
                                           content=json.dumps(body, ensure_ascii=False).encode(), headers=headers)
            status = response.status_code
    except outbound.OutboundRefused as exc:
        # An address the policy refuses will not become allowed by trying again.
        await ctx.db.write(subscriptions.record_attempt, tenant, sub_id, False, ctx.clock.now())
        raise Undeliverable(str(exc)) from None
    except outbound.OutboundFailed as exc:
        error = str(exc)
    else:
        error = f"subscriber answered {status}"
    ok = status is not None and 200 <= status < 300
    await ctx.db.write(subscriptions.record_attempt, tenant, sub_id, ok, ctx.clock.now())
    if not ok:
        if status == 410:
            raise Undeliverable(error)
        raise RuntimeError(error)


SETTLE_SECONDS = 1.0  # the longest a read of a subscription waits for its notification's answer


@contextlib.contextmanager
def _in_flight(ctx: AppContext, tenant: str, sub_id: str) -> Iterator[None]:
    """Mark a notification of the subscription as on its way until its answer is recorded (`settled`)."""
    flights: dict[tuple[str, str], asyncio.Event] = ctx.services.setdefault("ngsild_in_flight", {})
    key, event = (tenant, sub_id), asyncio.Event()
    flights[key] = event
    try:
        yield
    finally:
        event.set()
        if flights.get(key) is event:
            del flights[key]


async def settled(ctx: AppContext, tenant: str, sub_id: str) -> None:
    """Wait, a second at most, for the answer to a notification of the subscription that is on its way
    from this process: a subscriber that reads its subscription as soon as it has answered finds the
    answer counted (lastSuccess or lastFailure), not a moment early."""
    event = ctx.services.get("ngsild_in_flight", {}).get((tenant, sub_id))
    if event is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), SETTLE_SECONDS)


def _prepared(payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The notification and the headers that go with it (over MQTT, the message's `metadata`)."""
    body = dict(payload["notification"])
    headers = {"Content-Type": payload.get("accept", "application/json")}
    link, ctx_member = _link_for(payload.get("context"))
    if headers["Content-Type"] == "application/ld+json":
        body["@context"] = ctx_member
        # Each entity is a JSON-LD document of its own as well, for receivers that take `data` apart.
        body["data"] = [dict(d, **{"@context": ctx_member}) if isinstance(d, dict) else d
                        for d in body.get("data", [])]
    else:
        headers["Link"] = link_header(link)
    if payload.get("tenant"):
        headers["NGSILD-Tenant"] = payload["tenant"]
    for item in payload.get("receiverInfo", []):
        if isinstance(item, dict) and "key" in item and "value" in item:
            headers[str(item["key"])] = str(item["value"])
    return body, headers


async def _mqtt_endpoint(ctx: AppContext, target: str, tenant: str, sub_id: str) -> mqttnotify.Endpoint:
    """The MQTT endpoint to publish on. The outbox holds the URI with its password masked; the password
    is read from the subscription, which must still notify that endpoint."""
    uri = target
    if urlsplit(target).password is not None:
        current = await ctx.db.read(subscriptions.endpoint_uri, tenant, sub_id)
        if current is None or mqttnotify.masked(current) != target:
            raise Undeliverable("the subscription no longer notifies this MQTT endpoint")
        uri = current
    try:
        return mqttnotify.parse(uri)
    except ValueError as exc:
        raise Undeliverable(f"not an MQTT endpoint: {exc}") from None
