"""The audit log: the database refuses to change it, and the hash chain shows a change made around that."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import sqlalchemy as sa
from alembic import command

from wecity.cli import main
from wecity.core.db import Database
from wecity.core.errors import ValidationFailed
from wecity.core.migrate import alembic_config, upgrade
from wecity.core.types import UTCDateTime
from wecity.identity.audit import (
    _JSON,
    GENESIS,
    _list_encoder,
    _verify_rows,
    canonical,
    entry_hash,
    verify_chain,
)
from wecity.identity.models import audit_log
from wecity.identity.service import record_audit

from ..conftest import SEED_TIME, City

CHINA = timezone(timedelta(hours=8))


def _record(city: City, n: int) -> None:
    """`n` entries of the kinds the platform writes: zones other than UTC, details with Chinese and nesting."""
    def write(conn: sa.Connection) -> None:
        for i in range(n):
            record_audit(conn, at=(SEED_TIME + timedelta(minutes=i, microseconds=7)).astimezone(CHINA),
                         actor=f"user:{i}", action="case.dispatch", target=f"case:{i}", source_address="10.0.0.8",
                         detail={"to": "dispatched", "reason": "转派至水务局", "n": [i, 1.5, None]})
    city.db.write_sync(write)


# Two entries and their hashes as the chain was first written (commit 38411d4): the format of an entry's
# hash may never change, or every entry written before would stop verifying. The detail holds what JSON
# changes on the way through the column (int keys, a tuple), escapes, non-ASCII text and nesting.
PINNED: list[dict[str, Any]] = [
    {"at": datetime(2026, 11, 2, 17, 5, 9, 123456, tzinfo=CHINA), "actor": "user:7", "action": "data.read",
     "target": "dataset:certificates", "outcome": "ok", "source_address": "10.0.0.8",
     "detail": {"rows": 100, "grant": 12, "purpose": '核验居住登记 "quoted" \\ tab\t', "records": ("case:1", "case:2"),
                3: {"nested": [1.5, None, True, 1e16, -0.0]}, "zh键": "长沙"}},
    {"at": datetime(2026, 11, 2, 9, 0, tzinfo=UTC), "actor": "system", "action": "case.close", "target": "case:1",
     "outcome": "refused", "source_address": None, "detail": None},
]
PINNED_CANONICAL = ('["2026-11-02T09:05:09.123456+00:00","user:7","data.read","dataset:certificates","ok","10.0.0.8",'
                    '{"3":{"nested":[1.5,null,true,1e+16,-0.0]},"grant":12,"purpose":"核验居住登记 \\"quoted\\" \\\\ tab\\t",'
                    '"records":["case:1","case:2"],"rows":100,"zh键":"长沙"}]')
PINNED_HASHES = ["a1ec974692c14256b6aaac401fad3212ae68bf90cc5b9ad3ca2b3363bf37798e",
                 "9ff6fc454d0790af4936e9959850bf58e39d43c675a518fd0bd02de88376e86a"]


def test_the_hash_of_an_entry_is_pinned() -> None:
    assert canonical(PINNED[0]) == PINNED_CANONICAL
    assert entry_hash(GENESIS, PINNED[0]) == PINNED_HASHES[0]
    assert entry_hash(PINNED_HASHES[0], PINNED[1]) == PINNED_HASHES[1]


def test_pinned_entries_read_back_from_the_database_verify_to_the_same_hashes(city: City) -> None:
    def write(conn: sa.Connection) -> None:
        for entry in PINNED:
            record_audit(conn, **entry)

    city.db.write_sync(write)
    assert city.db.read_sync(lambda c: list(c.execute(sa.select(audit_log.c.entry_hash)).scalars())) == PINNED_HASHES
    found = city.db.read_sync(verify_chain)
    assert found.intact and found.checked == 2 and found.last_hash == PINNED_HASHES[1]


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


# What a detail may hold, and the corners of JSON text: verify reads each back and must hash it as written.
DETAILS: list[dict[Any, Any] | None] = [
    None,
    {},
    {"b": 1, "a": "长沙", "é": "x", "A": None, "": 0, "Z": [], "z": {}, "長": "sorted by code point", "\U0001f600": 1,
     "\uffff": 2},
    {"control": "\x00\x1f\x7f\u2028\u2029 \"\\/\b\f\n\r\t", "emoji": "🏙️👩🏽‍💻", "cjk": "審批 核验", "ascii": "plain"},
    {"floats": [-0.0, 1.0, 1.5, 0.1, 1e16, 1e-7, 1e300, 5e-324]},
    {"integers": [0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64 - 1, 2 ** 70, -(2 ** 70)], "flags": [True, False, None]},
    {"nested": {"list": [1, [2, [3, {"k": (4, 5)}]]]}, 7: "int key", True: "bool key", 2.5: "float key"},
    {"deep": _nested(300)},
    {"grant": 12, "purpose": "核验居住登记", "rows": 100, "records": [f"case:{i}" for i in range(20)]},
]
ZONES = [UTC, CHINA, ZoneInfo("America/New_York"), timezone(timedelta(hours=-3, minutes=-30))]


def _record_details(city: City) -> list[dict[str, Any]]:
    entries = [{"at": (SEED_TIME + timedelta(days=i, microseconds=i % 2 * 999_999)).astimezone(ZONES[i % len(ZONES)]),
                "actor": f"user:{i}", "action": "data.read", "target": f"dataset:{i}", "outcome": "ok",
                "source_address": None if i % 2 else "10.0.0.8", "detail": detail}
               for i, detail in enumerate(DETAILS)]

    def write(conn: sa.Connection) -> None:
        for entry in entries:
            record_audit(conn, **entry)

    city.db.write_sync(write)
    return entries


def _both_ways(city: City) -> Any:
    """verify_chain, after checking that it finds what the check on SQLAlchemy's decoded rows finds."""
    found = city.db.read_sync(verify_chain)
    query = sa.select(audit_log.c.id, audit_log.c.entry_hash, *(audit_log.c[f] for f in
                      ("at", "actor", "action", "target", "outcome", "source_address", "detail"))).order_by(audit_log.c.id)
    assert city.db.read_sync(lambda conn: _verify_rows(conn, query)) == found
    return found


def test_every_kind_of_detail_verifies_as_written(city: City) -> None:
    entries = _record_details(city)
    previous = GENESIS
    for entry in entries:
        previous = entry_hash(previous, entry)
    found = _both_ways(city)
    assert found.intact and found.checked == len(DETAILS) and found.last_hash == previous


def test_the_encoder_of_verify_writes_what_canonical_writes() -> None:
    encode = _list_encoder()
    for detail in DETAILS:
        values = ["2026-11-02T09:00:00.000000+00:00", "user:1", "动作", None, "ok", "10.0.0.8",
                  json.loads(json.dumps(detail))]
        assert encode(values) == _JSON.encode(values)


def test_orjson_writes_what_canonical_writes_where_verify_lets_it() -> None:
    """verify_chain has orjson write an entry's text when it holds no float: every character is escaped as
    `_JSON` escapes it, integers of up to 64 bits and keys are written alike, and orjson refuses what it would
    write otherwise (the entry then goes to `_JSON`)."""
    every_character = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    for value in [every_character, {every_character[i:i + 7]: i for i in range(0, len(every_character), 997)},
                  [0, -1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64 - 1, True, False, None, [], {}, "", [[{"": {}}]]]]:
        assert orjson.dumps(value, option=orjson.OPT_SORT_KEYS) == _JSON.encode(value).encode("utf-8")
    for refused in [2 ** 64, -(2 ** 63) - 1, "\ud800", {"\udfff": 1}, _nested(300)]:
        with pytest.raises(TypeError):
            orjson.dumps(refused, option=orjson.OPT_SORT_KEYS)


def test_details_only_sqlite_stores_verify_as_written(sqlite_city: City) -> None:
    entries = [{"at": SEED_TIME, "actor": "user:1", "action": "data.read", "target": "dataset:1", "outcome": "ok",
                "source_address": None, "detail": detail}
               for detail in [{"nan": float("nan")}, {"inf": [float("inf"), float("-inf")]}, {"n": float("nan"), "i": 1}]]

    def write(conn: sa.Connection) -> None:
        for entry in entries:
            record_audit(conn, **entry)

    sqlite_city.db.write_sync(write)
    found = _both_ways(sqlite_city)
    assert found.intact and found.checked == 3


def test_values_stored_in_another_form_verify_as_the_column_types_read_them(sqlite_city: City) -> None:
    """On SQLite verify turns `at` and `detail` into text without SQLAlchemy when they are stored as it stores
    them; stored otherwise, they are decoded as the column types decode them: the same instant in another
    format, the same JSON with other spacing or key order, SQL NULL for JSON null all read as the same values."""
    _record_details(sqlite_city)
    ids = _ids(sqlite_city)
    _as_attacker(sqlite_city,
                 f"UPDATE audit_log SET at = replace(at, ' ', 'T') WHERE id = {ids[1]}",
                 f"UPDATE audit_log SET at = substr(at, 1, 19) || '+00:00' WHERE id = {ids[2]}",
                 f"UPDATE audit_log SET detail = NULL WHERE id = {ids[0]}",
                 f"UPDATE audit_log SET detail = ' {{ \"z\" : {{}}, \"長\": \"sorted by code point\", \"A\":null,"
                 f" \"\":0, \"Z\":[], \"b\":1, \"a\":\"\\u957f\\u6c99\", \"é\":\"x\","
                 f" \"\\ud83d\\ude00\": 1, \"\\uffff\": 2}}\n' WHERE id = {ids[2]}")
    found = _both_ways(sqlite_city)
    assert found.intact and found.checked == len(DETAILS)

    with sqlite_city.db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_log SET detail = '{{\"grant\": 13}}' WHERE id = {ids[-1]}")
    assert _both_ways(sqlite_city).broken_id == ids[-1]


def test_verify_reads_text_only_as_the_column_types_read_it(sqlite_city: City) -> None:
    """Text the column types refuse is refused, even with a hash made to match: here the last entry moved to a
    day that does not exist, then JSON with something after it."""
    _record(sqlite_city, 3)
    ids = _ids(sqlite_city)
    with sqlite_city.db.engine.connect() as conn:
        previous = conn.exec_driver_sql(f"SELECT entry_hash FROM audit_log WHERE id = {ids[1]}").scalar_one()
        actor, action, target, outcome, source_address = conn.exec_driver_sql(
            f"SELECT actor, action, target, outcome, source_address FROM audit_log WHERE id = {ids[2]}").one()
    forged = hashlib.sha256((previous + _JSON.encode(["2026-02-30T09:00:00.000000+00:00", actor, action, target, outcome,
                                                      source_address, {"to": 1}])).encode()).hexdigest()
    _as_attacker(sqlite_city, f"UPDATE audit_log SET at = '2026-02-30 09:00:00.000000', detail = '{{\"to\": 1}}',"
                              f" entry_hash = '{forged}' WHERE id = {ids[2]}")
    with pytest.raises(ValueError, match="day is out of range"):
        sqlite_city.db.read_sync(verify_chain)

    forged = hashlib.sha256((previous + _JSON.encode(["2026-11-02T09:02:00.000007+00:00", actor, action, target, outcome,
                                                      source_address, {"to": 1}])).encode()).hexdigest()
    with sqlite_city.db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_log SET at = '2026-11-02 09:02:00.000007', detail = '{{\"to\": 1}} trailing',"
                             f" entry_hash = '{forged}' WHERE id = {ids[2]}")
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        sqlite_city.db.read_sync(verify_chain)
    with sqlite_city.db.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE audit_log SET detail = '{{\"to\": 1}}' WHERE id = {ids[2]}")
    assert _both_ways(sqlite_city).intact  # the forged entries themselves verify: the chain cannot tell


def _ids(city: City) -> list[int]:
    return city.db.read_sync(lambda c: list(c.execute(sa.select(audit_log.c.id).order_by(audit_log.c.id)).scalars()))


def _as_attacker(city: City, *statements: str) -> None:
    """Someone with DDL rights: drop the triggers, then change the table directly."""
    drop = ("DROP TRIGGER audit_log_append_only ON audit_log" if city.backend == "postgres"
            else "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete")
    with city.db.engine.begin() as conn:
        for sql in (*drop.split("; "), *statements):
            conn.exec_driver_sql(sql)


def _verify(city: City, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("WECITY_DATABASE_URL", city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    return main(["audit", "verify"])


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET outcome = 'ok'",
    "UPDATE audit_log SET actor = 'someone-else' WHERE id = {id}",
    "DELETE FROM audit_log WHERE id = {id}",
    "DELETE FROM audit_log",
])
def test_the_database_refuses_to_change_or_remove_entries(city: City, statement: str) -> None:
    _record(city, 3)
    first = _ids(city)[0]
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), city.db.engine.begin() as conn:
        conn.exec_driver_sql(statement.format(id=first))
    assert len(_ids(city)) == 3
    assert city.db.read_sync(verify_chain).intact


def test_truncate_is_refused_on_postgresql(city: City) -> None:
    if city.backend != "postgres":
        pytest.skip("SQLite has no TRUNCATE")
    _record(city, 2)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), city.db.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE audit_log")
    assert len(_ids(city)) == 2


def test_a_clean_log_verifies(city: City, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    _record(city, 5)
    assert _verify(city, monkeypatch) == 0
    out = capsys.readouterr().out
    assert "audit log intact: 5 entries" in out and "审计日志完整" in out
    found = city.db.read_sync(verify_chain)
    assert found.checked == 5 and found.last_id == _ids(city)[-1] and found.last_hash in out


def test_an_empty_log_verifies(city: City, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert _verify(city, monkeypatch) == 0
    assert "审计日志为空" in capsys.readouterr().out


@pytest.mark.parametrize(("change", "named"), [
    # A field rewritten: that entry no longer matches its hash.
    ("UPDATE audit_log SET actor = 'user:99' WHERE id = {third}", "third"),
    # The time moved back a second.
    ("UPDATE audit_log SET at = {second_earlier} WHERE id = {third}", "third"),
    # Rewritten with its hash recomputed (here: taken from elsewhere): the next entry no longer follows.
    ("UPDATE audit_log SET entry_hash = (SELECT entry_hash FROM audit_log WHERE id = {first}) WHERE id = {third}",
     "third"),
    # Removed: the entry after the gap no longer follows the one before it.
    ("DELETE FROM audit_log WHERE id = {third}", "fourth"),
])
def test_verify_names_the_first_entry_changed_around_the_triggers(
        city: City, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        change: str, named: str) -> None:
    _record(city, 5)
    ids = _ids(city)
    where = {"first": ids[0], "third": ids[2], "fourth": ids[3]}
    earlier = "at - interval '1 second'" if city.backend == "postgres" else "datetime(at, '-1 second')"
    _as_attacker(city, change.format(second_earlier=earlier, **where))

    assert _verify(city, monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"audit log broken at entry {where[named]} " in err and f"审计日志在第 {where[named]} 条处断裂" in err
    assert city.db.read_sync(verify_chain).broken_id == where[named]


def test_group_committed_writes_with_failures_keep_one_chain(sqlite_city: City) -> None:
    """SQLite's writer runs jobs in one transaction, re-running them one savepoint each when one fails:
    an entry of a job rolled back must not stay in anyone's chain."""
    def job(conn: sa.Connection, n: int) -> None:
        record_audit(conn, at=SEED_TIME, actor="t", action="write", target=str(n))
        if n % 5 == 2:
            raise ValidationFailed("refused")

    async def run() -> None:
        await asyncio.gather(*(sqlite_city.db.write(job, n) for n in range(60)), return_exceptions=True)

    asyncio.run(run())
    found = sqlite_city.db.read_sync(verify_chain)
    assert found.intact and found.checked == 48


def test_concurrent_writers_on_postgresql_keep_one_chain(city: City) -> None:
    """Writers that each read the last entry, append and commit a little later: without taking the chain in
    turn, two would read the same last entry and fork it."""
    if city.backend != "postgres":
        pytest.skip("on SQLite a writer holds the database's only write lock")
    writers, each = 6, 4
    start = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        def slow(conn: sa.Connection) -> None:
            record_audit(conn, at=SEED_TIME, actor=f"writer:{n}", action="write", target="x")
            time.sleep(0.02)  # the rest of the writer's transaction

        try:
            start.wait()
            for _ in range(each):
                city.db.write_sync(slow)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    found = city.db.read_sync(verify_chain)
    assert found.intact and found.checked == writers * each


def test_the_migration_chains_entries_written_before_it(empty_database_url: str) -> None:
    db = Database(empty_database_url, pool_size=1)
    try:
        with db.engine.begin() as conn:
            cfg = alembic_config(empty_database_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "8a7489ae683a")  # identity before entries were chained
            legacy = sa.table("audit_log", sa.column("at", UTCDateTime()), sa.column("actor"), sa.column("action"),
                              sa.column("target"), sa.column("outcome"), sa.column("detail", sa.JSON))
            conn.execute(legacy.insert(), [
                {"at": SEED_TIME + timedelta(hours=n), "actor": "user:1", "action": "case.close",
                 "target": f"case:{n}", "outcome": "ok", "detail": {"reason": "已处理"} if n else None}
                for n in range(3)])
        upgrade(db.engine)
        found = db.read_sync(verify_chain)
        assert found.intact and found.checked == 3 and found.last_hash != GENESIS
    finally:
        db.close()
