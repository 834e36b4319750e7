"""The listener's MQTT connection: paho-mqtt (MQTT 5) in its own network thread, handing messages to the
event loop in batches and acknowledging them only when told.

paho calls `on_message` once per message in its thread; waking the event loop for each one cost more
than storing the reading. Here messages gather in a list and the loop is woken once per burst
(`call_soon_threadsafe` only when no wake-up is pending), so the listener takes hundreds per turn. QoS 1
messages are acknowledged (`manual_ack`) after the batch holding them has committed, and only on the
connection that delivered them: after a reconnect the broker sends the unacknowledged ones again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int  # packet identifier (0 at QoS 0)
    session: int  # the connection that delivered it: an acknowledgement goes back on that one only


class Subscriber:
    """One subscription kept alive by paho (it reconnects with backoff); each burst of messages reaches
    `on_messages` on the event loop, and `ack` acknowledges them."""

    def __init__(self, host: str, port: int, *, client_id: str, topic: str, on_messages: Callable[[list[Message]], None],
                 tls: bool = False, username: str | None = None, password: str | None = None,
                 clean_start: bool = False, session_expiry: int = 0, receive_maximum: int = 65535,
                 keepalive: int = 30) -> None:
        self.host, self.port, self.topic = host, port, topic
        self.on_messages = on_messages
        self.clean_start, self.session_expiry = clean_start, session_expiry
        self.connected = asyncio.Event()
        self.session = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[Message] = []
        self._lock = threading.Lock()
        self._wake_pending = False
        self._keepalive = keepalive
        self._receive_maximum = receive_maximum
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                             manual_ack=True)
        if username:
            client.username_pw_set(username, password)
        if tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(1, 30)
        self._client: mqtt.Client | None = client

    # -- paho's thread ------------------------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT connection to %s:%d refused: %s", self.host, self.port, reason)
            return
        with self._lock:
            self.session += 1
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, properties: Any) -> None:
        # `connected` means "receiving": it is set on the broker's SUBACK, not on CONNACK. Set any earlier,
        # a reading published by another client in between finds no subscription and is dropped.
        if any(getattr(reason, "is_failure", False) for reason in reasons):
            log.error("MQTT subscription to %s on %s:%d refused: %s", self.topic, self.host, self.port, reasons)
            return
        log.info("MQTT listening on %s:%d to %s", self.host, self.port, self.topic)
        self._call(self.connected.set)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        log.warning("MQTT connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason)
        self._call(self.connected.clear)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = Message(message.topic, bytes(message.payload), message.qos, message.mid, self.session)
        with self._lock:
            self._pending.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        self._call(self._hand_over)

    def _call(self, fn: Callable[[], Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn)

    # -- the event loop -----------------------------------------------------------------------------

    def _hand_over(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._wake_pending = False
        if batch:
            self.on_messages(batch)

    async def run(self) -> None:
        """Connect and stay connected until cancelled."""
        self._loop = asyncio.get_running_loop()
        client = self._client
        assert client is not None, "a Subscriber runs once"
        connect = Properties(PacketTypes.CONNECT)
        # MQTT 5 lets the listener say how many unacknowledged messages it takes: under 3.1.1 the broker's
        # own window (Mosquitto: 20) would cap ingestion at 20 per commit.
        connect.ReceiveMaximum = self._receive_maximum
        # A persistent session keeps unacknowledged messages for a restarted listener.
        connect.SessionExpiryInterval = self.session_expiry
        client.connect_async(self.host, self.port, keepalive=self._keepalive, clean_start=self.clean_start,
                             properties=connect)
        client.loop_start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    def ack(self, messages: list[Message]) -> None:
        """Acknowledge the QoS 1 messages among `messages` that the current connection delivered (the broker
        sends the others again on the next one)."""
        client = self._client
        if client is None:
            return
        session = self.session
        for m in messages:
            if m.qos == 1 and m.session == session:
                client.ack(m.mid, m.qos)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        self.connected.clear()
