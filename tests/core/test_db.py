"""The data access layer: group commit is durable and isolates a failing job."""

import asyncio

import pytest
import sqlalchemy as sa

from wecity.core.errors import ValidationFailed
from wecity.identity.models import audit_log
from wecity.identity.service import record_audit

from ..conftest import SEED_TIME, City


def _audit(conn: sa.Connection, n: int) -> int:
    if n % 7 == 3:
        record_audit(conn, at=SEED_TIME, actor="t", action="fail", target=str(n))
        raise ValidationFailed(f"job {n} refused")
    record_audit(conn, at=SEED_TIME, actor="t", action="write", target=str(n))
    return n


def _count(conn: sa.Connection, action: str) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.action == action)).scalar_one()


def test_concurrent_writes_are_all_committed_and_failures_roll_back_alone(city: City) -> None:
    async def run() -> list[object]:
        return await asyncio.gather(*(city.db.write(_audit, n) for n in range(200)), return_exceptions=True)

    results = asyncio.run(run())
    failed = [r for r in results if isinstance(r, ValidationFailed)]
    assert len(failed) == len([n for n in range(200) if n % 7 == 3])
    assert sorted(r for r in results if isinstance(r, int)) == [n for n in range(200) if n % 7 != 3]
    # A fresh connection sees every successful write and none of the refused ones.
    assert city.db.read_sync(_count, "write") == 200 - len(failed)
    assert city.db.read_sync(_count, "fail") == 0


def test_single_failing_write_leaves_nothing_behind(city: City) -> None:
    with pytest.raises(ValidationFailed):
        asyncio.run(city.db.write(_audit, 3))
    assert city.db.read_sync(_count, "fail") == 0


def test_sqlite_runs_in_wal_mode(sqlite_city: City) -> None:
    with sqlite_city.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
