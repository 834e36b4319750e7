"""A real HTTP webhook receiver on 127.0.0.1 for tests: checks each signature, counts each message id."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wecity.notify import service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Server(ThreadingHTTPServer):
    # A backlog for a runner's 20 concurrent connections (the default of 5 would reset some).
    request_queue_size = 64
    daemon_threads = True


class Receiver:
    def __init__(self, port: int, secret: str, *, delay: float = 0.0) -> None:
        self.received: Counter[int] = Counter()
        self.bad: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request: nothing was delivered
                    self.close_connection = True
                    return
                if delay:
                    time.sleep(delay)
                with outer._lock:
                    if not service.verify(secret, body, self.headers.get("X-WeCity-Signature", "")):
                        outer.bad.append(self.headers.get("X-WeCity-Message-Id", "?"))
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    outer.received[int(self.headers["X-WeCity-Message-Id"])] += 1
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self) -> Counter[int]:
        with self._lock:
            return Counter(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
