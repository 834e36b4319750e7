"""The MQTT listener: readings from `wecity/{tenant}/devices/{device_id}/attrs`, stored in batches, and
acknowledged (QoS 1) only after the batch holding them has committed.

The subscriber (wecity.iot.mqtt, on paho-mqtt) hands messages to the event loop in bursts; one task takes
what has arrived (up to `batch_max`), stores it in one transaction and then acknowledges it. A commit that
fails because the database is unreachable is retried with backoff and nothing is acknowledged meanwhile, so
the broker keeps the messages (a persistent session redelivers them after a crash). A batch that fails for
any other reason is split in halves and each half tried again, down to the one message that fails; that
message is kept in `iot_rejected_messages` with its error and acknowledged, so it cannot hold up the rest.
Unknown devices and malformed payloads are counted, logged and acknowledged: sending them again would not
help.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter, deque
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qs, urlparse

import sqlalchemy as sa
from prometheus_client import Counter as PromCounter

from wecity.context.ldcontext import ContextStore
from wecity.core.context import AppContext
from wecity.core.errors import DependencyUnavailable
from wecity.iot.models import rejected_messages
from wecity.iot.mqtt import Message, Subscriber
from wecity.iot.service import IngestResult, Reading, ingest, parse

log = logging.getLogger(__name__)
TOPIC = "wecity/+/devices/+/attrs"
# How many unacknowledged messages the broker may send us (MQTT 5 Receive Maximum): under MQTT 3.1.1 the
# broker's own window (Mosquitto: 20) would cap ingestion at 20 per commit.
RECEIVE_MAXIMUM = 20_000
SESSION_EXPIRY = 24 * 3600
# Errors that say the database cannot be reached now (down, restarting, locked), not that the data is bad.
UNREACHABLE = (DependencyUnavailable, sa.exc.OperationalError, sa.exc.InterfaceError, TimeoutError)
T = TypeVar("T")
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
        self._inbox: deque[Message] = deque()
        self._arrived = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriber: Subscriber | None = None

    def _on_messages(self, messages: list[Message]) -> None:
        self._inbox.extend(messages)
        self._arrived.set()

    async def start(self) -> None:
        subscriber = Subscriber(self.host, self.port, client_id=self.client_id, topic=self.topic,
                                on_messages=self._on_messages, tls=self.tls, username=self.username,
                                password=self.password, clean_start=self.clean_session,
                                # A persistent session keeps unacknowledged messages for a restarted listener.
                                session_expiry=0 if self.clean_session else SESSION_EXPIRY,
                                receive_maximum=RECEIVE_MAXIMUM)
        self._subscriber = subscriber
        self.connected = subscriber.connected
        self._tasks = [asyncio.create_task(subscriber.run(), name="wecity-mqtt-connection"),
                       asyncio.create_task(self._run(), name="wecity-mqtt-listener")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        if self._subscriber is not None:
            await self._subscriber.close()
            self._subscriber = None

    async def _run(self) -> None:
        while True:
            if not self._inbox:
                self._arrived.clear()
                await self._arrived.wait()
                await asyncio.sleep(self.batch_wait)  # let a burst gather: one commit for many messages
            inbox = self._inbox
            batch = [inbox.popleft() for _ in range(min(len(inbox), self.batch_max))]
            await self._handle_or_split(batch)

    async def _handle_or_split(self, batch: list[Message]) -> None:
        """Store the batch; if it fails (and not for want of a database), store its halves, down to the one
        message that fails, which is set aside. Nothing is lost and one bad message stops nothing."""
        try:
            await self._handle(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the listener must outlive any one bad message
            if len(batch) > 1:
                log.warning("MQTT batch of %d messages failed (%r); storing it in halves", len(batch), exc)
                middle = len(batch) // 2
                await self._handle_or_split(batch[:middle])
                await self._handle_or_split(batch[middle:])
                return
            log.exception("MQTT message on %s cannot be stored; kept in iot_rejected_messages", batch[0].topic)
            await self._set_aside(batch[0], exc)

    async def _set_aside(self, message: Message, exc: Exception) -> None:
        error = f"{exc.__class__.__name__}: {exc}"[:2000]
        row = dict(topic=message.topic[:512], payload=bytes(message.payload), error=error,
                   received_at=self.ctx.clock.now())
        await self._retrying(lambda conn: conn.execute(rejected_messages.insert().values(**row)))
        self._count("rejected")
        if self._subscriber is not None:
            self._subscriber.ack([message])

    async def _handle(self, batch: list[Message]) -> None:
        readings: list[Reading] = []
        for message in batch:
            reading = parse(message.topic, message.payload)
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
        if self._subscriber is not None:
            self._subscriber.ack(batch)

    async def _store(self, readings: list[Reading]) -> IngestResult:
        store = self.ctx.services.get("ngsild_contexts")
        if store is None:
            store = self.ctx.services.setdefault("ngsild_contexts", ContextStore())
        return await self._retrying(lambda conn: ingest(conn, readings, now=self.ctx.clock.now(), store=store,
                                                        events=self.ctx.registry.events))

    async def _retrying(self, write: Callable[[sa.Connection], T]) -> T:
        """`write` in a transaction, tried again with backoff for as long as the database cannot be reached
        (nothing is acknowledged meanwhile); any other error is the caller's."""
        delay = 0.5
        while True:
            try:
                result: T = await self.ctx.db.write(write)
                return result
            except UNREACHABLE:
                log.exception("storing MQTT messages failed; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _count(self, outcome: str, n: int = 1) -> None:
        if n:
            self.counts[outcome] += n
            MESSAGES.labels(outcome=outcome).inc(n)
