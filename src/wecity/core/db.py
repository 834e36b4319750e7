"""Database access: SQLAlchemy Core on a sync engine, driven from async code without the async ORM.

Why not the async ORM: measured on this class of machine, FastAPI + SQLAlchemy async ORM inserts ran at
330–440 req/s against 2,100–2,400 with the plain driver. Domain services here are plain functions that
take a `Connection` and run Core statements (compiled once, cached by SQLAlchemy); the web layer hands
them to `Database.write` / `Database.read`, which run them in worker threads.

Writes on SQLite go through one writer thread that *group-commits*: it takes every job waiting in its
queue, runs each in its own SAVEPOINT (a failing job rolls back alone), commits them together with one
fsync, and only then answers each caller. So every success response means the data is on disk, and the
cost of the commit is shared under load. On PostgreSQL each job runs in its own transaction on a pooled
connection; PostgreSQL handles concurrent writers itself. See docs/data-access.md.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from wecity.core.errors import DependencyUnavailable, WeCityError

log = logging.getLogger(__name__)
T = TypeVar("T")

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Jobs per group commit; bounded so one commit never holds callers for long.
MAX_GROUP = 256


def create_sync_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine with the platform's connection settings for SQLite (WAL) or PostgreSQL."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, pool_size=pool_size, max_overflow=20, connect_args={"check_same_thread": False, "timeout": 30}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so SAVEPOINTs work (pysqlite's own handling breaks them).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is fsynced before it returns, so an acknowledged write survives a power cut too.
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # 32 MiB of page cache (SQLite's default is 2 MiB): bulk writes update several indexes of tables
            # larger than that, and re-reading their pages cost a fifth of a batch upsert (docs/benchmarks.md).
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # IMMEDIATE for writers: take the write lock up front instead of failing on upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


class _Job:
    __slots__ = ("fn", "args", "future")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.fn = fn
        self.args = args
        self.future: Future[Any] = Future()


_STOP = object()


class Database:
    """The one way the platform reads and writes its database."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = create_sync_engine(url, pool_size=pool_size)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- sync API (CLI, runner threads, tests) -------------------------------------------------

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in a write transaction; commit, or roll back on any error."""
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            return fn(conn, *args)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self.engine.connect() as conn, conn.begin():
            return fn(conn, *args)

    # -- async API (web handlers, runner tasks) -------------------------------------------------

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(conn, *args)` in a transaction and return once it is durably committed."""
        try:
            if not self.is_sqlite:
                return await asyncio.to_thread(self.write_sync, fn, *args)
            self._ensure_writer()
            job = _Job(fn, args)
            self._queue.put(job)
            return await asyncio.wrap_future(job.future)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise _unavailable(exc) from exc

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(self.read_sync, fn, *args)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise _unavailable(exc) from exc

    # -- the SQLite group-commit writer ---------------------------------------------------------

    def _ensure_writer(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            return
        with self._lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="wecity-db-writer", daemon=True)
                self._writer.start()

    def _write_loop(self) -> None:
        conn = self.engine.connect().execution_options(write=True)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                while len(batch) < MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)
                        break
                    batch.append(item)
                conn = self._run_batch(conn, batch)
        finally:
            conn.close()

    def _run_batch(self, conn: Connection, batch: list[_Job]) -> Connection:
        jobs = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not jobs:
            return conn
        try:
            # Optimistic pass: every job in one transaction, no savepoints (jobs rarely fail, and a
            # savepoint per job costs two statements). If any job raises, the transaction is rolled back
            # and the group runs again with a savepoint per job, so only the failing job fails.
            results = self._run_jobs(conn, jobs, isolated=len(jobs) == 1)
            if results is None:
                results = self._run_jobs(conn, jobs, isolated=True)
            assert results is not None
        except Exception as exc:  # the commit itself failed: no job in the group is durable
            log.exception("group commit of %d jobs failed", len(jobs))
            for job in jobs:
                if job.future.running():
                    job.future.set_exception(exc)
            try:
                conn.close()
            except Exception:  # a broken connection may fail to close; it is replaced either way
                log.warning("closing the failed writer connection raised", exc_info=True)
            return self.engine.connect().execution_options(write=True)
        for job, ok, value in results:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        return conn

    @staticmethod
    def _run_jobs(conn: Connection, jobs: list[_Job], *, isolated: bool) -> list[tuple[_Job, bool, Any]] | None:
        """Run the jobs in one transaction and commit. Not isolated: None if any job raised (all rolled
        back). Isolated: each job in its own savepoint (alone, the transaction itself), failures recorded."""
        results: list[tuple[_Job, bool, Any]] = []
        transaction = conn.begin()
        try:
            for job in jobs:
                if not isolated:
                    try:
                        results.append((job, True, job.fn(conn, *job.args)))
                    except Exception:
                        transaction.rollback()
                        return None
                    continue
                if len(jobs) == 1:
                    try:
                        results.append((job, True, job.fn(conn, *job.args)))
                    except Exception as exc:
                        transaction.rollback()
                        return [(job, False, exc)]
                    continue
                savepoint = conn.begin_nested()
                try:
                    value = job.fn(conn, *job.args)
                    savepoint.commit()
                    results.append((job, True, value))
                except Exception as exc:
                    savepoint.rollback()
                    results.append((job, False, exc))
            transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
        return results

    def close(self) -> None:
        if self._writer is not None and self._writer.is_alive():
            self._queue.put(_STOP)
            self._writer.join(timeout=10)
        self.engine.dispose()


def _unavailable(exc: Exception) -> WeCityError:
    return DependencyUnavailable(
        f"database unavailable: {exc.__class__.__name__}", message_zh="数据库暂不可用", code="db.unavailable"
    )


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT just wrote."""
    key = result.inserted_primary_key
    if key is None:  # only for executemany, which callers of this never use
        raise RuntimeError("INSERT returned no primary key")
    return int(key[0])


def insert_unless_there(conn: Connection, table: sa.Table, values: dict[str, Any], *, unique: list[str]) -> Any:
    """Insert a row unless one with the same values of the `unique` columns (a unique constraint's) is there
    already, perhaps written by a request running at the same moment: the new row's primary key, or None.
    On PostgreSQL a plain SELECT-then-INSERT lets two requests both see nothing and the second fail on the
    constraint (a 500); ON CONFLICT DO NOTHING waits for the first and then does nothing."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    pk = next(iter(table.primary_key.columns))
    row = conn.execute(dialect_insert(table).values(**values).on_conflict_do_nothing(index_elements=unique)
                       .returning(pk)).first()
    return None if row is None else row[0]
