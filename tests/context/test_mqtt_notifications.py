"""NGSI-LD notifications to MQTT endpoints (GS CIM 009 clause 7): the endpoint checked at subscription, its
password never shown, and, against the real Mosquitto, the message of clause 7.2 on the subscribed topic
with the QoS and protocol version `notifierInfo` asks for, connections reused, failures retried and dead."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlparse

import aiomqtt
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.conftest import City
from tests.context.conftest import BASE, entity, prop
from wecity.api.app import create_app
from wecity.context import subscriptions
from wecity.context.mqttnotify import Publisher
from wecity.core import outbox
from wecity.core.models import outbox_messages as outbox_table
from wecity.core.outbound import OutboundPolicy
from wecity.core.runner import Runner

MQTT_URL = os.environ.get("WECITY_TEST_MQTT_URL")
needs_mosquitto = pytest.mark.skipif(not MQTT_URL, reason="needs Mosquitto: WECITY_TEST_MQTT_URL (make test starts it)")
HOST = urlparse(MQTT_URL or "").hostname or "127.0.0.1"
PORT = urlparse(MQTT_URL or "").port or 1883
SUBS = f"{BASE}/subscriptions"
E1 = "urn:ngsi-ld:Manhole:1"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def sub(uri: str, **endpoint: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Manhole"}],
            "notification": {"endpoint": {"uri": uri, **endpoint}}}


def topic() -> str:
    return f"wecity-test/{uuid.uuid4().hex}/notify"


class Broker:
    """The NGSI-LD API of an app that may notify 127.0.0.1, and its outbox runner."""

    def __init__(self, client: TestClient, ctx: Any) -> None:
        self.client, self.ctx = client, ctx
        self.runner = Runner(ctx)

    def run(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Run `work` on an event loop of its own; the MQTT connections made on it are closed after."""

        async def main() -> Any:
            try:
                return await work()
            finally:
                await self.ctx.services["ngsild_mqtt"].close()

        return asyncio.run(main())

    def deliver_and_listen(self, where: str, *, count: int = 1, qos: int = 2, deliveries: int = 1,
                           wait: float = 5.0) -> list[aiomqtt.Message]:
        """Subscribe to `where` (MQTT 5, so user properties arrive), run the outbox `deliveries` times,
        and gather `count` messages."""

        async def work() -> list[aiomqtt.Message]:
            got: list[aiomqtt.Message] = []
            async with aiomqtt.Client(HOST, PORT, protocol=aiomqtt.ProtocolVersion.V5) as listener:
                await listener.subscribe(where, qos=qos)
                for _ in range(deliveries):
                    await self.runner.deliver_outbox()
                async with asyncio.timeout(wait):
                    async for msg in listener.messages:
                        got.append(msg)
                        if len(got) == count:
                            break
            return got

        return self.run(work)  # type: ignore[no-any-return]


@pytest.fixture
def mq(city: City) -> Iterator[Broker]:
    app = create_app(replace(city.settings, outbound_allow=("127.0.0.1",)), clock=city.clock, db=city.db)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        yield Broker(client, app.state.ctx)


def _outbox_rows(ctx: Any) -> list[Any]:
    return ctx.db.read_sync(lambda c: list(c.execute(sa.select(outbox_table))))


# -- the endpoint, checked and shown ----------------------------------------------------------------

def test_mqtt_endpoints_are_checked_at_subscription(mq: Broker) -> None:
    bad = [sub("mqtt://127.0.0.1:1883"), sub("mqtt://127.0.0.1:1883/"), sub("mqtt://127.0.0.1/a/+/b"),
           sub("mqtt://127.0.0.1/a/#"), sub("mqtt://127.0.0.1:99999/t"),
           sub("mqtt://127.0.0.1/t", notifierInfo=[{"key": "MQTT-QoS", "value": "3"}]),
           sub("mqtt://127.0.0.1/t", notifierInfo=[{"key": "MQTT-Version", "value": "mqtt3.1"}])]
    for body in bad:
        answer = mq.client.post(SUBS, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["type"] == ERR + "BadRequestData"
    answer = mq.client.post(SUBS, json=sub("amqp://127.0.0.1/queue"))
    assert answer.status_code == 422 and answer.json()["type"] == ERR + "OperationNotSupported"
    good = sub("mqtts://127.0.0.1/city/alerts", notifierInfo=[{"key": "MQTT-Version", "value": "mqtt5.0"},
                                                             {"key": "MQTT-QoS", "value": "1"}])
    assert mq.client.post(SUBS, json=good).status_code == 201


def test_internal_broker_addresses_are_refused_unless_allowed(city: City) -> None:
    app = create_app(city.settings, clock=city.clock, db=city.db)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        for host in ("127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254", "[::1]"):
            answer = client.post(SUBS, json=sub(f"mqtt://{host}:1883/t"))
            assert answer.status_code == 400, (host, answer.text)
            assert "WECITY_OUTBOUND_ALLOW" in answer.json()["detail"]
        assert client.post(SUBS, json=sub("mqtt://broker.example.org/t")).status_code == 201


def test_the_password_is_never_shown(mq: Broker) -> None:
    uri = "mqtt://alice:s3cret@127.0.0.1:1883/city/alerts"
    location = mq.client.post(SUBS, json=sub(uri)).headers["Location"]
    shown = mq.client.get(location).json()
    assert shown["notification"]["endpoint"]["uri"] == "mqtt://alice:***@127.0.0.1:1883/city/alerts"
    listed = mq.client.get(SUBS).json()
    assert "s3cret" not in json.dumps(listed) and "alice:***@" in json.dumps(listed)
    # What was shown, given back, keeps the password; a new URI replaces it.
    shown["notification"]["format"] = "keyValues"
    assert mq.client.patch(location, json={"notification": shown["notification"]}).status_code == 204
    stored = mq.ctx.db.read_sync(subscriptions.endpoint_uri, "", shown["id"])
    assert stored == uri
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    (row,) = _outbox_rows(mq.ctx)  # what operators see of queued and dead notifications
    assert row.target == "mqtt://alice:***@127.0.0.1:1883/city/alerts"
    assert "s3cret" not in json.dumps(row.payload)


# -- delivery, against Mosquitto ------------------------------------------------------------------

@needs_mosquitto
def test_notification_is_published_as_metadata_and_body(mq: Broker) -> None:
    where = topic()
    mq.client.post(SUBS, json=sub(f"mqtt://{HOST}:{PORT}/{where}",
                                  receiverInfo=[{"key": "X-Fleet", "value": "north"}]))
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    (msg,) = mq.deliver_and_listen(where)
    assert str(msg.topic) == where and msg.qos == 0  # MQTT-QoS defaults to 0
    message = json.loads(msg.payload)  # type: ignore[arg-type]
    assert set(message) == {"metadata", "body"}
    metadata, body = message["metadata"], message["body"]
    assert metadata["Content-Type"] == "application/json"
    assert 'rel="http://www.w3.org/ns/json-ld#context"' in metadata["Link"]
    assert metadata["X-Fleet"] == "north"
    assert body["type"] == "Notification" and body["subscriptionId"].startswith("urn:ngsi-ld:Subscription:")
    assert body["data"][0]["id"] == E1 and body["data"][0]["depth"]["value"] == 1
    assert msg.properties is None or not getattr(msg.properties, "UserProperty", None)  # MQTT 3.1.1: none
    shown = mq.client.get(f"{SUBS}/{body['subscriptionId']}").json()["notification"]
    assert shown["timesSent"] == 1 and shown["status"] == "ok" and "lastSuccess" in shown


@needs_mosquitto
@pytest.mark.parametrize("qos", [1, 2])
def test_mqtt5_and_the_qos_asked_for(mq: Broker, qos: int) -> None:
    where = topic()
    mq.client.post(SUBS, json=sub(f"mqtt://{HOST}:{PORT}/{where}", accept="application/ld+json",
                                  notifierInfo=[{"key": "MQTT-Version", "value": "mqtt5.0"},
                                                {"key": "MQTT-QoS", "value": str(qos)}],
                                  receiverInfo=[{"key": "X-Fleet", "value": "north"}]),
                   headers={"NGSILD-Tenant": "changsha"})
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)), headers={"NGSILD-Tenant": "changsha"})
    (msg,) = mq.deliver_and_listen(where, qos=2)
    assert msg.qos == qos  # the subscriber asked for 2: what it gets is what the notifier published with
    message = json.loads(msg.payload)  # type: ignore[arg-type]
    assert message["metadata"]["Content-Type"] == "application/ld+json" and "Link" not in message["metadata"]
    assert message["metadata"]["NGSILD-Tenant"] == "changsha"
    assert "@context" in message["body"] and "@context" in message["body"]["data"][0]
    assert msg.properties is not None and msg.properties.ContentType == "application/json"
    assert ("X-Fleet", "north") in msg.properties.UserProperty


@needs_mosquitto
def test_credentials_in_the_uri_are_used_and_not_logged(mq: Broker, caplog: pytest.LogCaptureFixture) -> None:
    # The test broker lets anyone in, so the credentials are sent and accepted; they must not show anywhere.
    where = topic()
    mq.client.post(SUBS, json=sub(f"mqtt://alice:s3cret@{HOST}:{PORT}/{where}"))
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    with caplog.at_level(logging.DEBUG):
        (msg,) = mq.deliver_and_listen(where)
    assert json.loads(msg.payload)["body"]["data"][0]["id"] == E1  # type: ignore[arg-type]
    assert "s3cret" not in caplog.text


@needs_mosquitto
def test_one_connection_serves_many_notifications_and_closes_when_idle(mq: Broker) -> None:
    where = topic()
    mq.client.post(SUBS, json=sub(f"mqtt://{HOST}:{PORT}/{where}"))
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    mq.client.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 2})
    mq.client.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 3})
    publisher: Publisher = mq.ctx.services["ngsild_mqtt"]
    publisher.idle_seconds = 0.5
    got = mq.deliver_and_listen(where, count=3)
    assert len(got) == 3 and publisher.connects == 1

    async def idle() -> int:
        mq.client.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 4})
        await mq.runner.deliver_outbox()
        before = len(publisher._connections)
        await asyncio.sleep(1.6)  # the reaper looks every second at least
        return before * 10 + len(publisher._connections)

    assert mq.run(idle) == 10  # one connection open after the notification, none once idle
    assert publisher.connects == 2


@needs_mosquitto
def test_unreachable_broker_is_retried_then_dead(mq: Broker) -> None:
    mq.client.post(SUBS, json=sub("mqtt://127.0.0.1:1/city/alerts"))  # nothing listens on port 1
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    assert mq.run(mq.runner.deliver_outbox) == 1
    (row,) = _outbox_rows(mq.ctx)
    assert row.status == outbox.PENDING and row.attempts == 1 and row.last_error
    mq.ctx.db.write_sync(lambda c: c.execute(sa.update(outbox_table).values(next_attempt_at=mq.ctx.clock.now())))
    mq.runner.policy = outbox.RetryPolicy(max_attempts=2)
    assert mq.run(mq.runner.deliver_outbox) == 1
    (row,) = _outbox_rows(mq.ctx)
    assert row.status == outbox.DEAD and row.attempts == 2
    shown = mq.client.get(SUBS).json()[0]["notification"]
    assert shown["timesFailed"] == 2 and shown["status"] == "failed" and "lastFailure" in shown


@needs_mosquitto
def test_an_address_refused_when_delivering_is_dead_at_once(mq: Broker) -> None:
    mq.client.post(SUBS, json=sub(f"mqtt://{HOST}:{PORT}/{topic()}"))
    mq.client.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    # The policy that delivers does not allow loopback (as when a name later resolves to it).
    mq.ctx.services["ngsild_mqtt"] = Publisher(OutboundPolicy())
    assert mq.run(mq.runner.deliver_outbox) == 1
    (row,) = _outbox_rows(mq.ctx)
    assert row.status == outbox.DEAD and row.attempts == 1
    assert mq.client.get(SUBS).json()[0]["notification"]["timesFailed"] == 1
