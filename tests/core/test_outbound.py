"""Requests to user-given URLs (wecity.core.outbound): the SSRF matrix, for subscriptions, @context fetches
and webhooks, refused by default and allowed for a host on the allow-list."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.api.app import create_app
from wecity.core import outbound, outbox
from wecity.core.context import AppContext
from wecity.core.outbound import OutboundFailed, OutboundPolicy, OutboundRefused
from wecity.core.runner import Runner
from wecity.notify.channels import install

from ..conftest import City

INTERNAL = ["127.0.0.1", "[::1]", "169.254.169.254", "10.0.0.1", "192.168.1.10", "100.64.0.1", "[fd00::1]",
            "[::ffff:127.0.0.1]", "0.0.0.0", "localhost"]
SECRET = b'{"@context": {"secret": "https://internal.example/only-inside"}}'


class _Site:
    """A small HTTP server on 127.0.0.1: path -> (status, headers, body); it remembers what it was asked."""

    def __init__(self, routes: dict[str, tuple[int, dict[str, str], bytes]]) -> None:
        self.asked: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                site.asked.append(self.path)
                status, headers, body = routes.get(self.path, (404, {}, b""))
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 (http.server's names)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site() -> Iterator[_Site]:
    s = _Site({"/ok": (200, {"Content-Type": "application/json"}, b'{"@context": {"a": "https://a.example/a"}}'),
               "/secret": (200, {"Content-Type": "application/json"}, SECRET),
               "/big": (200, {"Content-Type": "application/json"}, b'{"@context": "' + b"x" * 2_000_000 + b'"}'),
               "/hook": (204, {}, b"")})
    yield s
    s.close()


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Host names this test resolves itself (as a hostile DNS server would answer)."""
    table: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in table:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def test_the_policy_refuses_internal_addresses_and_allows_the_listed_ones() -> None:
    closed = OutboundPolicy()
    for host in INTERNAL:
        assert closed.refuses_outright(f"http://{host}:8080/x"), host
    assert not closed.refuses_outright("https://receiver.example.org/notify")
    assert closed.refuses_outright("file:///etc/passwd") and closed.refuses_outright("gopher://example.org/")
    opened = OutboundPolicy.parse(["10.20.0.0/16", "gateway.internal"])
    assert not opened.refuses_outright("http://10.20.3.4/x") and opened.refuses_outright("http://10.21.0.1/x")
    assert not opened.refuses_outright("http://gateway.internal/sms")
    assert outbound.safe_headers({"Host": "internal", "Connection": "close", "Authorization": "Bearer t"}) == {
        "Authorization": "Bearer t"}


@pytest.mark.parametrize("address", [
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 (RFC 6052) to loopback, to cloud metadata
    "64:ff9b:1::a00:1",  # NAT64 for local use (RFC 8215)
    "2002:7f00:1::1", "2002:c0a8:10a::",  # 6to4 carrying 127.0.0.1, 192.168.1.10
    "::127.0.0.1", "::a00:1",  # IPv4-compatible
    "::ffff:0:7f00:1", "::ffff:0:a9fe:a9fe",  # IPv4-translated (RFC 2765)
    "fec0::1", "fec0:1234::5",  # site-local
])
def test_ipv6_forms_of_internal_addresses_are_refused(address: str) -> None:
    """A transition address reaches the IPv4 address inside it: judged by that address, not as the
    public IPv6 address Python's `is_global` takes it for."""
    assert OutboundPolicy().refuses_outright(f"http://[{address}]:8080/x")
    assert not OutboundPolicy.parse([address]).refuses_outright(f"http://[{address}]/x")  # unless allowed


def test_ipv6_forms_of_public_addresses_stay_allowed() -> None:
    for address in ("64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8", "2606:4700:4700::1111"):
        assert not OutboundPolicy().refuses_outright(f"http://[{address}]/x"), address


def test_a_connection_is_checked_on_the_address_the_name_resolves_to(site: _Site, names: dict[str, str]) -> None:
    names["rebind.example"] = "127.0.0.1"  # a public-looking name that answers with loopback
    refused = OutboundPolicy()
    for url in (site.url("/secret"), site.url("/secret", "localhost"), site.url("/secret", "rebind.example")):
        with pytest.raises(OutboundRefused):
            outbound.fetch_json(refused, url, accept="application/json")
    assert site.asked == []
    allowed = OutboundPolicy.parse(["rebind.example"])
    assert outbound.fetch_json(allowed, site.url("/ok", "rebind.example"), accept="application/json")["@context"]


def test_a_redirect_to_an_internal_address_is_refused(site: _Site, names: dict[str, str]) -> None:
    names["public.example"] = "127.0.0.1"
    redirecting = _Site({"/ctx": (302, {"Location": site.url("/secret")}, b"")})
    try:
        policy = OutboundPolicy.parse(["public.example"])
        with pytest.raises(OutboundRefused):
            outbound.fetch_json(policy, redirecting.url("/ctx", "public.example"), accept="application/json")
    finally:
        redirecting.close()
    assert site.asked == []


def test_every_failure_reads_the_same_and_bodies_are_capped(site: _Site) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    allowed = OutboundPolicy.parse(["127.0.0.1"], max_bytes=1024 * 1024)
    messages = set()
    for policy, url in ((OutboundPolicy(), site.url("/ok")), (allowed, f"http://127.0.0.1:{closed_port}/x"),
                        (allowed, site.url("/missing")), (allowed, site.url("/big"))):
        with pytest.raises(OutboundFailed) as caught:
            outbound.fetch_json(policy, url, accept="application/json")
        messages.add(str(caught.value))
    assert len(messages) == 1


def _ngsi(city: City, **settings: Any) -> TestClient:
    app = create_app(replace(city.settings, **settings), clock=city.clock, db=city.db)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {city.api_key}"
    return client


def _subscription(uri: str, **endpoint: Any) -> dict[str, Any]:
    return {"type": "Subscription", "entities": [{"type": "Manhole"}],
            "notification": {"endpoint": {"uri": uri, **endpoint}}}


def test_subscriptions_to_internal_addresses_are_refused_unless_allowed(city: City) -> None:
    with _ngsi(city) as ngsi:
        for host in INTERNAL:
            answer = ngsi.post("/ngsi-ld/v1/subscriptions", json=_subscription(f"http://{host}:9/notify"))
            assert answer.status_code == 400, (host, answer.text)
            assert answer.json()["type"].endswith("BadRequestData")
        for header in ("Host", "Connection", "transfer-encoding"):
            answer = ngsi.post("/ngsi-ld/v1/subscriptions", json=_subscription(
                "https://receiver.example.org/n", receiverInfo=[{"key": header, "value": "x"}]))
            assert answer.status_code == 400, header
    with _ngsi(city, outbound_allow=("127.0.0.1",)) as ngsi:
        assert ngsi.post("/ngsi-ld/v1/subscriptions",
                         json=_subscription("http://127.0.0.1:9/notify")).status_code == 201


def test_a_context_link_redirecting_inside_is_not_fetched_or_served(city: City, site: _Site,
                                                                     names: dict[str, str]) -> None:
    names["contexts.example"] = "127.0.0.1"
    redirecting = _Site({"/ctx.jsonld": (302, {"Location": site.url("/secret")}, b"")})
    link = f'<{redirecting.url("/ctx.jsonld", "contexts.example")}>; rel="http://www.w3.org/ns/json-ld#context"; ' \
           'type="application/ld+json"'
    try:
        with _ngsi(city, outbound_allow=("contexts.example",)) as ngsi:
            answer = ngsi.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Manhole:x", "type": "Manhole"},
                               headers={"Link": link})
            assert answer.status_code == 504 and answer.json()["type"].endswith("LdContextNotAvailable")
            assert "refused" not in answer.text and "127.0.0.1" not in answer.text
            stored = ngsi.get("/ngsi-ld/v1/jsonldContexts", params={"details": "true"}).text
    finally:
        redirecting.close()
    assert site.asked == [] and "only-inside" not in stored


def test_webhooks_to_internal_addresses_are_dead_letters_unless_allowed(ctx: AppContext, site: _Site) -> None:
    def send(settings_allow: tuple[str, ...]) -> str:
        ctx.settings = replace(ctx.settings, outbound_allow=settings_allow)
        message_id = ctx.db.write_sync(lambda c: outbox.enqueue(c, channel="webhook", target=site.url("/hook"),
                                                                payload={"n": 1}, now=ctx.clock.now()))

        async def run() -> None:
            async with outbound.async_client(OutboundPolicy.from_settings(ctx.settings)) as client:
                install(ctx, client=client)
                await Runner(ctx).run_once()

        asyncio.run(run())
        table = sa.table("outbox_messages", sa.column("id"), sa.column("status"))
        return str(ctx.db.read_sync(lambda c: c.execute(sa.select(table.c.status).where(table.c.id == message_id))
                                    .scalar_one()))

    assert send(()) == "dead" and site.asked == []
    assert send(("127.0.0.1",)) == "delivered" and site.asked == ["/hook"]


def test_settings_check_the_allow_list() -> None:
    from wecity.core.errors import ConfigurationError
    from wecity.core.settings import load_settings

    base = {"WECITY_SECRET_KEY": "k" * 40}
    assert load_settings({**base, "WECITY_OUTBOUND_ALLOW": "10.0.0.0/8, gw.internal"}).outbound_allow == (
        "10.0.0.0/8", "gw.internal")
    with pytest.raises(ConfigurationError):
        load_settings({**base, "WECITY_OUTBOUND_ALLOW": "http://bad/"})
    assert json.dumps(load_settings(base).outbound_allow) == "[]"


def test_a_post_reads_a_bounded_answer_and_logs_no_query(site: _Site, caplog: pytest.LogCaptureFixture) -> None:
    """A receiver streaming a big answer is not held in memory; a failed POST's log line shows the URL
    without its query, where robots carry their keys."""
    import httpx

    allowed = OutboundPolicy.parse(["127.0.0.1"])

    async def run() -> tuple[httpx.Response, httpx.Response]:
        async with outbound.async_client(allowed) as client:
            big = await outbound.post(client, allowed, site.url("/big"), content=b"{}", headers={}, max_bytes=1000)
            small = await outbound.post(client, allowed, site.url("/ok"), content=b"{}", headers={})
            return big, small

    big, small = asyncio.run(run())
    assert big.status_code == 200 and len(big.content) == 1001  # cut: its reader can tell it was longer
    assert small.content.startswith(b'{"@context"')
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    key_url = f"http://127.0.0.1:{closed_port}/cgi-bin/webhook/send?key=693a91f6-secret"

    async def failing() -> None:
        async with outbound.async_client(allowed) as client:
            await outbound.post(client, allowed, key_url, content=b"{}", headers={})

    with caplog.at_level("INFO", logger="wecity.core.outbound"), pytest.raises(OutboundFailed):
        asyncio.run(failing())
    assert "/cgi-bin/webhook/send" in caplog.text and "693a91f6" not in caplog.text


def test_a_compressed_answer_to_a_post_is_read_once() -> None:
    """httpx asks for compression; a receiver that sends gzip is a success like any other."""
    import gzip

    import httpx

    body = b'{"errcode": 0, "errmsg": "ok"}'
    site = _Site({"/gz": (200, {"Content-Type": "application/json", "Content-Encoding": "gzip"}, gzip.compress(body))})
    allowed = OutboundPolicy.parse(["127.0.0.1"])

    async def run() -> httpx.Response:
        async with outbound.async_client(allowed) as client:
            return await outbound.post(client, allowed, site.url("/gz"), content=b"{}", headers={})

    try:
        answer = asyncio.run(run())
    finally:
        site.close()
    assert answer.status_code == 200 and answer.content == body and answer.json()["errcode"] == 0
