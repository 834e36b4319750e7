"""The MQTT listener: readings from `wecity/{tenant}/devices/{device_id}/attrs`, stored in batches, and
acknowledged (QoS 1) only after the batch holding them has committed.

paho-mqtt runs the network in its own thread with manual acknowledgement; messages cross into asyncio
through a queue; one task takes what has arrived (up to `batch_max`), stores it in one transaction and then
sends the PUBACKs. A failed commit is retried with backoff and nothing is acknowledged meanwhile, so the
broker keeps the messages (a persistent session redelivers them after a crash). Unknown devices and
malformed payloads are counted, logged and acknowledged: sending them again would not help.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, urlparse

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import Counter as PromCounter

from wecity.context.ldcontext import ContextStore
from wecity.core.context import AppContext
from wecity.core.errors import DependencyUnavailable
from wecity.iot.service import IngestResult, Reading, ingest, parse

log = logging.getLogger(__name__)
TOPIC = "wecity/+/devices/+/attrs"
RECEIVE_MAXIMUM = 20_000
SESSION_EXPIRY = 24 * 3600
MESSAGES = PromCounter("wecity_iot_messages", "MQTT device messages by outcome", ["outcome"])


class MqttListener:
    def __init__(self, ctx: AppContext, url: str, *, share_group: str | None = "wecity", client_id: str | None = None,
                 clean_session: bool = False, batch_max: int = 5000, batch_wait: float = 0.005) -> None:
        # mqtt://host:port?client_id=...&share=...&clean=1 : one process's identity and shared-subscription
        # group; several `wecity serve` processes need distinct client ids and the same group.
        parsed = urlparse(url)
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        client_id = options.get("client_id", client_id)
        share_group = options.get("share", share_group) or None
        clean_session = options.get("clean", "1" if clean_session else "0") in ("1", "true", "yes")
        self.ctx = ctx
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        self.tls = parsed.scheme == "mqtts"
        self.username, self.password = parsed.username, parsed.password
        self.topic = f"$share/{share_group}/{TOPIC}" if share_group else TOPIC
        self.client_id = client_id or f"wecity-{socket.gethostname()}"
        self.clean_session = clean_session
        self.batch_max = batch_max
        self.batch_wait = batch_wait
        self.counts: Counter[str] = Counter()
        self.connected = asyncio.Event()
        self._queue: asyncio.Queue[mqtt.MQTTMessage] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: mqtt.Client | None = None

    # -- paho's thread ----------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT connection to %s:%d refused: %s", self.host, self.port, reason)
            return
        client.subscribe(self.topic, qos=1)
        log.info("MQTT listening on %s:%d to %s", self.host, self.port, self.topic)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        log.warning("MQTT connection lost (%s); paho reconnects", reason)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.connected.clear)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, message)

    # -- asyncio side -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # MQTT 5, so the listener can announce how many unacknowledged messages it takes (Receive Maximum):
        # under 3.1.1 the broker's own window (Mosquitto: 20) would cap ingestion at 20 per commit.
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 30)
        connect = Properties(PacketTypes.CONNECT)
        connect.ReceiveMaximum = RECEIVE_MAXIMUM
        # A persistent session keeps unacknowledged messages for a restarted listener.
        connect.SessionExpiryInterval = 0 if self.clean_session else SESSION_EXPIRY
        client.connect_async(self.host, self.port, keepalive=30, clean_start=self.clean_session, properties=connect)
        client.loop_start()
        self._client = client
        self._task = asyncio.create_task(self._run(), name="wecity-mqtt-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(self.batch_wait)  # let a burst gather: one commit for many messages
            while len(batch) < self.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._handle(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the listener must outlive any one bad batch
                log.exception("MQTT batch of %d messages failed", len(batch))

    async def _handle(self, batch: list[mqtt.MQTTMessage]) -> None:
        readings: list[Reading] = []
        for message in batch:
            reading = parse(message.topic, bytes(message.payload))
            if reading is None:
                self._count("ignored")
            elif reading.problem:
                self._count("malformed")
                log.warning("MQTT message on %s refused: %s", message.topic, reading.problem)
            else:
                readings.append(reading)
        if readings:
            result = await self._store(readings)
            self._count("stored", result.stored)
            for reading in result.unknown:
                self._count("unknown_device")
                log.warning("MQTT reading from unknown device %r (tenant %r) dropped", reading.device_id,
                            reading.tenant)
            for reading, why in result.malformed:
                self._count("malformed")
                log.warning("MQTT reading from device %r refused: %s", reading.device_id, why)
        client = self._client
        if client is not None:
            for message in batch:
                if message.qos > 0:
                    client.ack(message.mid, message.qos)

    async def _store(self, readings: list[Reading]) -> IngestResult:
        store = self.ctx.services.get("ngsild_contexts")
        if store is None:
            store = self.ctx.services.setdefault("ngsild_contexts", ContextStore())
        delay = 0.5
        while True:
            try:
                return await self.ctx.db.write(lambda conn: ingest(conn, readings, now=self.ctx.clock.now(),
                                                                   store=store))
            except (DependencyUnavailable, sa.exc.DBAPIError):  # database down: keep the batch, ack nothing, retry
                log.exception("storing %d MQTT readings failed; retrying in %.1f s", len(readings), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _count(self, outcome: str, n: int = 1) -> None:
        if n:
            self.counts[outcome] += n
            MESSAGES.labels(outcome=outcome).inc(n)
