"""The audit log as a hash chain: each entry stores the SHA-256 of the entry before it and of its own fields.

The database refuses UPDATE, DELETE (and, on PostgreSQL, TRUNCATE) of `audit_log` by triggers (migration
`b3d1e07a5c42`), so the platform itself can only append. Someone who can drop those triggers can still
change rows; the chain is what shows it: `wecity audit verify` recomputes every hash in id order, and the
first entry whose stored hash differs is where the log was changed (that entry, or one removed before it).
Removing entries from the end leaves a shorter chain that still verifies: `verify` prints the last entry's
id and hash so that an operator can keep them elsewhere and compare later.

Entries are chained in the order of their ids. Writers therefore take the chain one at a time: on SQLite
a write transaction already holds the database's only write lock (BEGIN IMMEDIATE); on PostgreSQL
`record_audit` takes a transaction-level advisory lock before it reads the last entry, and holds it until
its transaction ends, so a second writer reads the last entry only once the first has committed (or rolled
back) and the ids it draws afterwards come later too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import inserted_id
from wecity.identity.models import audit_log

# The "previous hash" of the first entry.
GENESIS = "0" * 64
# The fields an entry's hash covers, in this order. Not the id: the chain itself fixes each entry's place.
FIELDS = ("at", "actor", "action", "target", "outcome", "source_address", "detail")
# pg_advisory_xact_lock key of the chain: a fixed number derived from its name (any 64-bit value would do,
# as long as nothing else in the database uses it).
CHAIN_LOCK = int.from_bytes(hashlib.sha256(b"wecity.audit_log").digest()[:8], "big", signed=True)


def canonical(entry: Mapping[Any, Any]) -> str:
    """One entry's fields as one JSON text, the same whether built from the values given to `record_audit`
    or read back from either database: time in UTC to the microsecond, JSON with sorted keys."""
    at: datetime = entry["at"]
    values = {name: entry.get(name) for name in FIELDS}
    values["at"] = at.astimezone(UTC).isoformat(timespec="microseconds")
    # `detail` as the JSON column stores it (a tuple comes back a list, int keys as strings).
    values["detail"] = json.loads(json.dumps(entry.get("detail")))
    return json.dumps([values[name] for name in FIELDS], sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def entry_hash(previous: str, entry: Mapping[Any, Any]) -> str:
    return hashlib.sha256((previous + canonical(entry)).encode("utf-8")).hexdigest()


def _take_chain(conn: Connection) -> str:
    """Wait for the chain (PostgreSQL), then return the last entry's hash."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK)))
    last = conn.execute(sa.select(audit_log.c.entry_hash).order_by(audit_log.c.id.desc()).limit(1)).scalar()
    return last or GENESIS


def record_audit(conn: Connection, *, at: datetime, actor: str, action: str, target: str, outcome: str = "ok",
                 source_address: str | None = None, detail: dict[str, Any] | None = None) -> int:
    """Append one entry to the audit log, chained to the last, in the caller's transaction; its id."""
    entry = {"at": at, "actor": actor, "action": action, "target": target, "outcome": outcome,
             "source_address": source_address, "detail": detail}
    return inserted_id(conn.execute(audit_log.insert().values(**entry, entry_hash=entry_hash(_take_chain(conn), entry))))


@dataclass(frozen=True)
class ChainCheck:
    """What `verify_chain` found: how many entries it walked, the last good one, and the first bad one."""

    checked: int
    last_id: int | None
    last_hash: str
    broken_id: int | None = None
    broken_at: datetime | None = None
    broken_action: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_id is None


def verify_chain(conn: Connection, table: sa.Table | sa.TableClause = audit_log) -> ChainCheck:
    """Walk the chain in id order and stop at the first entry whose stored hash is not the one computed."""
    previous, checked, last_id = GENESIS, 0, None
    query = sa.select(table.c.id, table.c.entry_hash, *(getattr(table.c, f) for f in FIELDS)).order_by(table.c.id)
    # Streamed: the log may be far larger than memory.
    with conn.execution_options(stream_results=True, yield_per=2000).execute(query) as rows:
        for row in rows:
            expected = entry_hash(previous, row._mapping)
            if row.entry_hash != expected:
                return ChainCheck(checked, last_id, previous, row.id, row.at, row.action)
            previous, checked, last_id = expected, checked + 1, row.id
    return ChainCheck(checked, last_id, previous)


def chain_existing(conn: Connection, table: sa.Table | sa.TableClause, *, batch: int = 5000) -> None:
    """Give every entry of `table` (written before entries were chained) its hash, in id order."""
    previous, after = GENESIS, None
    while True:
        query = sa.select(table.c.id, *(getattr(table.c, f) for f in FIELDS)).order_by(table.c.id).limit(batch)
        rows = conn.execute(query if after is None else query.where(table.c.id > after)).all()
        for row in rows:
            previous = entry_hash(previous, row._mapping)
            conn.execute(table.update().where(table.c.id == row.id).values(entry_hash=previous))
        if len(rows) < batch:
            return
        after = rows[-1].id
