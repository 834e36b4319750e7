"""PostgreSQL LISTEN/NOTIFY: runners in other processes hear about new work at commit, not at their next poll."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa

log = logging.getLogger(__name__)

CHANNEL = "wecity_work"
_NOTIFY = sa.text(f"SELECT pg_notify('{CHANNEL}', '')")


# At most one notice per process in this many seconds. Every NOTIFY takes PostgreSQL's global notify lock at
# commit, which serialises committing transactions under load; a woken runner takes all due work anyway, and
# anything a skipped notice would have announced is found by the next notice or the runner's poll.
MIN_INTERVAL = 0.05
_last_notice = 0.0


def announce(conn: sa.Connection) -> None:
    """Tell listening runners there is work, when (and only if) the caller's transaction commits.
    PostgreSQL folds identical notices of one transaction into one; on SQLite this does nothing."""
    global _last_notice
    if conn.dialect.name != "postgresql":
        return
    # Once per transaction is enough: a verb that queues five notices pays one round trip.
    tx = conn.get_transaction()
    if tx is not None and conn.info.get("wecity_announced") is tx:
        return
    now = time.monotonic()
    if now - _last_notice < MIN_INTERVAL:
        return
    _last_notice = now
    conn.execute(_NOTIFY)
    conn.info["wecity_announced"] = tx


class Listener:
    """A thread holding one connection that LISTENs, calling `on_notice` for each notice."""

    def __init__(self, engine: sa.Engine, on_notice: Callable[[], object]) -> None:
        self.engine = engine
        self.on_notice = on_notice
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wecity-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw = self.engine.raw_connection()
                try:
                    driver = raw.driver_connection
                    driver.autocommit = True  # type: ignore[union-attr]
                    driver.execute(f"LISTEN {CHANNEL}")  # type: ignore[union-attr]
                    while not self._stop.is_set():
                        # Wake up every second to notice a stop; polling still covers any notice lost meanwhile.
                        for _ in driver.notifies(timeout=1.0):  # type: ignore[union-attr]
                            self.on_notice()
                finally:
                    raw.invalidate()  # a LISTENing session must not go back to the pool
            except Exception:  # the database went away: try again shortly; polling carries on meanwhile
                log.warning("LISTEN connection lost; retrying", exc_info=True)
                self._stop.wait(5)
