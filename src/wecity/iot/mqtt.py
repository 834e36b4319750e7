"""A small MQTT 5 subscriber on asyncio: connect, subscribe, receive, acknowledge in batches.

Only what the listener needs (OASIS MQTT 5.0: CONNECT with Session Expiry and Receive Maximum, one
SUBSCRIBE at QoS 1, PUBLISH at QoS 0/1, PUBACK, PINGREQ, DISCONNECT; TLS, user name and password). A
general-purpose client in its own thread built several objects, a lock and a socket write per message; here
a read of many packets is parsed in one pass on the event loop, and the acknowledgements of a stored batch
leave in one write.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT = 1, 2, 3, 4, 8, 9, 12, 13, 14
_PING = bytes([PINGREQ << 4, 0])
_DISCONNECT = bytes([DISCONNECT << 4, 0])
_SUBSCRIPTION_ID = 1


class MqttError(Exception):
    """The broker refused us or broke the protocol; the subscriber reconnects."""


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    mid: int  # packet identifier (0 at QoS 0)
    session: int  # the connection that delivered it: an acknowledgement goes back on that one only


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 21:
            raise MqttError("malformed variable byte integer")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _string(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect_packet(client_id: str, *, clean_start: bool, keepalive: int, session_expiry: int, receive_maximum: int,
                   username: str | None = None, password: str | None = None) -> bytes:
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    props = b"\x11" + session_expiry.to_bytes(4, "big") + b"\x21" + receive_maximum.to_bytes(2, "big")
    body = _string("MQTT") + bytes([5, flags]) + keepalive.to_bytes(2, "big") + _varint(len(props)) + props
    body += _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        raw = password.encode()
        body += len(raw).to_bytes(2, "big") + raw
    return _packet(CONNECT << 4, body)


def subscribe_packet(packet_id: int, topic: str, qos: int = 1) -> bytes:
    return _packet(SUBSCRIBE << 4 | 0x02, packet_id.to_bytes(2, "big") + b"\x00" + _string(topic) + bytes([qos]))


def puback_packets(mids: list[int]) -> bytes:
    """PUBACKs (success, so no reason code: remaining length 2) for the packet identifiers, in one buffer."""
    return b"".join(b"\x40\x02" + mid.to_bytes(2, "big") for mid in mids)


def split_packets(buffer: bytearray) -> tuple[list[tuple[int, bytes]], int]:
    """The complete packets at the start of `buffer` as (first byte, body), and how many bytes they took."""
    packets: list[tuple[int, bytes]] = []
    pos, end = 0, len(buffer)
    while pos + 1 < end:
        length, shift, i = 0, 0, pos + 1
        while True:
            if i >= end:
                return packets, pos
            byte = buffer[i]
            i += 1
            length |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
            if shift > 21:
                raise MqttError("malformed remaining length")
        if i + length > end:
            break
        packets.append((buffer[pos], bytes(buffer[i:i + length])))
        pos = i + length
    return packets, pos


def decode_publish(first: int, body: bytes, session: int) -> Message:
    qos = (first >> 1) & 0x03
    size = int.from_bytes(body[0:2], "big")
    topic = body[2:2 + size].decode("utf-8", "replace")
    pos = 2 + size
    mid = 0
    if qos:
        mid = int.from_bytes(body[pos:pos + 2], "big")
        pos += 2
    skip, pos = _read_varint(body, pos)  # properties: none the listener needs (no topic aliases are allowed)
    return Message(topic, body[pos + skip:], qos, mid, session)


class Subscriber:
    """One subscription kept alive: reconnects with backoff; hands each read's messages to `on_messages`
    (on the event loop) and acknowledges them when told (`ack`)."""

    def __init__(self, host: str, port: int, *, client_id: str, topic: str, on_messages: Callable[[list[Message]], None],
                 tls: bool = False, username: str | None = None, password: str | None = None,
                 clean_start: bool = False, session_expiry: int = 0, receive_maximum: int = 65535,
                 keepalive: int = 30) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.client_id, self.topic = client_id, topic
        self.on_messages = on_messages
        self.username, self.password = username, password
        self.clean_start, self.session_expiry = clean_start, session_expiry
        self.receive_maximum, self.keepalive = receive_maximum, keepalive
        self.connected = asyncio.Event()
        self.session = 0
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._connection()
            except asyncio.CancelledError:
                raise
            except (OSError, MqttError, ConnectionError, ssl.SSLError) as exc:
                if self.connected.is_set():
                    delay = 1.0
                log.warning("MQTT connection to %s:%d lost or refused (%s); retrying in %.0f s", self.host, self.port,
                            exc, delay)
            finally:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def ack(self, messages: list[Message]) -> None:
        """Acknowledge the QoS 1 messages among `messages` that this connection delivered (the broker sends
        the others again on the next one)."""
        writer = self._writer
        if writer is None:
            return
        mids = [m.mid for m in messages if m.qos == 1 and m.session == self.session]
        if mids:
            writer.write(puback_packets(mids))

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.write(_DISCONNECT)
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), 2)
            except (TimeoutError, OSError):
                pass

    async def _connection(self) -> None:
        context = ssl.create_default_context() if self.tls else None
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=context, limit=1 << 20)
        self.session += 1
        session = self.session
        ping: asyncio.Task[None] | None = None
        try:
            writer.write(connect_packet(self.client_id, clean_start=self.clean_start, keepalive=self.keepalive,
                                        session_expiry=self.session_expiry, receive_maximum=self.receive_maximum,
                                        username=self.username, password=self.password))
            writer.write(subscribe_packet(_SUBSCRIPTION_ID, self.topic))
            self._writer = writer
            ping = asyncio.create_task(self._ping(writer))
            buffer = bytearray()
            while True:
                data = await reader.read(1 << 18)
                if not data:
                    raise ConnectionError("closed by the broker")
                buffer += data
                packets, used = split_packets(buffer)
                del buffer[:used]
                messages: list[Message] = []
                for first, body in packets:
                    kind = first >> 4
                    if kind == PUBLISH:
                        messages.append(decode_publish(first, body, session))
                    elif kind == CONNACK:
                        if len(body) < 2 or body[1] != 0:
                            raise MqttError(f"connection refused, reason code {body[1] if len(body) > 1 else '?'}")
                    elif kind == SUBACK:
                        code = body[-1] if body else 0x80
                        if code >= 0x80:
                            raise MqttError(f"subscription to {self.topic} refused, reason code {code:#x}")
                        log.info("MQTT listening on %s:%d to %s", self.host, self.port, self.topic)
                        self.connected.set()
                    elif kind == DISCONNECT:
                        raise MqttError(f"disconnected by the broker, reason code {body[0] if body else 0:#x}")
                if messages:
                    self.on_messages(messages)
        finally:
            if ping is not None:
                ping.cancel()
            if self._writer is writer:
                self._writer = None
            writer.close()

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(self.keepalive / 2)
            writer.write(_PING)
