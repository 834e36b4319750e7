"""The one way the platform makes an HTTP request to a URL someone gave it.

NGSI-LD notifications, @context fetches and webhooks all go to addresses that callers choose, so each is
a way to make the platform reach into the network it runs in (server-side request forgery). Every such
request goes through a client made here, which:

- refuses loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade NAT,
  multicast, reserved and unspecified addresses, and IPv6 forms that carry one of them (NAT64, 6to4,
  IPv4-mapped, -compatible and -translated; site-local fec0::/10), unless the operator allows them
  (`WECITY_OUTBOUND_ALLOW`: networks such as ``10.20.0.0/16`` or host names, for closed networks whose
  receivers are internal);
- checks the address it actually connects to, after resolving the name itself, on every connection, so
  a name that resolves to loopback (DNS rebinding) and a redirect to an internal host are refused too;
- speaks only http and https, has connect and total timeouts, and reads at most `max_bytes` of a body;
- never lets a caller set `Host` or the hop-by-hop headers;
- reports every failure the same way (`OutboundFailed`), whatever the target did, so the error a caller
  sees does not tell an open port from a closed one; the reason is logged for the operator.

Brokers of MQTT notification endpoints (`wecity.context.mqttnotify`) are reached the same way: their
address comes from `allowed_address`, resolved and checked here, and `refuses_outright` takes their schemes.

Tests and embedders inject their own transports (`httpx.MockTransport`) where no network is wanted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# RFC 9110 7.6.1 hop-by-hop headers, and those that describe the message itself: the client sets them.
FORBIDDEN_HEADERS = frozenset({
    "host", "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length",
})
DEFAULT_MAX_BYTES = 1024 * 1024  # a @context document; notification and webhook answers are not read
MAX_REDIRECTS = 3
# IPv6 prefixes whose last 32 bits are an IPv4 address that the packet reaches (RFC 6052 NAT64, RFC 4291
# IPv4-compatible, RFC 2765 IPv4-translated): judged by that address. 6to4 (2002::/16) carries it in bits
# 16-47 (`sixtofour`), IPv4-mapped (::ffff:0:0/96) in `ipv4_mapped`.
_CARRY_IPV4 = tuple(ipaddress.IPv6Network(n) for n in ("64:ff9b::/96", "::/96", "::ffff:0:0:0/96"))
# Never the open internet, though Python's `is_global` says so: site-local (deprecated, RFC 3879, still
# routed inside some networks) and NAT64 for local use (RFC 8215, which translates to internal addresses).
_INTERNAL_V6 = tuple(ipaddress.IPv6Network(n) for n in ("fec0::/10", "64:ff9b:1::/48"))


class OutboundFailed(Exception):
    """The request to a user-given URL did not succeed. Its message is the same whatever the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__("the target could not be reached, or did not answer as expected")
        self.reason = reason  # for the operator's log only


class OutboundTooLarge(OutboundFailed):
    """The target answered with a body longer than the caller takes."""


class OutboundRefused(OutboundFailed):
    """The URL names an address the policy does not allow (or a scheme other than http/https)."""


class NotJson(OutboundFailed):
    """The target answered, successfully, with a body that is not JSON: what it serves is wrong,
    not the way to it."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    allow_networks: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = field(default_factory=frozenset)
    connect_timeout: float = 5.0
    timeout: float = 10.0
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: Any, *, max_bytes: int | None = None) -> OutboundPolicy:
        return cls.parse(settings.outbound_allow, timeout=settings.outbound_timeout,
                         connect_timeout=min(5.0, settings.outbound_timeout),
                         max_bytes=max_bytes or settings.context_max_bytes)

    @classmethod
    def parse(cls, allow: Iterable[str], **limits: Any) -> OutboundPolicy:
        """`allow` holds networks (``10.0.0.0/8``, ``127.0.0.1``) and host names (``receiver.internal``)."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in (a.strip() for a in allow):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(allow_networks=tuple(networks), allow_hosts=frozenset(hosts), **limits)

    def allows(self, host: str, address: IPAddress) -> bool:
        if host.lower().rstrip(".") in self.allow_hosts or any(address in n for n in self.allow_networks):
            return True
        if isinstance(address, ipaddress.IPv6Address) and any(address in n for n in _INTERNAL_V6):
            return False
        reached = carried_ipv4(address) or address  # 64:ff9b::7f00:1 and 2002:7f00:1:: are 127.0.0.1
        return reached.is_global and not reached.is_multicast

    def refuses_outright(self, url: str, schemes: tuple[str, ...] = ("http", "https")) -> bool:
        """Whether `url` is refused without resolving any name: not one of `schemes` (http(s) unless told),
        or a loopback name or an address literal the policy does not allow. (Names are checked when a
        request connects.)"""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        if parts.scheme not in schemes or not host:
            return True
        if host in self.allow_hosts:
            return False
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return not self.allows(host, address)

    def checked_url(self, url: str) -> str:
        """`url` if it may be requested at all (scheme and host), before any name is resolved."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OutboundRefused(f"not an http(s) URL: {url[:200]!r}")
        return url


def carried_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries, which is what a connection to it reaches; None for others."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None or address.sixtofour is not None:
        return address.ipv4_mapped or address.sixtofour
    if any(address in n for n in _CARRY_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFF_FFFF)
    return None


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's headers without `Host` and the hop-by-hop ones."""
    return {k: v for k, v in headers.items() if k.lower() not in FORBIDDEN_HEADERS}


def _vetted(policy: OutboundPolicy, host: str, infos: Iterable[Any]) -> str:
    """The address to connect to: every address the name resolves to must be allowed."""
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise OutboundRefused(f"{host} does not resolve")
    for address in addresses:
        if not policy.allows(host, ipaddress.ip_address(address.split("%", 1)[0])):
            raise OutboundRefused(f"{host} resolves to {address}, which is not allowed")
    return str(addresses[0])


async def allowed_address(policy: OutboundPolicy, host: str, port: int) -> str:
    """The address to connect to for a user-given host that is not spoken to over HTTP (an MQTT
    broker): the name resolved here, every address it has checked; `OutboundRefused` otherwise."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise OutboundFailed(f"{host} does not resolve: {exc}") from None
    return _vetted(policy, host, infos)


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host itself and connects only to an allowed address (TLS still checks the name)."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        address = _vetted(self.policy, host, infos)
        return await self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _GuardedSyncBackend(httpcore.NetworkBackend):
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        address = _vetted(self.policy, host, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        return self.inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                      socket_options=socket_options)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        raise OutboundRefused("unix sockets are not reachable from outbound requests")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _timeout(policy: OutboundPolicy) -> httpx.Timeout:
    return httpx.Timeout(policy.timeout, connect=policy.connect_timeout)


def async_client(policy: OutboundPolicy) -> httpx.AsyncClient:
    """A client for user-given URLs: every connection vetted, no proxy from the environment, no redirects."""
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx has no parameter for httpcore's network backend; the pool takes it as its attribute.
    transport._pool._network_backend = _GuardedBackend(policy)  # type: ignore[attr-defined]
    return httpx.AsyncClient(transport=transport, timeout=_timeout(policy), follow_redirects=False,
                             trust_env=False)


def sync_client(policy: OutboundPolicy) -> httpx.Client:
    transport = httpx.HTTPTransport(trust_env=False)
    transport._pool._network_backend = _GuardedSyncBackend(policy)  # type: ignore[attr-defined]
    return httpx.Client(transport=transport, timeout=_timeout(policy), follow_redirects=False, trust_env=False)


ANSWER_BYTES = 64 * 1024  # the most of the answer to a POST read: receivers answer a status and a few bytes


def shown_url(url: str) -> str:
    """A user-given URL as logs and errors show it: scheme, host and path, without the query, the fragment
    or a user and password, which carry the keys of robots and webhooks (WeCom's `key=`, DingTalk's
    `access_token=` and signature)."""
    try:
        parts = httpx.URL(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.host}{port}{parts.path}"[:200]
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(not a URL)"


async def post(client: httpx.AsyncClient, policy: OutboundPolicy, url: str, *, content: bytes,
               headers: Mapping[str, str], max_bytes: int = ANSWER_BYTES) -> httpx.Response:
    """POST to a user-given URL within the total timeout; any failure is `OutboundFailed`. Of the answer at
    most `max_bytes` and one more are read (a receiver streaming a big body is not held in memory): a
    longer one comes back cut, which its reader can tell by its length."""

    async def send() -> httpx.Response:
        async with client.stream("POST", policy.checked_url(url), content=content,
                                 headers=safe_headers(headers)) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    break
            # The body is decoded already (gzip and the like): the new answer must not say it is encoded.
            kept = [(k, v) for k, v in response.headers.multi_items()
                    if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
            return httpx.Response(response.status_code, headers=kept, content=bytes(body[:max_bytes + 1]),
                                  request=response.request)

    try:
        return await asyncio.wait_for(send(), policy.timeout)
    except OutboundFailed:
        raise
    except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
        log.info("outbound POST to %s failed: %r", shown_url(url), exc)
        raise OutboundFailed(f"{exc.__class__.__name__}: {exc}") from None


async def request(client: httpx.AsyncClient, policy: OutboundPolicy, method: str, url: str, *,
                  params: list[tuple[str, str | int | float | bool | None]] | None = None,
                  content: bytes | None = None, headers: Mapping[str, str], max_bytes: int, timeout: float | None = None) -> tuple[int, httpx.Headers, bytes]:
    """Any method to a user-given URL within the total timeout (the policy's, or a shorter one), reading
    at most `max_bytes` of the answer: its status, headers and body. Any failure, and a longer body, is
    `OutboundFailed`."""

    async def send() -> tuple[int, httpx.Headers, bytes]:
        async with client.stream(method, policy.checked_url(url), params=params, content=content,
                                 headers=safe_headers(headers)) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise OutboundTooLarge(f"answer longer than {max_bytes} bytes")
            return response.status_code, response.headers, bytes(body)

    try:
        return await asyncio.wait_for(send(), min(timeout or policy.timeout, policy.timeout))
    except OutboundFailed as exc:
        log.info("outbound %s to %s failed: %s", method, shown_url(url), exc.reason)
        raise
    except (httpx.HTTPError, httpx.InvalidURL, OSError, TimeoutError) as exc:
        log.info("outbound %s to %s failed: %r", method, shown_url(url), exc)
        raise OutboundFailed(f"{exc.__class__.__name__}: {exc}") from None


def fetch_json(policy: OutboundPolicy, url: str, *, accept: str, client: httpx.Client | None = None) -> Any:
    """GET a JSON document from a user-given URL (blocking: call it off the event loop), following at most
    MAX_REDIRECTS redirects, each to an allowed address, and reading at most `policy.max_bytes`."""
    own = client is None
    client = client or sync_client(policy)
    deadline = time.monotonic() + policy.timeout
    try:
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", policy.checked_url(url), headers={"Accept": accept}) as response:
                if response.is_redirect and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                if not response.is_success:
                    raise OutboundFailed(f"answered {response.status_code}")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > policy.max_bytes:
                        raise OutboundFailed(f"longer than {policy.max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise OutboundFailed("took longer than the total timeout")
                try:
                    return httpx.Response(200, content=bytes(body)).json()
                except ValueError:
                    raise NotJson("the answer is not JSON") from None
        raise OutboundFailed(f"more than {MAX_REDIRECTS} redirects")
    except OutboundFailed as exc:
        log.info("outbound GET %s refused or failed: %s", shown_url(url), exc.reason)
        raise
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        log.info("outbound GET %s failed: %r", shown_url(url), exc)
        raise OutboundFailed(f"{exc.__class__.__name__}: {exc}") from None
    finally:
        if own:
            client.close()
