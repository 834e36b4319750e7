"""A real HTTP receiver of NGSI-LD notifications on 127.0.0.1 for tests: keeps every JSON body POSTed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.core.receiver import free_port


class Notifications:
    """Keeps the JSON body of every notification POSTed to it (answered 204)."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/notify"

    def wait_for(self, test: Callable[[list[Any]], bool], timeout: float = 15.0) -> list[Any]:
        """The bodies once `test` holds for them; AssertionError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not test(self.bodies):
            assert time.monotonic() < deadline, f"not received in {timeout} s: {self.bodies}"
            time.sleep(0.05)
        return self.bodies

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def delivering_client(city: Any) -> Iterator[Any]:
    """The app's NGSI-LD client (holding the city's API key) and `client.deliver()`, one outbox round through
    a real HTTP client; the outbound policy lets notifications reach this machine, as an operator allows an
    internal subscriber."""
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app
    from wecity.core import outbound
    from wecity.core.outbound import OutboundPolicy
    from wecity.core.runner import Runner

    settings = replace(city.settings, outbound_allow=("127.0.0.1",))
    app = create_app(settings, clock=city.clock, db=city.db)
    ctx = app.state.ctx
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"

        def deliver() -> int:
            async def run() -> int:
                async with outbound.async_client(OutboundPolicy.from_settings(settings)) as http:
                    ctx.services["ngsild_http"] = http
                    return await Runner(ctx).deliver_outbox()
            return asyncio.run(run())

        client.deliver = deliver  # type: ignore[attr-defined]
        yield client
