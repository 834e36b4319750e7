"""Bulk inserts for the broker's hot paths. On SQLite the rows go straight to the driver's executemany,
skipping SQLAlchemy's per-value type processing (a third of a batch upsert's time); values are encoded
exactly as the column types would (JSON text, naive UTC timestamps). PostgreSQL uses Core as usual."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

_dumps = json.dumps


_last: tuple[datetime | None, str] = (None, "")


def _timestamp(value: datetime) -> str:
    # One remembered value, not a cache: a batch stamps every row with the same time.
    global _last
    if _last[0] != value:
        _last = (value, value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    return _last[1]


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict or kind is list:
        return _dumps(value)
    if kind is datetime:
        return _timestamp(value)
    return value


@cache
def _statement(table: sa.Table, columns: tuple[str, ...]) -> str:
    return f'INSERT INTO {table.name} ({", ".join(columns)}) VALUES ({", ".join("?" for _ in columns)})'


def insert_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) into `table` in one executemany."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(table.insert(), rows)
        return
    columns = tuple(rows[0])
    # A JSON column holding None is SQL NULL here, as it is for these tables' nullable JSON columns.
    conn.exec_driver_sql(_statement(table, columns),
                         [tuple(_sqlite_value(r[c]) for c in columns) for r in rows])


@cache
def _update_statement(table: sa.Table, columns: tuple[str, ...], key: str) -> str:
    return f'UPDATE {table.name} SET {", ".join(f"{c} = ?" for c in columns)} WHERE {key} = ?'


def update_many(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], *, key: str,
                statement: Any) -> None:
    """Update rows by primary key: `rows` carry the new values and `b_<key>`; `statement` is the Core
    equivalent used on PostgreSQL."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(statement, rows)
        return
    columns = tuple(c for c in rows[0] if c != "b_" + key)
    conn.exec_driver_sql(_update_statement(table, columns, key),
                         [tuple(_sqlite_value(r[c]) for c in columns) + (r["b_" + key],) for r in rows])
