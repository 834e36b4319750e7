"""The ceilings, measured on this machine in this run: what the platform's figures are compared with.

(a) a bare ASGI app under uvicorn (the same settings as `wecity serve`) and the same wrk script;
(b) Starlette + one SQLite insert per request, committed per request (WAL, synchronous=FULL);
(c) raw SQLite `executemany` of many rows in one transaction;
(d) `mosquitto_pub` -> `mosquitto_sub` alone through the broker on 127.0.0.1:1883, QoS 1.

Each is measured once per process and cached, so a benchmark module asks for the ceiling it needs and the
harness measures it only once.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from functools import cache
from typing import Any

from bench._common import (
    HOST,
    WrkResult,
    free_port,
    port_open,
    row,
    run_wrk,
    seconds,
    uvicorn_server,
    workdir,
)
from bench._scripts import DUMMY_KEY, locate_get, open311_post

MQTT_PORT = int(os.environ.get("BENCH_MQTT_PORT", "1883"))
# Messages written to mosquitto_pub at a time, and how far the publisher may run ahead of the subscriber.
CHUNK = 250
WINDOW = 750
# The demo city's categories are not needed by the ceiling apps; any codes of similar length will do.
_CODES = ["pothole", "manhole", "streetlight", "garbage", "noise"]


def _served(app: str, lua: str, *, factory: bool = False, env: dict[str, str] | None = None,
            tag: str) -> WrkResult:
    with workdir(tag) as tmp:
        env = {**(env or {})}
        if "BENCH_SQLITE_PATH" in env:
            env["BENCH_SQLITE_PATH"] = str(tmp / env["BENCH_SQLITE_PATH"])
        port = free_port()
        with uvicorn_server(app, port=port, log_path=tmp / "server.log", env=env, factory=factory) as server:
            run_wrk(server.url, lua, duration=1)  # warm-up, not counted
            return run_wrk(server.url, lua)


@cache
def bare_asgi_get() -> WrkResult:
    """(a) for GET workloads: the bare ASGI app under the locate script."""
    return _served("bench._apps:bare", locate_get(seed=1), tag="bare-get")


@cache
def bare_asgi_post() -> WrkResult:
    """(a) for POST workloads: the bare ASGI app reading the same Open311 form bodies."""
    return _served("bench._apps:bare", open311_post(DUMMY_KEY, _CODES, seed=1), tag="bare-post")


@cache
def starlette_insert() -> WrkResult:
    """(b) the same Open311 form bodies, each parsed and inserted as one committed SQLite row."""
    return _served("bench._apps:starlette_insert", open311_post(DUMMY_KEY, _CODES, seed=1), factory=True,
                   env={"BENCH_SQLITE_PATH": "ceiling.db"}, tag="starlette-insert")


@cache
def starlette_insert_normal() -> WrkResult:
    """(b') as (b) with synchronous=NORMAL: no fsync per commit, so what is left is the CPU cost."""
    return _served("bench._apps:starlette_insert", open311_post(DUMMY_KEY, _CODES, seed=1), factory=True,
                   env={"BENCH_SQLITE_PATH": "ceiling.db", "BENCH_SQLITE_SYNCHRONOUS": "NORMAL"},
                   tag="starlette-insert-normal")


def fsync_ms(samples: int = 200) -> tuple[float, float]:
    """Median and mean time (ms) of one small write + fsync in the temp directory: a durable commit's floor."""
    with workdir("fsync") as tmp:
        fd = os.open(tmp / "probe", os.O_WRONLY | os.O_CREAT, 0o600)
        times = []
        try:
            for _ in range(samples):
                t0 = time.perf_counter()
                os.write(fd, b"x" * 128)
                os.fsync(fd)
                times.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
        return sorted(times)[len(times) // 2] * 1000, sum(times) / len(times) * 1000


@cache
def sqlite_executemany(rows: int = 200_000) -> float:
    """(c) rows per second inserted by one `executemany` in one transaction (WAL, synchronous=FULL)."""
    with workdir("executemany") as tmp:
        conn = sqlite3.connect(tmp / "ceiling.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE readings (id INTEGER PRIMARY KEY, entity_id TEXT NOT NULL, attr TEXT NOT NULL,"
                     " value REAL, observed_at TEXT NOT NULL)")
        data = [(f"urn:ngsi-ld:Manhole:{i % 5000}", "tiltAngle", i * 0.01, "2026-11-02T09:00:00+00:00")
                for i in range(rows)]
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO readings (entity_id, attr, value, observed_at) VALUES (?, ?, ?, ?)", data)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        conn.close()
        if stored != rows:
            raise RuntimeError(f"executemany stored {stored} of {rows} rows")
        return rows / elapsed


class MosquittoUnavailable(RuntimeError):
    pass


@cache
def mosquitto(runs: int = 3, messages: int = 50_000) -> float:
    """(d) the best of `runs` runs of `messages` each (the broker's rate varies from run to run)."""
    return max(_mosquitto_once(messages) for _ in range(runs))


def _mosquitto_once(messages: int) -> float:
    """Messages per second from `mosquitto_pub -l` (QoS 1) through the broker to one `mosquitto_sub`.

    The clock runs from the first publish to the last message received. The publisher keeps at most
    WINDOW messages ahead of the subscriber: unpaced, it outruns delivery and the broker drops what
    exceeds a subscriber's queue (max_queued_messages, 1,000 by default), which is not a rate at all.
    """
    for tool in ("mosquitto_pub", "mosquitto_sub"):
        if shutil.which(tool) is None:
            raise MosquittoUnavailable(f"{tool} not installed (Debian package mosquitto-clients)")
    if not port_open(MQTT_PORT):
        raise MosquittoUnavailable(f"no MQTT broker on {HOST}:{MQTT_PORT} (make services starts one)")
    topic = f"wecity-bench/{uuid.uuid4().hex[:8]}"
    base = ["-h", HOST, "-p", str(MQTT_PORT), "-q", "1"]
    sub = subprocess.Popen(["mosquitto_sub", *base, "-t", topic + "/#"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    pub: subprocess.Popen[bytes] | None = None
    got_probe = threading.Event()
    state = {"count": 0, "last": 0.0}

    def read() -> None:
        assert sub.stdout is not None
        for line in sub.stdout:
            if line.startswith(b"probe"):
                got_probe.set()
                continue
            state["count"] += 1
            state["last"] = time.perf_counter()

    threading.Thread(target=read, daemon=True).start()
    limit = seconds() * 6 + 30
    try:
        # The subscriber is ready once it receives a probe; until then, keep probing (bounded).
        deadline = time.monotonic() + 10
        while not got_probe.wait(0.2):
            if time.monotonic() > deadline:
                raise MosquittoUnavailable("mosquitto_sub never received the probe message")
            subprocess.run(["mosquitto_pub", *base, "-t", topic + "/probe", "-m", "probe"], check=True, timeout=5)
        lines = [b'{"tiltAngle": %d.5, "seq": %d}\n' % (i % 90, i) for i in range(messages)]
        pub = subprocess.Popen(["mosquitto_pub", *base, "-t", topic + "/data", "-l"], stdin=subprocess.PIPE)
        assert pub.stdin is not None
        started = time.perf_counter()
        deadline = time.monotonic() + limit
        for sent in range(0, messages, CHUNK):
            while state["count"] < sent - WINDOW + CHUNK:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto_sub received {state['count']} of {sent} messages sent")
                time.sleep(0.0002)
            pub.stdin.write(b"".join(lines[sent:sent + CHUNK]))
            pub.stdin.flush()
        while state["count"] < messages:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto_sub received {state['count']} of {messages} messages")
            time.sleep(0.001)
        # stdin stays open until now: at end of input mosquitto_pub disconnects, dropping what it still holds.
        return messages / (state["last"] - started)
    finally:
        if pub is not None:
            if pub.stdin is not None:
                pub.stdin.close()
            pub.terminate()
            pub.wait(timeout=5)
        sub.terminate()
        sub.wait(timeout=5)


def _http_row(name: str, result: WrkResult) -> list[dict[str, Any]]:
    return [row(name, result.rps, "req/s", note=result.describe())]


def run() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    rows += _http_row("ceiling (a): bare ASGI app, GET with query", bare_asgi_get())
    rows += _http_row("ceiling (a): bare ASGI app, POST Open311 form", bare_asgi_post())
    rows += _http_row("ceiling (b): Starlette + 1 SQLite insert/request (WAL, FULL)", starlette_insert())
    median, mean = fsync_ms()
    rows[-1]["note"] += f"; one write + fsync on this disk: median {median:.2f} ms, mean {mean:.2f} ms"
    rows += _http_row("ceiling (b'): the same with synchronous=NORMAL (no fsync per commit)",
                      starlette_insert_normal())
    rows.append(row("ceiling (c): SQLite executemany, 1 transaction", sqlite_executemany(), "rows/s",
                    note="200,000 rows, WAL, synchronous=FULL"))
    try:
        rows.append(row("ceiling (d): mosquitto_pub -> mosquitto_sub, QoS 1", mosquitto(), "msg/s",
                        note=f"best of 3 runs of 50,000 messages through the broker on {HOST}:{MQTT_PORT}"))
    except MosquittoUnavailable as exc:
        rows.append(row("ceiling (d): mosquitto_pub -> mosquitto_sub, QoS 1", None, "msg/s", note=f"not measured: {exc}"))
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()

