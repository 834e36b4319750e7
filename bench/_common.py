"""What every benchmark shares: knobs, result rows, servers in their own processes, wrk, a demo city."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HOST = "127.0.0.1"  # load never leaves this machine
ROOT = Path(__file__).resolve().parent.parent


def seconds() -> float:
    """Length of each timed load run (BENCH_SECONDS, default 5)."""
    return float(os.environ.get("BENCH_SECONDS", "5"))


def connections() -> int:
    """Open connections wrk keeps busy for each HTTP workload (BENCH_CONNECTIONS, default 32)."""
    return int(os.environ.get("BENCH_CONNECTIONS", "32"))


def row(workload: str, figure: float | None, unit: str, *, ceiling: float | None = None,
        ceiling_unit: str | None = None, goal: str | None = None, note: str = "") -> dict[str, Any]:
    """One result: `ratio` is figure ÷ ceiling (throughput: share of the ceiling; latency: times slower)."""
    ratio = figure / ceiling if figure is not None and ceiling else None
    return {"workload": workload, "figure": figure, "unit": unit, "ceiling": ceiling,
            "ceiling_unit": ceiling_unit if ceiling is not None else None, "ratio": ratio, "goal": goal,
            "note": note}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    """A server in its own process group; its output goes to a log file (a full pipe would stall it)."""

    def __init__(self, argv: list[str], *, port: int, env: dict[str, str] | None = None,
                 log_path: Path, ready_path: str = "/healthz") -> None:
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **(env or {})}
        self.log_path = log_path
        self.ready_path = ready_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self, timeout: float = 60) -> Server:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=ROOT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready after {timeout:.0f} s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def uvicorn_server(app: str, *, port: int, log_path: Path, env: dict[str, str] | None = None,
                   factory: bool = False) -> Server:
    """A ceiling app served by uvicorn exactly as `wecity serve` serves the platform."""
    argv = [sys.executable, "-m", "bench._serve", app, str(port)] + (["--factory"] if factory else [])
    return Server(argv, port=port, env=env, log_path=log_path, ready_path="/")


def wecity_server(*, port: int, env: dict[str, str], log_path: Path, runner: bool = True) -> Server:
    argv = [sys.executable, "-m", "wecity", "serve", "--host", HOST, "--port", str(port), "--no-migrate"]
    if not runner:
        argv.append("--no-runner")
    return Server(argv, port=port, env=env, log_path=log_path)


# -- wrk ---------------------------------------------------------------------------------------

# Appended to every script: wrk's own summary, as one JSON line the harness can read.
_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,' ..
    '"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    errors: int            # socket errors and timeouts
    bad_status: int        # responses with status >= 400
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.bad_status

    @property
    def rps(self) -> float:
        """Successful responses per second (a 4xx/5xx is not throughput)."""
        return self.ok / self.seconds if self.seconds else 0.0

    def describe(self) -> str:
        text = f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms, {self.requests} requests"
        if self.errors or self.bad_status:
            text += f", {self.errors} socket errors, {self.bad_status} error statuses"
        return text


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


@dataclass(frozen=True, slots=True)
class WrkRun:
    """A wrk process under way, and the script file it reads (removed once its result is in)."""
    proc: subprocess.Popen[str]
    script: Path
    duration: float


def wrk(url: str, lua: str, *, duration: float | None = None, conns: int | None = None,
        threads: int = 1) -> WrkRun:
    """Start wrk on `url` with the Lua script `lua`; collect the result with `wrk_result`."""
    duration = duration or seconds()
    conns = conns or connections()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua + _DONE_LUA)
    argv = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{duration:.0f}s", "--timeout", "10s",
            "--latency", "-s", script.name, url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return WrkRun(proc=proc, script=Path(script.name), duration=duration)


def wrk_result(run: WrkRun) -> WrkResult:
    try:
        out, _ = run.proc.communicate(timeout=run.duration + 60)
    finally:
        run.script.unlink(missing_ok=True)
    for line in out.splitlines():
        if line.startswith("WRKJSON "):
            d = json.loads(line[len("WRKJSON "):])
            return WrkResult(requests=d["requests"], seconds=d["duration_us"] / 1e6,
                             errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
                             bad_status=d["status"], p50_ms=d["p50_us"] / 1000, p99_ms=d["p99_us"] / 1000)
    raise RuntimeError(f"wrk gave no result (exit {run.proc.returncode}): {out[-800:]}")


def run_wrk(url: str, lua: str, **kw: Any) -> WrkResult:
    return wrk_result(wrk(url, lua, **kw))


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string of ASCII is a valid Lua string literal


# -- a demo city -------------------------------------------------------------------------------

@dataclass
class DemoCity:
    url: str
    env: dict[str, str]
    api_key: str
    dir: Path


# The load comes from one API key at thousands of requests a second, far past the defaults (300 Open311
# POSTs and 6,000 NGSI-LD writes a minute per key): the limits are raised, not switched off, so each
# request still pays for its check.
BENCH_RATE_LIMITS = {"WECITY_RATE_LIMIT_OPEN311": "1000000000/minute", "WECITY_RATE_LIMIT_NGSILD": "1000000000/minute"}


def _grant_backlog(db: Any, settings: Any) -> None:
    """A fresh demo city leaves its 免申即享 grants (about 2,300) to the runner, which makes them over its
    first minutes; a benchmark measures the steady state after them, so they are made here first."""
    from wecity.core.clock import Clock
    from wecity.enterprise import matching

    now = Clock().now()
    while db.write_sync(lambda conn: matching.grant_pending(conn, now=now, key_dir=settings.var_dir)):
        pass


def make_demo_city(workdir: Path, database_url: str | None = None, *, history: bool = True) -> DemoCity:
    """Changsha's demo city (wecity.demo.database.create_demo_database) in `workdir`, with a fresh API key.

    With `history`, the city carries its 30 days of cases, as `wecity demo` serves it: writes then meet
    tables and indexes that are not empty, and duplicate merge has open cases to consider.
    """
    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.core.settings import Settings
    from wecity.demo.database import create_demo_database
    from wecity.identity.service import add_api_key

    url = database_url or f"sqlite:///{workdir / 'city.db'}"
    settings = Settings(database_url=url, media_dir=workdir / "media", secret_key="bench-" + "k" * 40,
                        var_dir=workdir, run_background=False)
    create_demo_database(settings, history=history)
    db = Database(url, pool_size=1)
    try:
        key = db.write_sync(lambda conn: add_api_key(conn, name="benchmark", scopes=["admin"], tenant="*",
                                                              now=Clock().now()))
        _grant_backlog(db, settings)
    finally:
        db.close()
    env = {"WECITY_DATABASE_URL": url, "WECITY_VAR_DIR": str(workdir), "WECITY_MEDIA_DIR": str(workdir / "media"),
           "WECITY_SECRET_KEY": settings.secret_key, **BENCH_RATE_LIMITS}
    return DemoCity(url=url, env=env, api_key=key, dir=workdir)


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=f"wecity-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pg_admin_url() -> str | None:
    """A PostgreSQL superuser URL (BENCH_PG_URL, else WECITY_TEST_PG_URL), or None."""
    return os.environ.get("BENCH_PG_URL") or os.environ.get("WECITY_TEST_PG_URL")


def pg_admin(url: str) -> Any:
    """An engine of the superuser URL that runs each statement on its own (CREATE DATABASE needs it)."""
    import sqlalchemy as sa

    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@contextmanager
def pg_database(admin: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark (its URL), dropped afterwards whatever happens."""
    import uuid

    import sqlalchemy as sa

    name = f"wecity_bench_{uuid.uuid4().hex[:8]}"
    with pg_admin(admin).connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        with pg_admin(admin).connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
