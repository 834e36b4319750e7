"""Nothing acknowledged is lost: kill -9 `wecity serve` under concurrent Open311 POSTs, restart, count.

Each report carries a unique marker in its description and as its Idempotency-Key. After the restart,
every report that got a success response must be stored exactly once, under the id and token the
response gave, and readable through the API. A report that got no answer is sent again with the same
Idempotency-Key, as a client would retry it: whether or not the first attempt was committed before the
kill, it must then be stored exactly once too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

THREADS = 16
KILL_AFTER_ACKS = 300           # kill once this many reports are acknowledged ...
KILL_AFTER_SECONDS = 8.0        # ... or after this long, whichever comes first
MAX_REQUESTS = 3000             # a bound on the load whatever happens
# Points inside Changsha's districts (WGS-84), spread so duplicate merge leaves most reports on their own case.
POINTS = [(28.1946, 112.9766), (28.2282, 112.9389), (28.1360, 112.9998), (28.2560, 113.0300),
          (28.1010, 113.0140), (28.3510, 112.8210), (28.2330, 113.0810), (28.1480, 113.6400),
          (28.2470, 112.5520), (28.1890, 112.9050)]
CODES = ["pothole", "garbage", "noise", "illegal-parking", "street-vending", "fallen-tree"]

pytestmark = [pytest.mark.crash, pytest.mark.timeout(120)]


@dataclass
class Load:
    acknowledged: dict[str, tuple[str, str]] = field(default_factory=dict)   # marker -> (id, token)
    unanswered: dict[str, dict[str, str]] = field(default_factory=dict)      # marker -> form, no answer
    failed_in_flight: int = 0       # started before the kill, got no answer
    sent: int = 0
    other_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wecity", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {self.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _seed(url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.core.settings import Settings
    from wecity.demo.database import create_demo_database
    from wecity.identity.service import add_api_key

    settings = Settings(database_url=url, media_dir=tmp_path / "media", secret_key="c" * 40, var_dir=tmp_path)
    # The city without its 30 days of history: what is tested is the new reports, and this keeps it quick.
    create_demo_database(settings, history=False)
    db = Database(url, pool_size=1)
    try:
        key = db.write_sync(lambda conn: add_api_key(conn, name="crash test", scopes=["open311:write"], now=Clock().now()))
    finally:
        db.close()
    env = {**os.environ, "WECITY_DATABASE_URL": url, "WECITY_VAR_DIR": str(tmp_path),
           "WECITY_MEDIA_DIR": str(tmp_path / "media"), "WECITY_SECRET_KEY": settings.secret_key,
           # Thousands of reports a minute with one key: a load test, not what the rate limit guards against.
           "WECITY_RATE_LIMIT_OPEN311": "off"}
    return env, key


def _post_until_stopped(url: str, api_key: str, load: Load, stop: threading.Event, killed_at: list[float],
                        worker: int) -> None:
    with httpx.Client(timeout=10) as client:
        n = 0
        while not stop.is_set():
            with load.lock:
                if load.sent >= MAX_REQUESTS:
                    return
                load.sent += 1
            n += 1
            marker = f"crash-{worker}-{n}-{uuid.uuid4().hex[:8]}"
            lat, lon = POINTS[(worker + n) % len(POINTS)]
            form = {"api_key": api_key, "service_code": CODES[(worker * 7 + n) % len(CODES)],
                    # a few metres apart each time, so reports are distinct
                    "lat": f"{lat + n * 0.00001:.6f}", "long": f"{lon + worker * 0.00001:.6f}",
                    "description": f"kill -9 check {marker}", "email": f"{marker}@example.com"}
            started = time.monotonic()
            try:
                response = client.post(url + "/open311/v2/requests.json", data=form,
                                       headers={"Idempotency-Key": marker})
            except httpx.HTTPError:
                with load.lock:
                    load.unanswered[marker] = form
                    if killed_at and started < killed_at[0]:
                        load.failed_in_flight += 1
                if killed_at:
                    return  # the server is gone; this worker's part is done
                time.sleep(0.05)
                continue
            if response.status_code == 200:
                entry = response.json()[0]
                with load.lock:
                    load.acknowledged[marker] = (entry["service_request_id"], entry["token"])
            else:
                with load.lock:
                    load.other_errors.append(f"{response.status_code}: {response.text[:200]}")


def test_every_acknowledged_report_survives_kill_9(empty_database_url: str, tmp_path: Path) -> None:
    env, api_key = _seed(empty_database_url, tmp_path)
    server = Server(env, tmp_path / "server.log")
    server.start()
    load, stop, killed_at = Load(), threading.Event(), []
    workers = [threading.Thread(target=_post_until_stopped, args=(server.url, api_key, load, stop, killed_at, i),
                                daemon=True) for i in range(THREADS)]
    try:
        for w in workers:
            w.start()
        deadline = time.monotonic() + KILL_AFTER_SECONDS
        while len(load.acknowledged) < KILL_AFTER_ACKS and time.monotonic() < deadline:
            time.sleep(0.01)
        killed_at.append(time.monotonic())
        server.kill9()
        stop.set()
        for w in workers:
            w.join(timeout=15)
        assert not load.other_errors, load.other_errors[:3]
        acknowledged = dict(load.acknowledged)
        assert len(acknowledged) >= 20, f"too little load before the kill: {len(acknowledged)} acknowledged"
        assert load.failed_in_flight > 0, "the kill should interrupt requests in flight"

        print(f"\n{len(acknowledged)} acknowledged of {load.sent} sent; {load.failed_in_flight} in flight at the kill;"
              f" {len(load.unanswered)} unanswered, to be retried")
        server.start()  # the same database, after the crash
        _check_stored_exactly_once(empty_database_url, acknowledged)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            # Retried with the same key, every unanswered report is accepted once, committed or not before.
            retried: dict[str, tuple[str, str]] = {}
            for marker, form in load.unanswered.items():
                response = client.post("/open311/v2/requests.json", data=form, headers={"Idempotency-Key": marker})
                assert response.status_code == 200, (marker, response.text[:200])
                entry = response.json()[0]
                retried[marker] = (entry["service_request_id"], entry["token"])
            _check_stored_exactly_once(empty_database_url, {**acknowledged, **retried})
            for marker, (service_request_id, _token) in {**acknowledged, **retried}.items():
                response = client.get(f"/open311/v2/requests/{service_request_id}.json")
                assert response.status_code == 200, (marker, response.text[:200])
                items = response.json()
                assert len(items) == 1 and marker in items[0]["description"], (marker, items)
            # The server takes new reports after the restart.
            after = client.post("/open311/v2/requests.json", data={
                "api_key": api_key, "service_code": "pothole", "lat": "28.1946", "long": "112.9766",
                "description": "after the restart"})
            assert after.status_code == 200, after.text
    finally:
        stop.set()
        server.stop()


def _check_stored_exactly_once(url: str, acknowledged: dict[str, tuple[str, str]]) -> None:
    from wecity.cases.models import reports

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.select(reports.c.id, reports.c.token, reports.c.description)
                                .where(reports.c.description.like("kill -9 check %"))).all()
    finally:
        engine.dispose()
    stored: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        marker = r.description.rsplit(" ", 1)[1]
        stored.setdefault(marker, []).append((str(r.id), r.token))
    duplicated = {m: v for m, v in stored.items() if len(v) > 1}
    assert not duplicated, f"reports stored more than once: {list(duplicated.items())[:3]}"
    missing = [m for m in acknowledged if m not in stored]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged reports lost, e.g. {missing[:3]}"
    wrong = [(m, acknowledged[m], stored[m][0]) for m in acknowledged if stored[m][0] != acknowledged[m]]
    assert not wrong, f"stored under another id or token than acknowledged: {wrong[:3]}"
