"""NGSI-LD notifications to MQTT endpoints (ETSI GS CIM 009, clause 7 "API MQTT Notification Binding").

A subscription whose `notification.endpoint.uri` is `mqtt[s]://[user[:password]@]host[:port]/topic[/sub]*`
is notified by publishing on that topic of that broker (port 1883, or 8883 for mqtts, unless given). The
message is the JSON object of clause 7.2: `body` is the notification (5.3.1), `metadata` what HTTP would
carry in headers: `Content-Type`, `Link` (for `application/json`), `NGSILD-Tenant` and the `receiverInfo`
pairs. `notifierInfo` chooses the protocol, `MQTT-Version` `mqtt3.1.1` (the default) or `mqtt5.0`, and
the quality of service, `MQTT-QoS` `0` (the default), `1` or `2`; under MQTT 5 the metadata also goes as
the message's user properties and `application/json` as its content type.

Connections are kept per broker and credentials (`Publisher`), opened on the first notification and closed
after `idle_seconds` without one. The broker's address goes through the outbound policy like any
user-given URL (`wecity.core.outbound.allowed_address`): the name is resolved here, every address it has is
checked, and the connection goes to a checked address (TLS still verifies the name). The password never
leaves the subscription: what is shown, queued and logged is the URI with `***` in its place (`masked`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wecity.core import outbound
from wecity.core.outbound import OutboundPolicy

log = logging.getLogger(__name__)

SCHEMES = ("mqtt", "mqtts")
DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
VERSION_KEY, QOS_KEY = "MQTT-Version", "MQTT-QoS"
VERSIONS = ("mqtt3.1.1", "mqtt5.0")
QOS_VALUES = ("0", "1", "2")
MASK = "***"
IDLE_SECONDS = 300.0  # a broker connection unused this long is closed


def is_mqtt(uri: Any) -> bool:
    return isinstance(uri, str) and uri.split(":", 1)[0].lower() in SCHEMES


@dataclass(frozen=True, slots=True)
class Endpoint:
    tls: bool
    host: str
    port: int
    topic: str
    username: str | None
    password: str | None


def parse(uri: str) -> Endpoint:
    """An MQTT endpoint URI taken apart; ValueError, saying what is wrong, when it is not one."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("the scheme must be mqtt or mqtts")
    port = parts.port  # ValueError for a port that is not a number in range
    if not parts.hostname:
        raise ValueError("the URI names no host")
    topic = unquote(parts.path).lstrip("/")
    if not topic:
        raise ValueError("the URI names no topic (mqtt://host/topic)")
    if "#" in uri or any(c in topic for c in "+\0"):  # `#` would otherwise read as a fragment
        raise ValueError("a topic to publish on cannot hold the wildcards + or #")
    if parts.query:
        raise ValueError("an MQTT endpoint has no query")
    return Endpoint(tls=scheme == "mqtts", host=parts.hostname, port=port or DEFAULT_PORTS[scheme], topic=topic,
                    username=unquote(parts.username) if parts.username else None,
                    password=unquote(parts.password) if parts.password is not None else None)


def masked(uri: str) -> str:
    """`uri` with its password, if any, as `***`: what is shown and logged."""
    if not is_mqtt(uri):
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}").geturl()


def check_notifier_info(pairs: list[dict[str, str]]) -> str | None:
    """What is wrong with the MQTT settings among `notifierInfo` pairs, if anything."""
    for pair in pairs:
        if pair["key"] == VERSION_KEY and pair["value"] not in VERSIONS:
            return f"{VERSION_KEY} must be one of {', '.join(VERSIONS)}"
        if pair["key"] == QOS_KEY and pair["value"] not in QOS_VALUES:
            return f"{QOS_KEY} must be 0, 1 or 2"
    return None


def settings(pairs: Any) -> tuple[str, int]:
    """The MQTT version and QoS that `notifierInfo` pairs ask for (defaults mqtt3.1.1 and 0)."""
    found = {p.get("key"): p.get("value") for p in pairs or () if isinstance(p, dict)}
    version = found.get(VERSION_KEY) if found.get(VERSION_KEY) in VERSIONS else VERSIONS[0]
    qos = int(str(found[QOS_KEY])) if found.get(QOS_KEY) in QOS_VALUES else 0
    return str(version), qos


def message(metadata: dict[str, str], body: dict[str, Any]) -> bytes:
    """The MQTT notification message of clause 7.2."""
    return json.dumps({"metadata": metadata, "body": body}, ensure_ascii=False).encode()


class _NamedContext(ssl.SSLContext):
    """A TLS context that verifies the broker's name while the socket goes to the checked address."""

    server_name: str = ""

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def _tls_context(host: str) -> ssl.SSLContext:
    context = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_default_certs()
    context.server_name = host
    return context


@dataclass(slots=True)
class _Connection:
    client: aiomqtt.Client
    used: float

    def alive(self) -> bool:
        # aiomqtt resolves this future when the connection drops; there is no public flag for it.
        return not self.client._disconnected.done()


_Key = tuple[bool, str, int, str | None, str | None, str]


class Publisher:
    """MQTT connections reused across notifications, one per broker, credentials and protocol version."""

    def __init__(self, policy: OutboundPolicy, *, idle_seconds: float = IDLE_SECONDS) -> None:
        self.policy = policy
        self.idle_seconds = idle_seconds
        self._connections: dict[_Key, _Connection] = {}
        self._locks: dict[_Key, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.connects = 0  # connections opened, for the operator (and the tests)

    async def publish(self, endpoint: Endpoint, version: str, qos: int, metadata: dict[str, str],
                      body: dict[str, Any]) -> None:
        """Publish one notification; `outbound.OutboundRefused` for an address the policy refuses, any
        other failure `outbound.OutboundFailed` (its message the same whatever went wrong)."""
        key: _Key = (endpoint.tls, endpoint.host.lower(), endpoint.port, endpoint.username, endpoint.password, version)
        properties = None
        if version == "mqtt5.0":
            properties = Properties(PacketTypes.PUBLISH)
            properties.ContentType = "application/json"
            properties.UserProperty = list(metadata.items())
        try:
            connection = await self._connection(key, endpoint, version)
            connection.used = time.monotonic()  # in use: not idle while this publish waits
            await connection.client.publish(endpoint.topic, message(metadata, body), qos=qos, properties=properties,
                                            timeout=self.policy.timeout)
            connection.used = time.monotonic()
        except outbound.OutboundFailed:
            raise
        except (aiomqtt.MqttError, OSError, TimeoutError, ValueError) as exc:
            await self._drop(key)
            log.info("MQTT notification to %s:%d failed: %r", endpoint.host, endpoint.port, exc)
            raise outbound.OutboundFailed(f"{exc.__class__.__name__}: {exc}") from None

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections belong to the event loop that made them; on another one they are given up."""
        if self._loop is loop:
            return
        for connection in self._connections.values():
            _abandon(connection)
        self._connections.clear()
        self._locks.clear()
        self._reaper = None
        self._loop = loop

    async def _connection(self, key: _Key, endpoint: Endpoint, version: str) -> _Connection:
        loop = asyncio.get_running_loop()
        self._on_loop(loop)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self._connections.get(key)
            if found is not None and found.alive():
                return found
            if found is not None:
                await self._drop(key)
            address = await outbound.allowed_address(self.policy, endpoint.host, endpoint.port)
            client = aiomqtt.Client(
                address, endpoint.port, username=endpoint.username, password=endpoint.password,
                identifier=f"wecity-ngsild-{uuid.uuid4().hex[:16]}",
                protocol=aiomqtt.ProtocolVersion.V5 if version == "mqtt5.0" else aiomqtt.ProtocolVersion.V311,
                clean_session=None if version == "mqtt5.0" else True,
                tls_context=_tls_context(endpoint.host) if endpoint.tls else None,
                timeout=self.policy.connect_timeout, keepalive=60, logger=log)
            await asyncio.wait_for(client.__aenter__(), self.policy.connect_timeout)
            self.connects += 1
            connection = self._connections[key] = _Connection(client, time.monotonic())
            if self._reaper is None or self._reaper.done():
                self._reaper = loop.create_task(self._reap())
            return connection

    async def _drop(self, key: _Key) -> None:
        connection = self._connections.pop(key, None)
        if connection is not None:
            await _close(connection)

    async def _reap(self) -> None:
        """Close connections idle for `idle_seconds`; ends when none is left."""
        while self._connections:
            await asyncio.sleep(max(1.0, self.idle_seconds / 4))
            cutoff = time.monotonic() - self.idle_seconds
            for key, connection in list(self._connections.items()):
                if connection.used < cutoff:
                    await self._drop(key)

    async def close(self) -> None:
        self._on_loop(asyncio.get_running_loop())
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for key in list(self._connections):
            await self._drop(key)


def _abandon(connection: _Connection) -> None:
    """A connection of an event loop that has ended: nothing can be awaited there; its socket is closed."""
    sock = connection.client._client.socket()
    if sock is not None:
        sock.close()


async def _close(connection: _Connection) -> None:
    try:
        await asyncio.wait_for(connection.client.__aexit__(None, None, None), 5.0)
    except (aiomqtt.MqttError, OSError, TimeoutError):
        pass  # the connection is gone either way
