"""A fake group robot on 127.0.0.1 for tests: a real HTTP server that keeps each request and answers as
WeCom and DingTalk document it ({"errcode": 0, "errmsg": "ok"}) or with the error it is told to give."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..core.receiver import free_port


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


class FakeRobot:
    def __init__(self, *, answer: dict[str, Any] | None = None, status: int = 200) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.answer = answer if answer is not None else {"errcode": 0, "errmsg": "ok"}
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                parts = urlsplit(self.path)
                # parse_qs decodes the query as the service does: sign arrives URL-encoded.
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                outer.received.append(Received(parts.path, query, {k.lower(): v for k, v in self.headers.items()},
                                               raw))
                answer = json.dumps(outer.answer).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
