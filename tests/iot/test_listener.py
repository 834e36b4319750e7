"""The MQTT listener against the real broker: readings stored, QoS 1 acknowledged after the commit,
unknown devices and garbage counted without stopping the listener, a failed commit retried."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest

from tests.conftest import City
from wecity.context import service as context
from wecity.context.ldcontext import ContextStore
from wecity.core.assemble import build_context
from wecity.core.errors import DependencyUnavailable
from wecity.iot import service
from wecity.iot.listener import MqttListener

URL = os.environ.get("WECITY_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
TILT = ContextStore().core.expand("tiltAngle")


def _broker_up() -> bool:
    parsed = urlparse(URL)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 1883), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_up(), reason=f"no MQTT broker at {URL} (make test starts Mosquitto)")


def _publish(messages: list[tuple[str, bytes]]) -> None:
    parsed = urlparse(URL)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    client.loop_start()
    try:
        infos = [client.publish(topic, body, qos=1) for topic, body in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
    finally:
        client.disconnect()
        client.loop_stop()


async def _until(check: Callable[[], bool], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _run(city: City, body: Callable[[MqttListener, str], object]) -> None:
    tenant = "t" + uuid.uuid4().hex[:10]
    for n in range(3):
        city.db.write_sync(lambda conn, n=n: service.provision(
            conn, tenant=tenant, device_id=f"m{n}", entity_id=f"urn:ngsi-ld:Manhole:m{n}", entity_type="Manhole",
            now=city.clock.now()))

    async def main() -> None:
        ctx = build_context(city.settings, db=city.db, clock=city.clock)
        listener = MqttListener(ctx, URL, share_group=None, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                clean_session=True)
        await listener.start()
        try:
            await asyncio.wait_for(listener.connected.wait(), 10)
            await body(listener, tenant)  # type: ignore[misc]
        finally:
            await listener.stop()

    asyncio.run(main())


def test_readings_are_stored_and_bad_messages_counted(city: City) -> None:
    async def body(listener: MqttListener, tenant: str) -> None:
        messages = [(f"wecity/{tenant}/devices/m{i % 3}/attrs", f'{{"tiltAngle": {i}}}'.encode()) for i in range(300)]
        messages += [(f"wecity/{tenant}/devices/ghost/attrs", b'{"tiltAngle": 1}'),
                     (f"wecity/{tenant}/devices/m0/attrs", b"\xff garbage"),
                     (f"wecity/{tenant}/devices/m1/attrs", b'{"a b": 1}')]
        await asyncio.to_thread(_publish, messages)
        await _until(lambda: listener.counts["stored"] >= 300 and listener.counts["malformed"] >= 2
                     and listener.counts["unknown_device"] >= 1)
        got = city.db.read_sync(context.get, tenant, "urn:ngsi-ld:Manhole:m0")
        assert got is not None and got.attrs[TILT]["value"] == 297
        # The listener is still there after the garbage.
        await asyncio.to_thread(_publish, [(f"wecity/{tenant}/devices/m2/attrs", b'{"tiltAngle": 99}')])
        await _until(lambda: city.db.read_sync(context.get, tenant, "urn:ngsi-ld:Manhole:m2").attrs[TILT]["value"] == 99)

    _run(city, body)


def test_a_failed_commit_is_retried_before_acknowledging(city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = city.db.write
    failures = {"left": 2}

    async def flaky_write(fn, *args):  # type: ignore[no-untyped-def]
        if failures["left"] > 0:
            failures["left"] -= 1
            raise DependencyUnavailable("database unavailable", code="db.unavailable")
        return await real_write(fn, *args)

    async def body(listener: MqttListener, tenant: str) -> None:
        monkeypatch.setattr(city.db, "write", flaky_write)
        await asyncio.to_thread(_publish, [(f"wecity/{tenant}/devices/m1/attrs", b'{"tiltAngle": 7}')])
        await _until(lambda: listener.counts["stored"] == 1)
        assert failures["left"] == 0
        assert city.db.read_sync(context.get, tenant, "urn:ngsi-ld:Manhole:m1").attrs[TILT]["value"] == 7

    _run(city, body)
