"""Claiming due rows of a work table with a lease, safely among several runners."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa


def claim_due(conn: sa.Connection, table: sa.Table, *, status: str | None, due: sa.Column[Any], now: datetime,
              runner_id: str, limit: int, lease_seconds: float,
              where: sa.ColumnElement[bool] | None = None) -> list[sa.Row[Any]]:
    """Lease up to `limit` rows whose `status` column is `status` (if given) and whose `due` time has come.

    On PostgreSQL, FOR UPDATE SKIP LOCKED lets runners claim at the same time without waiting on or
    taking each other's rows; the lease (`claimed_until`) outlives the transaction, so a runner that dies
    while working loses its claim when the lease runs out and another runner takes the row. On SQLite
    the single writer serialises claims and FOR UPDATE is not needed.
    """
    free = sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)
    q = sa.select(table).where(due <= now, free)
    if status is not None:
        q = q.where(table.c.status == status)
    if where is not None:
        q = q.where(where)
    pk = next(iter(table.primary_key.columns))
    rows = conn.execute(q.order_by(due, pk).limit(limit).with_for_update(skip_locked=True)).all()
    if rows:
        conn.execute(table.update().where(pk.in_([getattr(r, pk.name) for r in rows]))
                     .values(claimed_until=now + timedelta(seconds=lease_seconds), claimed_by=runner_id))
    return list(rows)
