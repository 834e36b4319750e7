"""`wecity audit verify` over 1,000,000 audit-log entries, beside reading the same rows and hashing them raw.

The database is made by the platform's own migrations (the triggers and the index on `at` included). The
first entries are written through `record_audit`, the rest go straight to the driver in large batches,
encoded as the column types encode them (the time as naive UTC text on SQLite, `detail` as `json.dumps`
text) and chained in Python with `entry_hash`; the benchmark checks that its encoding is the one
`record_audit` stored. The entries look like the platform's own: data reads with a grant, a purpose and up
to 20 records, case steps with Chinese reasons, sign-ins, applications, refusals without detail.

Timed, alternately and twice each (the faster run counts, both are in the note):

- `verify_chain` through `Database.read_sync`, as `wecity audit verify` calls it;
- the ceiling: plain sqlite3 reading the same columns of the same rows in id order, one SHA-256 per row of
  the previous hash and the row's stored text, compared with the stored hash — what is left when nothing is
  decoded or put into canonical form, which no verifier reading rows in Python can beat by much;
- once, `python -m wecity audit verify` as a process (interpreter start and imports included).

On PostgreSQL too when BENCH_PG_URL or WECITY_TEST_PG_URL is set (a database of its own, created and dropped;
the ceiling is psycopg reading the same rows as text through a server-side cursor). BENCH_AUDIT_ENTRIES
changes the number of entries (default 1,000,000).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._common import ROOT, pg_admin_url, row, workdir

GOAL = "< 10 s"
RUNS = 2
RECORDED = 200          # entries written through record_audit before the bulk insert
BATCH = 20_000          # rows per executemany / COPY batch
COLUMNS = ("at", "actor", "action", "target", "outcome", "source_address", "detail", "entry_hash")
START = datetime(2026, 1, 5, 0, 30, tzinfo=UTC)

DATASETS = ["certificates", "districts", "business_licences", "case_reports", "housing_registrations",
            "water_quality", "school_places"]
PURPOSES = ["核验居住登记", "审批营业执照变更", "matching a housing subsidy application", "统计分析：街道人口结构",
            "补发证照核对", "citizen's complaint follow-up", "社区网格员走访核实", "跨部门联合执法检查"]
REASONS = ["转派至水务局", "不属于本部门职责", "已现场处理完毕", "市民撤回诉求", "重复工单，已合并",
           "wrong district", None]
STATUSES = ["new", "dispatched", "accepted", "in_progress", "resolved", "closed"]
SIGN_IN = ["wrong password", "account locked", "unknown account"]


def entry_count() -> int:
    return int(os.environ.get("BENCH_AUDIT_ENTRIES", "1000000"))


def entries(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`n` entries of the shapes the platform writes, one every ~30 s from START, in a fixed random mix."""
    rng = random.Random(seed)
    at = START
    for _ in range(n):
        at += timedelta(seconds=rng.randint(1, 60), microseconds=rng.randint(0, 999_999))
        address = f"10.{rng.randint(0, 30)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        kind = rng.random()
        user = f"user:{rng.choice(['zhangwei', 'liuyang', 'wangfang', 'chenjing', 'admin'])}{rng.randint(1, 400)}"
        outcome = "ok"
        source: str | None = address
        detail: dict[str, Any] | None = None
        if kind < 0.40:
            actor, action = user, "data.read"
            target = f"dataset:{rng.choice(DATASETS)}"
            records = [f"case:{rng.randint(1, 2_000_000)}" for _ in range(rng.randint(0, 20))]
            detail = {"grant": rng.randint(1, 500), "purpose": rng.choice(PURPOSES), "rows": rng.choice([1, 20, 100, 500]),
                      "records": records}
        elif kind < 0.44:
            actor, action, target, outcome = f"anonymous:{address}", "data.read", f"dataset:{rng.choice(DATASETS)}", "denied"
        elif kind < 0.70:
            step = rng.randrange(len(STATUSES) - 1)
            actor, action = user, f"case.{rng.choice(['dispatch', 'accept', 'reassign', 'resolve', 'close'])}"
            target = f"case:{rng.randint(1, 2_000_000)}"
            detail = {"from": STATUSES[step], "to": STATUSES[step + 1], "reason": rng.choice(REASONS)}
        elif kind < 0.82:
            actor, action, target = user.split(":")[1], "staff.login", f"user:{rng.randint(1, 2000)}"
            failed = rng.random() < 0.2
            outcome = "failed" if failed else "ok"
            detail = {"via": rng.choice(["password", "sms"])} | ({"reason": rng.choice(SIGN_IN)} if failed else {})
        elif kind < 0.94:
            actor = f"applicant:{rng.randint(1, 300_000)}"
            action = f"application.{rng.choice(['submit', 'supply', 'withdraw', 'rate'])}"
            target, source = f"application:CS2026{rng.randint(1, 999_999):06d}", None
        else:
            actor, action, target = user, "personal_data.view", f"case:{rng.randint(1, 2_000_000)}"
            detail = {"fields": rng.sample(["name", "phone", "id_number", "address", "email"], rng.randint(1, 3))}
        yield {"at": at, "actor": actor, "action": action, "target": target, "outcome": outcome,
               "source_address": source, "detail": detail}


# -- the database ------------------------------------------------------------------------------

def sqlite_values(entry: dict[str, Any], digest: str) -> tuple[Any, ...]:
    """An entry as SQLAlchemy stores it on SQLite: naive UTC text to the microsecond, detail as json.dumps."""
    return (entry["at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), entry["actor"], entry["action"],
            entry["target"], entry["outcome"], entry["source_address"], json.dumps(entry["detail"]), digest)


def chained(source: Iterator[dict[str, Any]], previous: str) -> Iterator[tuple[dict[str, Any], str]]:
    from wecity.identity.audit import entry_hash

    for entry in source:
        previous = entry_hash(previous, entry)
        yield entry, previous


def batches(items: Iterator[Any], size: int = BATCH) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare(url: str, n: int) -> tuple[Iterator[dict[str, Any]], str, float]:
    """Migrate the database at `url`, write the first entries through record_audit; return the entries still
    to write, the last hash and the seconds spent."""
    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.identity.audit import GENESIS, verify_chain
    from wecity.identity.service import record_audit

    started = time.perf_counter()
    source = entries(n)
    first = [next(source) for _ in range(min(RECORDED, n))]
    db = Database(url, pool_size=1)
    try:
        upgrade(db.engine)
        db.write_sync(lambda conn: [record_audit(conn, **e) for e in first])
        found = db.read_sync(verify_chain)
        if not found.intact or found.checked != len(first):
            raise RuntimeError(f"the entries written through record_audit do not verify: {found}")
    finally:
        db.close()
    return source, found.last_hash if first else GENESIS, time.perf_counter() - started


def build_sqlite(path: Path, n: int) -> float:
    """The database at `path` with `n` chained entries; returns the seconds it took."""
    source, last, took = prepare(f"sqlite:///{path}", n)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # The encoding used below is the one record_audit stored.
        stored = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY id").fetchall()
        again = [sqlite_values(e, h) for e, h in chained(entries(len(stored)), "0" * 64)]
        if stored != again:
            raise RuntimeError("the benchmark's encoding differs from what record_audit stored")
        conn.execute("PRAGMA synchronous=OFF")  # building only; verify reads it back with the platform's settings
        insert = f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        conn.execute("BEGIN")
        for batch in batches(sqlite_values(e, h) for e, h in chained(source, last)):
            conn.executemany(insert, batch)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    finally:
        conn.close()
    if count != n:
        raise RuntimeError(f"stored {count:,} of {n:,} entries")
    return took + time.perf_counter() - started


# -- timing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Timing:
    """Wall time of one run; the CPU time of the process that did the work; the CPU the rest of the machine
    used meanwhile, as a share of all its cores (PostgreSQL's own work counts there too)."""

    wall: float
    cpu: float
    others: float | None

    def describe(self) -> str:
        others = f", others {self.others:.0%}" if self.others is not None else ""
        return f"{self.wall:.2f} s (CPU {self.cpu:.2f} s{others})"


def _machine_busy() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat), or None."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(work: Callable[[], object], *, child: bool = False) -> Timing:
    """Run `work` once; `child`: the work is done by a child process that `work` waits for."""
    cpu = _children_cpu if child else time.process_time
    busy0, cpu0, started = _machine_busy(), cpu(), time.perf_counter()
    work()
    wall, used, busy1 = time.perf_counter() - started, cpu() - cpu0, _machine_busy()
    others = None
    if busy0 is not None and busy1 is not None and wall > 0:
        others = max(0.0, busy1 - busy0 - used) / (wall * (os.cpu_count() or 1))
    return Timing(wall, used, others)


# -- what is timed -----------------------------------------------------------------------------

def verify(url: str, n: int) -> Timing:
    """`verify_chain` as `wecity audit verify` calls it (the engine made beforehand, as the command's is)."""
    from wecity.core.db import Database
    from wecity.identity.audit import ChainCheck, verify_chain

    db = Database(url, pool_size=1)
    found: list[ChainCheck] = []
    try:
        timing = timed(lambda: found.append(db.read_sync(verify_chain)))
    finally:
        db.close()
    if not found[0].intact or found[0].checked != n:
        raise RuntimeError(f"verify_chain found {found[0]} in a chain of {n:,} intact entries")
    return timing


def hash_rows(rows: Iterator[tuple[Any, ...]]) -> tuple[int, int]:
    """The ceiling's loop: one SHA-256 per row over the previous hash and the row's fields as stored."""
    previous, matched, count = "0" * 64, 0, 0
    sha256 = hashlib.sha256
    for _id, stored, at, actor, action, target, outcome, source, detail in rows:
        digest = sha256(f"{previous}{at}{actor}{action}{target}{outcome}{source}{detail}".encode()).hexdigest()
        matched += digest == stored
        previous = digest
        count += 1
    return count, matched


def ceiling_sqlite(path: Path, n: int) -> Timing:
    counted: list[int] = []

    def work() -> None:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute(f"SELECT id, entry_hash, {', '.join(COLUMNS[:-1])} FROM audit_log ORDER BY id")
            counted.append(hash_rows(rows)[0])
        finally:
            conn.close()

    timing = timed(work)
    if counted[0] != n:
        raise RuntimeError(f"the ceiling read {counted[0]:,} of {n:,} rows")
    return timing


def cli(url: str, tmp: Path, n: int) -> Timing:
    env = {**os.environ, "WECITY_DATABASE_URL": url, "WECITY_VAR_DIR": str(tmp),
           "WECITY_MEDIA_DIR": str(tmp / "media"), "WECITY_SECRET_KEY": "bench-" + "k" * 40}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    done: list[subprocess.CompletedProcess[str]] = []
    timing = timed(lambda: done.append(subprocess.run(
        [sys.executable, "-m", "wecity", "audit", "verify"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=600)), child=True)
    if done[0].returncode != 0 or f"audit log intact: {n} entries" not in done[0].stdout:
        raise RuntimeError(f"wecity audit verify exited {done[0].returncode}: {(done[0].stdout + done[0].stderr)[-500:]}")
    return timing


def alternate(first: Callable[[], Timing], second: Callable[[], Timing],
              runs: int = RUNS) -> tuple[list[Timing], list[Timing]]:
    a, b = [], []
    for _ in range(runs):
        a.append(first())
        b.append(second())
    return a, b


def _runs(timings: list[Timing]) -> str:
    return " / ".join(t.describe() for t in timings)


def result_rows(backend: str, n: int, verify: list[Timing], ceiling: list[Timing], ceiling_what: str,
                build: float, extra: str = "") -> list[dict[str, Any]]:
    best, floor = min(t.wall for t in verify), min(t.wall for t in ceiling)
    return [row(f"wecity audit verify, {n:,} entries (verify_chain, {backend})", best, "s", ceiling=floor,
                ceiling_unit="s", goal=GOAL,
                note=f"{n / best:,.0f} entries/s (ceiling {n / floor:,.0f}/s); the faster of {RUNS} runs each, taken"
                     f" in turn: verify {_runs(verify)}; ceiling {_runs(ceiling)} (others: the CPU the rest of the"
                     f" machine used meanwhile, share of all its cores); ceiling: {ceiling_what}; ratio = times"
                     f" slower than the ceiling; database built in {build:.0f} s{extra}")]


# -- SQLite ------------------------------------------------------------------------------------

def run_sqlite(n: int) -> list[dict[str, Any]]:
    with workdir("audit") as tmp:
        path = tmp / "audit.db"
        build = build_sqlite(path, n)
        url = f"sqlite:///{path}"
        size = path.stat().st_size / 2**20
        verified, ceiling = alternate(lambda: verify(url, n), lambda: ceiling_sqlite(path, n))
        command = cli(url, tmp, n)
    rows = result_rows("SQLite", n, verified, ceiling, "plain sqlite3 reading the same rows and hashing them raw",
                       build, f" ({size:,.0f} MiB)")
    rows.append(row(f"python -m wecity audit verify, {n:,} entries (SQLite)", command.wall, "s",
                    ceiling=min(t.wall for t in ceiling), ceiling_unit="s", goal=GOAL,
                    note=f"{n / command.wall:,.0f} entries/s; {command.describe()}; the command as a process,"
                         f" interpreter start and imports included, run once"))
    return rows


# -- PostgreSQL --------------------------------------------------------------------------------

def _admin(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _psycopg_url(url: str) -> str:
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def build_postgres(url: str, n: int) -> float:
    import psycopg

    source, last, took = prepare(url, n)
    started = time.perf_counter()
    with psycopg.connect(_psycopg_url(url)) as conn:
        stored = conn.execute("SELECT at, detail::text FROM audit_log ORDER BY id").fetchall()
        expected = [(e["at"], json.dumps(e["detail"])) for e in entries(len(stored))]
        if stored != expected:
            raise RuntimeError("the benchmark's encoding differs from what record_audit stored")
        with conn.cursor() as cur, cur.copy(f"COPY audit_log ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for e, h in chained(source, last):
                copy.write_row((e["at"], e["actor"], e["action"], e["target"], e["outcome"], e["source_address"],
                                json.dumps(e["detail"]), h))
        conn.commit()
        conn.autocommit = True  # VACUUM runs outside a transaction
        conn.execute("VACUUM ANALYZE audit_log")
    return took + time.perf_counter() - started


def ceiling_postgres(url: str, n: int) -> Timing:
    import psycopg

    counted: list[int] = []

    def work() -> None:
        with psycopg.connect(_psycopg_url(url)) as conn, conn.cursor(name="ceiling") as cur:
            cur.itersize = 2000
            cur.execute("SELECT id, entry_hash, at::text, actor, action, target, outcome, source_address,"
                        " detail::text FROM audit_log ORDER BY id")
            counted.append(hash_rows(iter(cur))[0])

    timing = timed(work)
    if counted[0] != n:
        raise RuntimeError(f"the ceiling read {counted[0]:,} of {n:,} rows")
    return timing


def run_postgres(n: int) -> list[dict[str, Any]]:
    admin = pg_admin_url()
    workload = f"wecity audit verify, {n:,} entries (verify_chain, PostgreSQL)"
    if not admin:
        return [row(workload, None, "s", goal=GOAL, note="not measured: set BENCH_PG_URL or WECITY_TEST_PG_URL")]
    name = f"wecity_bench_{uuid.uuid4().hex[:8]}"
    with _admin(admin).connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + "/" + name
    try:
        build = build_postgres(url, n)
        verified, ceiling = alternate(lambda: verify(url, n), lambda: ceiling_postgres(url, n))
    finally:
        with _admin(admin).connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return result_rows("PostgreSQL", n, verified, ceiling,
                       "psycopg reading the same rows as text (server-side cursor, 2,000 a fetch) and hashing them raw",
                       build)


def run() -> list[dict[str, Any]]:
    n = entry_count()
    return run_sqlite(n) + run_postgres(n)


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
