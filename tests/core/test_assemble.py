"""Each app is assembled from the domains' wiring into a registry of its own: two apps in one process
(two cities, or a test beside the demo) keep their own channels, tasks, listeners and working hours."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import time
from typing import Any

import httpx
from fastapi.testclient import TestClient

from wecity.api.app import create_app
from wecity.core import outbox
from wecity.core.assemble import build_context, wire_domains
from wecity.core.db import Database
from wecity.core.outbox import OutboxMessage
from wecity.core.registry import Registry
from wecity.geo.service import city_calendar

from ..conftest import City


def test_every_domain_wires_its_parts_into_the_registry() -> None:
    registry = wire_domains(Registry())
    assert {"cases.sla_clocks", "cases.ngsild", "cases.idempotency_purge", "media.sweep_orphans", "context.periodic_notifications"} <= set(registry.periodic)
    # Sensor rules hear of stored readings: the case engine's own, and the AI platform's anomaly conditions.
    assert [f.__module__ for f in registry.events.listeners("context.entity_changed")] == [
        "wecity.cases.sensors", "wecity.ai.anomaly_rules"]
    assert {"ai.duplicates", "insight.rollup"} <= set(registry.periodic)
    assert {f.__module__ for f in registry.commands} >= {"wecity.core.commands", "wecity.identity.commands",
                                                         "wecity.geo.commands", "wecity.notify.commands",
                                                         "wecity.iot.commands"}
    assert wire_domains(Registry()).periodic == registry.periodic  # wiring twice gives the same, not more


def _recording_client(seen: list[str]) -> httpx.AsyncClient:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(204)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def test_two_apps_in_one_process_deliver_through_their_own_channels(city: City) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}
    other_db = Database(city.settings.database_url, pool_size=2)
    apps = {"a": create_app(city.settings, clock=city.clock, db=city.db),
            "b": create_app(city.settings, clock=city.clock, db=other_db)}
    for name, app in apps.items():
        app.state.ctx.services["ngsild_http"] = _recording_client(seen[name])
    sub_id = "urn:ngsi-ld:Subscription:two-apps"
    message = OutboxMessage(id=1, channel="ngsild", target="http://receiver.example/notify", attempts=0,
                            created_at=city.clock.now(),
                            payload={"notification": {"id": "urn:n:1", "type": "Notification", "data": []},
                                     "subscriptionId": sub_id})
    try:
        with TestClient(apps["a"]) as a, TestClient(apps["b"]):  # both started: B's start must not replace A's channel
            # a notification is sent only while its subscription exists
            assert a.post("/ngsi-ld/v1/subscriptions", headers={"Authorization": f"Bearer {city.api_key}"}, json={
                "id": sub_id, "type": "Subscription", "entities": [{"type": "Manhole"}],
                "notification": {"endpoint": {"uri": "http://receiver.example/notify"}}}).status_code == 201
            ctx_a, ctx_b = apps["a"].state.ctx, apps["b"].state.ctx
            assert ctx_a.registry is not ctx_b.registry
            [outcome] = asyncio.run(outbox.deliver([message], ctx_a.registry.channels))
            assert outcome.error is None
            assert seen == {"a": ["http://receiver.example/notify"], "b": []}
    finally:
        other_db.close()


def test_working_hours_belong_to_the_app_that_set_them(city: City) -> None:
    a = build_context(replace(city.settings, work_hours="08:00-16:00"), db=city.db)
    other_db = Database(city.settings.database_url, pool_size=2)
    try:
        b = build_context(replace(city.settings, work_hours="09:00-12:00,13:30-17:30"), db=other_db)
        hours: dict[str, Any] = {name: ctx.db.read_sync(city_calendar).hours for name, ctx in (("a", a), ("b", b))}
    finally:
        other_db.close()
    assert hours["a"] == ((time(8), time(16)),)
    assert hours["b"] == ((time(9), time(12)), (time(13, 30), time(17, 30)))
