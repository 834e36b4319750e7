"""The index behind "who used my data", derived from the audit log.

A reading through the data API writes, before it answers, one audit entry naming every record it
returned and one access row (wecity.datashare.access). Moments later the runner takes the access rows not
yet indexed, finds whom each of their records is about (a case's first reporter, an application's filer,
a certificate's holder: `sources.subjects`) and writes one `data_disclosures` row per record about a
person, under a keyed hash of their phone number. Kept off the request's path because a reading may
return ten thousand records; nothing is lost if the process stops in between, since the list is in the
audit log and the access row stays unindexed until its disclosures are written in the same transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.context import AppContext
from wecity.datashare import sources
from wecity.datashare.access import normal_phone, subject_key
from wecity.datashare.models import data_accesses, data_disclosures
from wecity.identity.models import audit_log

log = logging.getLogger(__name__)
BATCH = 20  # readings per transaction: up to 10,000 records each


def index_pending(conn: Connection, *, secret_key: str, now: datetime, batch: int = BATCH) -> int:
    """Index the readings not indexed yet (oldest first, `batch` of them); how many were indexed."""
    pending = conn.execute(sa.select(data_accesses.c.id, audit_log.c.detail)
                           .join(audit_log, audit_log.c.id == data_accesses.c.audit_id)
                           .where(data_accesses.c.indexed_at.is_(None))
                           .order_by(data_accesses.c.id).limit(batch)).all()
    for access_id, detail in pending:
        records = [str(r) for r in (detail or {}).get("records") or []]
        keys: dict[str, str] = {}
        rows = []
        for record, phone in sources.subjects(conn, records).items():
            normal = normal_phone(phone)
            if not normal:
                continue
            key = keys.get(normal) or keys.setdefault(normal, subject_key(secret_key, normal))
            rows.append((access_id, key, record))
        if rows:
            # Through the driver: a reading may name ten thousand records.
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            conn.exec_driver_sql(f"INSERT INTO {data_disclosures.name} (access_id, subject, record) "
                                 f"VALUES ({mark}, {mark}, {mark})", rows)
        conn.execute(data_accesses.update().where(data_accesses.c.id == access_id).values(indexed_at=now))
    return len(pending)


async def index_task(ctx: AppContext) -> None:
    indexed = await ctx.db.write(lambda c: index_pending(c, secret_key=ctx.settings.secret_key, now=ctx.clock.now()))
    if indexed:
        log.info("data readings indexed for the people concerned", extra={"fields": {"readings": indexed}})
