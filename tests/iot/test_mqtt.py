"""The listener's MQTT connection against the real Mosquitto: messages arrive in bursts, and a QoS 1 message
is acknowledged only when told, so what was not acknowledged comes again on the next connection."""

from __future__ import annotations

import asyncio
import os
import uuid

import paho.mqtt.publish as publish
import pytest

from wecity.iot.mqtt import Message, Subscriber

MQTT_URL = os.environ.get("WECITY_TEST_MQTT_URL")
pytestmark = pytest.mark.skipif(not MQTT_URL, reason="needs Mosquitto: WECITY_TEST_MQTT_URL (make test starts it)")


async def _receive(client_id: str, topic: str, want: int, *, ack: bool, seconds: float = 5.0) -> list[Message]:
    got: list[Message] = []
    bursts: list[int] = []
    subscriber = Subscriber("127.0.0.1", 1883, client_id=client_id, topic=topic, session_expiry=300,
                            on_messages=lambda batch: (got.extend(batch), bursts.append(len(batch))))
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), 5)
        if want:
            deadline = asyncio.get_running_loop().time() + seconds
            while len(got) < want and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
        else:
            await asyncio.sleep(1.0)  # long enough for a redelivery to show up
        if ack:
            subscriber.ack(got)
            await asyncio.sleep(0.3)  # the PUBACKs leave from paho's thread
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    assert len(bursts) <= len(got)
    return got


def _publish(topic: str, n: int) -> None:
    publish.multiple([{"topic": topic, "payload": f'{{"n": {i}}}', "qos": 1} for i in range(n)],
                     hostname="127.0.0.1", port=1883)


def test_unacknowledged_messages_come_again_and_acknowledged_ones_do_not() -> None:
    topic = f"wecity-test/{uuid.uuid4().hex}"
    client_id = f"wecity-test-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[list[Message], list[Message], list[Message]]:
        await _receive(client_id, topic, 0, ack=False)  # makes the persistent session and its subscription
        _publish(topic, 200)
        first = await _receive(client_id, topic, 200, ack=False)
        second = await _receive(client_id, topic, 200, ack=True)
        third = await _receive(client_id, topic, 0, ack=False)
        return first, second, third

    first, second, third = asyncio.run(scenario())
    assert sorted(m.payload for m in first) == sorted(f'{{"n": {i}}}'.encode() for i in range(200))
    assert {m.qos for m in first} == {1}
    assert sorted(m.payload for m in second) == sorted(m.payload for m in first)  # not acknowledged: again
    assert third == []  # acknowledged: gone
