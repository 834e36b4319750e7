"""Open311 intake at scale: POST requests.json on PostgreSQL with 1 and with 2 `wecity serve --no-runner`.

Each serving process is one uvicorn worker (`wecity serve` has no --workers, and uvicorn offers no
SO_REUSEPORT), so two processes listen on two ports and two wrk instances share the connections
between them; a separate `wecity runner` does the background work, as in the at-scale layout of
ARCHITECTURE.md. For comparison, the same app also runs as two uvicorn workers on one shared socket.
The total number of connections is the same in every run.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import sqlalchemy as sa

from bench import ceilings
from bench._common import (
    HOST,
    Server,
    WrkResult,
    connections,
    free_port,
    make_demo_city,
    pg_admin,
    pg_admin_url,
    pg_database,
    row,
    run_wrk,
    wecity_server,
    workdir,
    wrk,
    wrk_result,
)
from bench._open311 import (
    GOAL_RPS,
    category_codes,
    count_reports,
    first_request,
    profiled_load,
    result_rows,
    stored_note,
    unavailable_rows,
)
from bench._scripts import open311_post


def _admin(url: str) -> sa.Engine:
    return pg_admin(url)  # type: ignore[no-any-return]


def _setting(url: str, name: str) -> str:
    with _admin(url).connect() as conn:
        return str(conn.execute(sa.text(f"SHOW {name}")).scalar_one())


def _runner(env: dict[str, str], log: Any) -> subprocess.Popen[bytes] | None:
    """A separate `wecity runner` when the platform has one (background work off the serving processes)."""
    probe = subprocess.run([sys.executable, "-m", "wecity", "runner", "--help"], capture_output=True, env=env)
    if probe.returncode != 0:
        return None
    return subprocess.Popen([sys.executable, "-m", "wecity", "runner"], env=env, stdout=log, stderr=subprocess.STDOUT)


def _together(urls: list[str], scripts: list[str], conns: int, duration: float | None = None) -> list[WrkResult]:
    """One wrk per server, started together, the connections split evenly."""
    procs = [wrk(u, s, conns=max(conns // len(urls), 1), duration=duration) for u, s in zip(urls, scripts, strict=True)]
    return [wrk_result(p) for p in procs]


def run() -> list[dict[str, Any]]:
    admin = pg_admin_url()
    if not admin:
        return unavailable_rows("PostgreSQL", "set BENCH_PG_URL or WECITY_TEST_PG_URL to a superuser URL")
    with pg_database(admin) as url:
        return _measure(url)


def _measure(url: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with workdir("open311-pg") as tmp:
        city = make_demo_city(tmp, database_url=url)
        env = city.env
        codes = category_codes(url)
        before = count_reports(url)
        sync = _setting(url, "synchronous_commit")
        runner_log = open(tmp / "runner.log", "ab")  # noqa: SIM115 - closed below
        runner = _runner(env, runner_log)
        try:
            one = wecity_server(port=free_port(), env=env, log_path=tmp / "serve-1.log", runner=False)
            two = wecity_server(port=free_port(), env=env, log_path=tmp / "serve-2.log", runner=False)
            with one:
                problem = first_request(one.url, city, codes[0])
                if problem:
                    return unavailable_rows("PostgreSQL", problem)
                warm = run_wrk(one.url, open311_post(city.api_key, codes), duration=1)
                single = run_wrk(one.url, open311_post(city.api_key, codes))
                assert one.proc is not None
                profiled, profile_ok = profiled_load(one.url, one.proc.pid, open311_post(city.api_key, codes))
                with two:
                    warm2 = _together([one.url, two.url], [open311_post(city.api_key, codes) for _ in range(2)],
                                      connections(), duration=1)
                    pair = _together([one.url, two.url], [open311_post(city.api_key, codes) for _ in range(2)],
                                     connections())
            # The other way to two processes: one port, uvicorn's own workers sharing the listening socket.
            shared = Server([sys.executable, "-m", "bench._workers", str(free_port()), "2"], port=0,
                            env={**env, "WECITY_RUN_BACKGROUND": "0"}, log_path=tmp / "workers.log")
            shared.port = int(shared.argv[3])
            with shared:
                warm3 = run_wrk(shared.url, open311_post(city.api_key, codes), duration=1)
                workers = run_wrk(shared.url, open311_post(city.api_key, codes))
        finally:
            if runner is not None:
                runner.terminate()
                runner.wait(timeout=15)
            runner_log.close()
        stored = count_reports(url) - before
    acknowledged = (1 + warm.ok + single.ok + profile_ok + sum(r.ok for r in warm2) + sum(r.ok for r in pair)
                    + warm3.ok + workers.ok)
    runner_note = "a separate `wecity runner` running" if runner is not None else "no `wecity runner` command yet"
    ceiling = ceilings.starlette_insert()
    rows += result_rows("PostgreSQL, 1 process", single, ceiling, "(b) Starlette + 1 SQLite insert/request",
                        stored=stored, acknowledged=acknowledged,
                        extra=f"; {runner_note}; PostgreSQL synchronous_commit={sync}"
                              + (f"; {profiled}" if profiled else ""))
    pair_rps = sum(r.rps for r in pair)
    pair_p99 = max(r.p99_ms for r in pair)
    pair_note = "; ".join(f"port {i + 1}: {r.rps:,.0f} req/s, {r.describe()}" for i, r in enumerate(pair))
    scaled = row("Open311 POST requests.json (PostgreSQL, 2 processes)", pair_rps, "req/s",
                 ceiling=2 * single.rps, ceiling_unit="req/s", goal=GOAL_RPS,
                 note=f"ceiling: twice the 1-process figure (ratio = scaling efficiency); {pair_note};"
                      f" {stored_note(stored, acknowledged)} (both runs); {connections()} connections in all on"
                      f" {HOST}")
    if any(r.errors for r in pair) or stored < acknowledged:
        scaled["met"] = False
    rows.append(scaled)
    rows.append(row("Open311 POST requests.json p99 (PostgreSQL, 2 processes)", pair_p99, "ms",
                    ceiling=single.p99_ms, ceiling_unit="ms", goal="< 50 ms",
                    note="ceiling: p99 with 1 process (the worse of the two wrk instances is shown)"))
    shared_row = row("Open311 POST requests.json (PostgreSQL, 2 uvicorn workers on one port)", workers.rps, "req/s",
                     ceiling=2 * single.rps, ceiling_unit="req/s", goal=GOAL_RPS,
                     note=f"{workers.describe()}; `uvicorn --factory wecity.api.app:create_app --workers 2`, the"
                          f" kernel spreading connections over the two workers; ceiling: twice the 1-process figure")
    if workers.errors or stored < acknowledged:
        shared_row["met"] = False
    rows.append(shared_row)
    return rows


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
