"""The listener's MQTT connection against the real Mosquitto: messages arrive in bursts, and a QoS 1 message
is acknowledged only when told, so what was not acknowledged comes again on the next connection.

What a connection was given, and that the broker has read what it sent, is known by an echo: the
connection publishes a marker on its own topic and waits for it to come back. The broker reads a
connection's packets in order (the SUBSCRIBE and any PUBACKs before the marker) and writes what it holds
for a session (messages queued while it was away, unacknowledged ones sent again) right after the CONNACK,
before anything published later. So once the echo is back, the session has received everything it would
get and the broker has taken its acknowledgements: "nothing came again" is then an observation, not the
absence of news after an arbitrary wait. (Without the echo, closing right after acknowledging and
reconnecting at once can reach the broker first, and it drops the old connection's unread PUBACKs.)
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlparse

import paho.mqtt.publish as publish
import pytest
from paho.mqtt.packettypes import PacketTypes

from wecity.iot.mqtt import Message, Subscriber

MQTT_URL = os.environ.get("WECITY_TEST_MQTT_URL")
pytestmark = pytest.mark.skipif(not MQTT_URL, reason="needs Mosquitto: WECITY_TEST_MQTT_URL (make test starts it)")
HOST = urlparse(MQTT_URL or "").hostname or "127.0.0.1"
PORT = urlparse(MQTT_URL or "").port or 1883
MARKER = b"marker-"


async def _echo(subscriber: Subscriber, topic: str, got: list[Message]) -> None:
    """Publish a marker on `subscriber`'s own connection and wait until it comes back to it."""
    marker = MARKER + uuid.uuid4().hex.encode()
    client = subscriber._client  # the connection itself: the broker reads its packets in order
    assert client is not None
    client.publish(topic, marker, qos=0)
    deadline = asyncio.get_running_loop().time() + 10
    while not any(m.payload == marker for m in got):
        assert asyncio.get_running_loop().time() < deadline, "the marker never came back"
        await asyncio.sleep(0.02)


async def _receive(client_id: str, topic: str, *, ack: bool) -> list[Message]:
    """Connect with the persistent session `client_id`, take everything the broker holds for it, acknowledge
    it if `ack`, disconnect; the messages other than markers."""
    got: list[Message] = []
    bursts: list[int] = []
    subscriber = Subscriber(HOST, PORT, client_id=client_id, topic=topic, session_expiry=300,
                            on_messages=lambda batch: (got.extend(batch), bursts.append(len(batch))))
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        await _echo(subscriber, topic, got)  # everything held for the session has arrived before it
        if ack:
            subscriber.ack(got)
            await _echo(subscriber, topic, got)  # the broker has read the PUBACKs sent before it
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    assert len(bursts) <= len(got)
    return [m for m in got if not m.payload.startswith(MARKER)]


def _publish(topic: str, n: int) -> None:
    publish.multiple([{"topic": topic, "payload": f'{{"n": {i}}}', "qos": 1} for i in range(n)],
                     hostname=HOST, port=PORT)


def test_unacknowledged_messages_come_again_and_acknowledged_ones_do_not() -> None:
    topic = f"wecity-test/{uuid.uuid4().hex}"
    client_id = f"wecity-test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Message], list[Message], list[Message], list[Message]]:
        made = await _receive(client_id, topic, ack=False)  # makes the persistent session and its subscription
        _publish(topic, 200)  # while the session is away: the broker keeps them for it
        first = await _receive(client_id, topic, ack=False)
        second = await _receive(client_id, topic, ack=True)
        third = await _receive(client_id, topic, ack=False)
        return made, first, second, third

    made, first, second, third = asyncio.run(scenario())
    assert made == []
    assert sorted(m.payload for m in first) == sorted(f'{{"n": {i}}}'.encode() for i in range(200))
    assert {m.qos for m in first} == {1}
    assert sorted(m.payload for m in second) == sorted(m.payload for m in first)  # not acknowledged: again
    assert third == []  # acknowledged: gone (and this connection's echo did come back)


def test_connected_means_subscribed_not_merely_connected() -> None:
    """`connected` is what callers wait for before publishing: set at CONNACK, a reading published by another
    client before the broker has taken the SUBSCRIBE finds no subscription and is dropped."""
    from paho.mqtt.reasoncodes import ReasonCode

    class Client:
        subscribed: list[str] = []

        def subscribe(self, topic: str, qos: int) -> None:
            self.subscribed.append(topic)

    async def scenario() -> None:
        subscriber = Subscriber(HOST, PORT, client_id="unit", topic="wecity-test/unit", on_messages=lambda batch: None)
        subscriber._loop = asyncio.get_running_loop()
        client = Client()
        subscriber._on_connect(client, None, None, ReasonCode(PacketTypes.CONNACK, "Success"), None)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert client.subscribed == ["wecity-test/unit"]
        assert not subscriber.connected.is_set()
        refused = ReasonCode(PacketTypes.SUBACK, "Not authorized")
        subscriber._on_subscribe(client, None, 1, [refused], None)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
        assert not subscriber.connected.is_set()
        granted = ReasonCode(PacketTypes.SUBACK, "Granted QoS 1")
        subscriber._on_subscribe(client, None, 2, [granted], None)  # type: ignore[arg-type]
        await asyncio.wait_for(subscriber.connected.wait(), 1)

    asyncio.run(scenario())
