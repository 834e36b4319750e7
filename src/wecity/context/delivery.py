"""Delivery of NGSI-LD notifications taken from the outbox: an HTTP POST to the subscriber, and the
subscription's timesSent / lastNotification / lastSuccess / lastFailure kept as the spec says."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from wecity.context import subscriptions
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
    """The "ngsild" outbox channel for this app: POSTs each notification with the app's HTTP client, under
    the outbound policy (wecity.core.outbound)."""
    policy = OutboundPolicy.from_settings(ctx.settings)

    async def deliver(message: OutboxMessage) -> None:
        payload = message.payload
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
        client: httpx.AsyncClient = ctx.services["ngsild_http"]
        tenant, sub_id = payload.get("tenant", ""), payload["subscriptionId"]
        # Counted before it leaves, so a subscriber that looks as soon as it is told sees it counted.
        await ctx.db.write(subscriptions.record_sending, tenant, sub_id, ctx.clock.now())
        status: int | None = None
        try:
            response = await outbound.post(client, policy, message.target,
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

    return deliver
