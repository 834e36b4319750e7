"""Statements for the broker's hot paths. On SQLite they go straight to the driver (sqlite3), skipping
SQLAlchemy's execution machinery and per-value type processing (about 30 µs a statement, more than the
statement itself); values are encoded and decoded exactly as the column types would (JSON text, naive UTC
timestamps). PostgreSQL uses Core as usual."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

_dumps = json.dumps


def dumps_document(value: Any) -> str:
    """JSON text of an attribute document: orjson (several times faster than json), json for what orjson
    refuses (integers beyond 64 bits). Lists stay with json: type lists are matched as text in queries."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity written by json.dumps in older rows
        return json.loads(text)


def driver(conn: Connection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn` (in its transaction), or None on another database."""
    if conn.dialect.name != "sqlite":
        return None
    return conn.connection.driver_connection  # type: ignore[return-value]


def run(raw: sqlite3.Connection, sql: str, params: Any, *, many: bool = False) -> sqlite3.Cursor:
    """Execute on the driver; its errors become SQLAlchemy's (callers retry on DBAPIError, as with Core)."""
    try:
        return raw.executemany(sql, params) if many else raw.execute(sql, params)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params if not many else None, exc, sqlite3.Error) from exc


def utc(text: str | None) -> datetime | None:
    """A timestamp as SQLite stores a UTC column (naive text) back to an aware datetime."""
    return None if text is None else _utc(text)


@lru_cache(maxsize=4096)
def _utc(text: str) -> datetime:
    # Cached: a batch reads thousands of rows written at the same few instants (datetimes are immutable).
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


_last: tuple[datetime | None, str] = (None, "")


def sqlite_timestamp(value: datetime) -> str:
    """A UTC column's value as SQLite stores it."""
    return _timestamp(value)


def _timestamp(value: datetime) -> str:
    # One remembered value, not a cache: a batch stamps every row with the same time.
    global _last
    if _last[0] != value:
        _last = (value, value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"))
    return _last[1]


def _sqlite_value(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return dumps_document(value)
    if kind is list:
        return _dumps(value)
    if kind is datetime:
        return _timestamp(value)
    return value


@cache
def _json_columns(table: sa.Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if isinstance(c.type, sa.JSON))


def _encoder(table: sa.Table, columns: tuple[str, ...]) -> list[Any]:
    """Per column, how to encode its values: JSON columns encode every value but None (a JSON string
    such as a scope "/a/b" too), the others as `_sqlite_value` does."""
    json_columns = _json_columns(table)
    return [_json_value if c in json_columns else _sqlite_value for c in columns]


def _json_value(value: Any) -> Any:
    if value is None:
        return None
    kind = type(value)
    return _sqlite_value(value) if kind is dict or kind is list else _dumps(value)


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
    encode = list(zip(columns, _encoder(table, columns), strict=True))
    raw = driver(conn)
    assert raw is not None
    run(raw, _statement(table, columns), [tuple(f(r[c]) for c, f in encode) for r in rows], many=True)


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
    encode = list(zip(columns, _encoder(table, columns), strict=True))
    raw = driver(conn)
    assert raw is not None
    run(raw, _update_statement(table, columns, key),
        [tuple(f(r[c]) for c, f in encode) + (r["b_" + key],) for r in rows], many=True)
