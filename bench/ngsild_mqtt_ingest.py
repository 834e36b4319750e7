"""MQTT readings stored per second, end to end: a publisher process -> Mosquitto -> `wecity serve`'s listener
-> NGSI-LD entities and their history on SQLite.

The listener acknowledges a QoS 1 message only after its batch commits, so while it works the broker holds
the messages it has not yet delivered. Mosquitto's default keeps 1,000 such messages per client and drops
the rest; this benchmark runs its own Mosquitto with no such limit (`max_queued_messages 0`), as a
deployment that must lose nothing has to."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from typing import Any

from bench import ceilings
from bench._common import HOST, free_port, make_demo_city, port_open, row, wecity_server, workdir

DEVICES = 1000
MESSAGES = 50_000
GOAL = ">= 20,000"

# The load: MQTT 3.1.1 PUBLISH packets at QoS 1 built in advance and written to a plain socket, at most
# WINDOW unacknowledged (the broker drops what exceeds a subscriber's queue when it is outrun). A paho
# publisher spent more CPU per message than the listener under test and capped the run at its own speed.
PUBLISHER = r"""
import socket, sys
tenant, count, devices, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
WINDOW = 1000

def string(text):
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw

def packet(first, body):
    n, out = len(body), bytearray([first])
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out) + body

def publish(i):
    body = ('{"tiltAngle": %d, "battery": 0.9}' % (i % 10)).encode()  # normal readings: no sensor rule fires
    topic = string(f"wecity/{tenant}/devices/d{i % devices}/attrs")
    return packet(0x32, topic + (i % 65535 + 1).to_bytes(2, "big") + body)

sock = socket.create_connection(("127.0.0.1", port))
# CONNECT: clean session, keep-alive off (the run sends no pings)
sock.sendall(packet(0x10, string("MQTT") + bytes([4, 0x02]) + (0).to_bytes(2, "big") + string("bench-pub-" + tenant)))
connack = sock.recv(4)
if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
    raise SystemExit(f"connection refused: {connack!r}")
sent = acked = 0
pending = b""
while acked < count:
    if sent < count and sent - acked < WINDOW:
        upto = min(count, acked + WINDOW)
        sock.sendall(b"".join(publish(i) for i in range(sent, upto)))
        sent = upto
    data = sock.recv(1 << 16)
    if not data:
        raise SystemExit("the broker closed the connection")
    pending += data
    acked += len(pending) // 4  # nothing but PUBACKs (4 bytes each) comes back to a publisher
    pending = pending[len(pending) // 4 * 4:]
sock.sendall(b"\xe0\x00")
sock.close()
"""


def _provision(url: str, tenant: str) -> None:
    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.iot import service

    db = Database(url, pool_size=1)
    try:
        def run(conn: Any) -> None:
            for i in range(DEVICES):
                service.provision(conn, tenant=tenant, device_id=f"d{i}", entity_id=f"urn:ngsi-ld:Manhole:d{i}",
                                  entity_type="Manhole", now=Clock().now())
        db.write_sync(run)
    finally:
        db.close()


def _stored(path: str, tenant: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM ngsild_attribute_history WHERE tenant = ? AND attr LIKE "
                                "'%tiltAngle'", (tenant,)).fetchone()[0])
    finally:
        conn.close()


def _mosquitto(tmp: Any) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(f"listener {port} {HOST}\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if port_open(port):
            return proc, port
        time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("mosquitto did not start")


def run() -> list[dict[str, Any]]:
    name = "NGSI-LD MQTT readings stored end to end (QoS 1, SQLite)"
    if shutil.which("mosquitto") is None:
        return [row(name, None, "msg/s", goal=GOAL, note="not measured: mosquitto is not installed")]
    tenant = "bench" + uuid.uuid4().hex[:8]
    with workdir("mqtt") as tmp:
        city = make_demo_city(tmp)
        _provision(city.url, tenant)
        path = city.url.split("///", 1)[1]
        broker, broker_port = _mosquitto(tmp)
        mqtt_url = f"mqtt://{HOST}:{broker_port}?client_id={tenant}&share={tenant}&clean=1"
        env = {**city.env, "WECITY_MQTT_URL": mqtt_url}
        try:
            stored, elapsed, published = _measure(env, tmp, tenant, path, broker_port)
        finally:
            broker.terminate()
            broker.wait(timeout=10)
    return _rows(name, stored, elapsed, published)


def _measure(env: dict[str, str], tmp: Any, tenant: str, path: str, port: int) -> tuple[int, float, float]:
    with wecity_server(port=free_port(), env=env, log_path=tmp / "server.log"):
        time.sleep(1.0)  # the listener subscribes right after start
        started = time.perf_counter()
        publisher = subprocess.run([sys.executable, "-c", PUBLISHER, tenant, str(MESSAGES), str(DEVICES),
                                    str(port)], capture_output=True, text=True, timeout=600)
        published = time.perf_counter() - started
        if publisher.returncode != 0:
            raise RuntimeError(f"publisher failed: {publisher.stderr[-800:]}")
        stored = 0
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:
            stored = _stored(path, tenant)
            if stored >= MESSAGES:
                break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
    return stored, elapsed, published


def _rows(name: str, stored: int, elapsed: float, published: float) -> list[dict[str, Any]]:
    figure = stored / elapsed
    try:
        ceiling: float | None = ceilings.mosquitto()
    except ceilings.MosquittoUnavailable:
        ceiling = None
    r = row(name, figure, "msg/s", ceiling=ceiling, ceiling_unit="msg/s", goal=GOAL,
            note=f"{stored:,} of {MESSAGES:,} readings stored in {elapsed:.1f} s (published in {published:.1f} s by"
                 f" one process writing prebuilt packets) for {DEVICES:,} devices; each reading updates its entity and adds 2 history rows;"
                 f" ceiling: (d) mosquitto_pub -> mosquitto_sub, QoS 1")
    if stored < MESSAGES:
        r["met"] = False
    return [r]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
