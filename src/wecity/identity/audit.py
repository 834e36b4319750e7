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
import json.encoder
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import inserted_id
from wecity.core.types import UTCDateTime
from wecity.identity.models import audit_log

# The "previous hash" of the first entry.
GENESIS = "0" * 64
# The fields an entry's hash covers, in this order. Not the id: the chain itself fixes each entry's place.
FIELDS = ("at", "actor", "action", "target", "outcome", "source_address", "detail")
# pg_advisory_xact_lock key of the chain: a fixed number derived from its name (any 64-bit value would do,
# as long as nothing else in the database uses it).
CHAIN_LOCK = int.from_bytes(hashlib.sha256(b"wecity.audit_log").digest()[:8], "big", signed=True)


# The JSON of the hashed text: sorted keys, text other than ASCII as it is, no spaces. The format of every
# hash already written: never change it (tests/identity/test_audit.py pins two entries).
_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical(entry: Mapping[Any, Any]) -> str:
    """One entry's fields as one JSON text, the same whether built from the values given to `record_audit`
    or read back from either database: time in UTC to the microsecond, JSON with sorted keys."""
    at: datetime = entry["at"]
    values = [entry.get(name) for name in FIELDS]
    values[0] = at.astimezone(UTC).isoformat(timespec="microseconds")
    # `detail` as the JSON column stores it (a tuple comes back a list, int keys as strings).
    values[-1] = json.loads(json.dumps(entry.get("detail")))
    return _JSON.encode(values)


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


# `at` as SQLAlchemy stores it on SQLite: naive UTC text to the microsecond, ASCII digits only.
_SQLITE_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}")


# `at` as `verify_chain` has PostgreSQL write it: the canonical text itself.
_PG_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")


def _same(value: Any) -> Any:
    return value


def _utc_from_text(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _list_encoder() -> Callable[[list[Any]], str]:
    """`_JSON.encode` for values decoded from JSON, with the C encoder made once instead of on every call
    (a third of the time it takes to encode an entry). Without the check for cycles: decoded JSON has none."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _JSON.encode
    encode = make(None, _JSON.default, json.encoder.encode_basestring, None, _JSON.key_separator,
                  _JSON.item_separator, _JSON.sort_keys, _JSON.skipkeys, _JSON.allow_nan)
    return lambda values: "".join(encode(values, 0))


class _NotPlain(Exception):
    """A number with a fraction or an exponent, NaN or Infinity: JSON that orjson does not write as _JSON does."""


def _not_plain(text: str) -> Any:
    raise _NotPlain(text)


def verify_chain(conn: Connection, table: sa.Table | sa.TableClause = audit_log, *, batch: int = 500) -> ChainCheck:
    """Walk the chain in id order and stop at the first entry whose stored hash is not the one computed.

    Each entry's text is the one `canonical` makes of the entry as SQLAlchemy reads it back, built with less
    work (docs/benchmarks.md, "Verifying the audit log"): the rows come as the driver returns them, each value
    decoded by its column type's own result processor; `detail` is not put through JSON a second time, since
    what the JSON column returns is already what `canonical` would make of it; on SQLite, `at` stored in the
    column's own format becomes its canonical text without a datetime in between, and `detail` is read with
    json.loads's own parser, json.loads itself taking over for any text that parser does not read whole.

    The text is written by orjson where it writes exactly what `_JSON` writes: strings (every character is
    escaped alike, tests/identity/test_audit.py checks them all), integers of up to 64 bits (orjson refuses
    larger ones), true, false, null, lists and objects with keys sorted by code point. Not floats: orjson
    writes 1e16 where `_JSON` writes 1e+16. So orjson is given only entries whose text fields are strings and
    whose `detail` is null or was parsed here and held no number other than an integer; anything orjson
    refuses, and every other entry, is written by `_JSON`'s encoder.
    """
    names = ("id", "entry_hash", *FIELDS)
    query = sa.select(*(table.c[name] for name in names)).order_by(table.c.id)
    dialect = conn.dialect
    decoders = {name: table.c[name].type.dialect_impl(dialect).result_processor(dialect, None) for name in names}
    if any(decoders[name] for name in names if name not in ("at", "detail")):
        return _verify_rows(conn, query)  # a column decoded in a way this function does not know
    decode_at: Callable[[Any], Any] = decoders["at"] or _same
    decode_detail: Callable[[Any], Any] = decoders["detail"] or _same
    # The JSON column reads its text with json.loads (the dialect's default), so reading the text here with
    # json.loads's own parser gives the same value.
    json_text = getattr(dialect, "_json_deserializer", None) in (None, json.loads) and \
        isinstance(table.c["detail"].type, sa.JSON)
    sqlite_text = dialect.name == "sqlite" and decoders["detail"] is not None and json_text
    at_text = _SQLITE_AT.fullmatch if dialect.name == "sqlite" else None
    at_is_canonical = False
    at_type = table.c["at"].type
    zoned = isinstance(at_type, UTCDateTime) or (isinstance(at_type, sa.DateTime) and at_type.timezone)
    if dialect.name == "postgresql" and json_text and zoned:
        # PostgreSQL writes each `at` as its canonical text and hands `detail` over as the text it stores
        # (type json keeps it verbatim, jsonb in its own form; psycopg would give either text to json.loads):
        # decoding a zone-aware datetime and a JSON value per row in the driver was most of the time here.
        query = sa.select(table.c.id, table.c.entry_hash, sa.func.to_char(
            sa.func.timezone("UTC", table.c.at), 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
            *(table.c[name] for name in FIELDS[1:-1]), sa.cast(table.c.detail, sa.Text)).order_by(table.c.id)
        sqlite_text, at_text, at_is_canonical = True, _PG_AT.fullmatch, True
        decode_at, decode_detail = _utc_from_text, json.loads
    # Text columns (TEXT affinity on SQLite) hold strings or NULL, or bytes, which both encoders refuse.
    text_fields = dialect.name in ("sqlite", "postgresql") and all(
        isinstance(table.c[name].type, sa.String) for name in FIELDS[1:-1])
    from_text = datetime.fromisoformat
    read_plain = json.JSONDecoder(parse_float=_not_plain, parse_constant=_not_plain).raw_decode
    encode, dumps, sorted_keys, sha256 = _list_encoder(), orjson.dumps, orjson.OPT_SORT_KEYS, hashlib.sha256
    previous, checked, last_id = GENESIS, 0, None
    # Streamed: the log may be far larger than memory.
    with conn.execution_options(stream_results=True, yield_per=batch).exec_driver_sql(
            str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))) as result:
        for rows in result.partitions(batch):
            for id_, stored, at, actor, action, target, outcome, source_address, detail in rows:
                if at_text is not None and type(at) is str and at_text(at):
                    from_text(at)  # what the column type does with it: raises on a date that does not exist
                    when = at if at_is_canonical else at.replace(" ", "T") + "+00:00"
                else:
                    when = decode_at(at).astimezone(UTC).isoformat(timespec="microseconds")
                plain = detail is None
                if sqlite_text and type(detail) is str:
                    # json.loads is raw_decode with nothing but whitespace around the value.
                    try:
                        value, end = read_plain(detail)
                        plain = end == len(detail)
                    except (_NotPlain, ValueError):
                        pass
                    detail = value if plain else decode_detail(detail)
                else:
                    detail = decode_detail(detail)
                values = [when, actor, action, target, outcome, source_address, detail]
                data = None
                if plain and text_fields:
                    try:
                        data = dumps(values, option=sorted_keys)
                    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a lone surrogate ...
                        pass
                if data is None:
                    data = encode(values).encode("utf-8")
                expected = sha256(previous.encode() + data).hexdigest()
                if stored != expected:
                    return ChainCheck(checked, last_id, previous, id_, decode_at(at), action)
                previous, checked, last_id = expected, checked + 1, id_
    return ChainCheck(checked, last_id, previous)


def _verify_rows(conn: Connection, query: sa.Select[Any]) -> ChainCheck:
    """`verify_chain` on rows decoded by SQLAlchemy: each entry as `canonical` takes it."""
    previous, checked, last_id = GENESIS, 0, None
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


async def record_refusal(ctx: Any, *, actor: str, action: str, target: str, error: Any,
                         source_address: str | None) -> None:
    """A refused operation on the audit record, in a transaction of its own (the operation's own transaction
    rolled back with its entry): outcome `denied` for a 403, `refused` otherwise, with the error's code.
    Failed operations belong on the record as much as done ones."""
    at, outcome, code = ctx.clock.now(), "denied" if error.status == 403 else "refused", error.code
    await ctx.db.write(lambda conn: record_audit(conn, at=at, actor=actor, action=action, target=target,
                                                 outcome=outcome, source_address=source_address,
                                                 detail={"code": code}))
