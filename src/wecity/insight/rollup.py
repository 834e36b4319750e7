"""The daily rollup kept from the case engine's events: the runner's consumer and the full rebuild.

The consumer (`consume`, the runner's `insight.rollup` every few seconds) reads the events after its
cursor, loads each touched case's facts and earlier events (a case's department and category at an event
depend on its history: wecity.insight.counting), and adds the increments of the new events to
`insight_daily` with one upsert per key. It never scans all cases: the work is proportional to the new
events. On PostgreSQL an event id can become visible after a higher one (two transactions committing in
the other order), so the consumer stops at a gap in the ids and waits up to a minute for it to fill
(`wecity.cases.event_feed.in_order`, the rule every reader of the events keeps); a gap still there is an
insert that rolled back. `rebuild` recomputes everything from the events (`wecity
insight rebuild`), for a new install or after a change of definitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.event_feed import in_order
from wecity.cases.models import cases, timeline
from wecity.geo.service import city_timezone
from wecity.insight.counting import CaseFacts, Key, count_case
from wecity.insight.models import COUNTERS, insight_changes, insight_cursor, insight_daily

CURSOR = "case_events"
BATCH = 5_000  # events a run reads at most
KEEP_CHANGES = 10_000  # a process that has missed more reads the rollup whole
_EVENT_COLUMNS = (timeline.c.id, timeline.c.case_id, timeline.c.at, timeline.c.event, timeline.c.department_id,
                  timeline.c.detail)


def _facts(conn: Connection, case_ids: list[int]) -> dict[int, CaseFacts]:
    return {r.id: CaseFacts(r.id, r.category_code, r.department_id, r.area_id, r.channel or r.source)
            for r in conn.execute(sa.select(cases.c.id, cases.c.category_code, cases.c.department_id,
                                            cases.c.area_id, cases.c.channel, cases.c.source)
                                  .where(cases.c.id.in_(case_ids)))}


def tally(conn: Connection, case_ids: list[int], counted: Callable[[int], bool]) -> dict[Key, dict[str, int]]:
    """The counts of the cases' events whose id `counted` accepts. Every event of the cases is read, later
    ones too: a case's category at an event is known from the re-filings after it."""
    zone = city_timezone(conn)
    totals: dict[Key, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for chunk in (case_ids[i:i + 500] for i in range(0, len(case_ids), 500)):
        facts = _facts(conn, chunk)
        query = sa.select(*_EVENT_COLUMNS).where(timeline.c.case_id.in_(chunk)).order_by(timeline.c.case_id,
                                                                                          timeline.c.id)
        by_case: dict[int, list[Any]] = defaultdict(list)
        for e in conn.execute(query):
            by_case[e.case_id].append(e)
        for case_id, events in by_case.items():
            if case_id not in facts:
                continue
            for event_id, key, adds in count_case(facts[case_id], events, zone):
                if counted(event_id):
                    row = totals[key]
                    for name, n in adds.items():
                        row[name] += n
    return totals


def _add(conn: Connection, totals: dict[Key, dict[str, int]]) -> None:
    """Add the counts to the rollup, one upsert per key (SQLite and PostgreSQL spell it alike), and note
    the days touched for the processes' copies (wecity.insight.frame)."""
    if not totals:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    rows = [{"day": k.day, "area_id": k.area_id, "department_id": k.department_id, "category_code": k.category_code,
             "channel": k.channel, **v} for k, v in totals.items()]
    statement = insert(insight_daily)
    statement = statement.on_conflict_do_update(
        index_elements=["day", "area_id", "department_id", "category_code", "channel"],
        set_={name: getattr(insight_daily.c, name) + getattr(statement.excluded, name) for name in COUNTERS})
    for chunk in (rows[i:i + 5_000] for i in range(0, len(rows), 5_000)):
        conn.execute(statement, chunk)
    conn.execute(insight_changes.insert(), [{"day": d} for d in sorted({k.day for k in totals})])
    latest = conn.execute(sa.select(sa.func.max(insight_changes.c.seq))).scalar() or 0
    conn.execute(insight_changes.delete().where(insight_changes.c.seq <= latest - KEEP_CHANGES))


def _cursor(conn: Connection, now: datetime) -> Any:
    row = conn.execute(sa.select(insight_cursor).where(insight_cursor.c.name == CURSOR)).first()
    if row is None:
        conn.execute(insight_cursor.insert().values(name=CURSOR, position=0, updated_at=now))
        row = conn.execute(sa.select(insight_cursor).where(insight_cursor.c.name == CURSOR)).one()
    return row


def consume(conn: Connection, *, now: datetime, batch: int = BATCH) -> int:
    """Count the events after the cursor into the rollup; returns how many were counted."""
    cursor = _cursor(conn, now)
    ids = [r[0] for r in conn.execute(sa.select(timeline.c.id).where(timeline.c.id > cursor.position)
                                      .order_by(timeline.c.id).limit(batch))]
    if not ids:
        return 0
    position, gap_since = in_order(ids, cursor.position, cursor.gap_since, now)
    taken = [i for i in ids if i <= position]
    if taken:
        case_ids = sorted({r[0] for r in conn.execute(sa.select(timeline.c.case_id).where(
            timeline.c.id.between(taken[0], taken[-1])))})
        _add(conn, tally(conn, case_ids, set(taken).__contains__))
    conn.execute(insight_cursor.update().where(insight_cursor.c.name == CURSOR).values(
        position=position, gap_since=gap_since, updated_at=now))
    return len(taken)


def rebuild(conn: Connection, *, now: datetime) -> int:
    """Recompute the whole rollup from the events; returns the number of events it covers."""
    conn.execute(insight_daily.delete())
    last = conn.execute(sa.select(sa.func.max(timeline.c.id))).scalar() or 0
    case_ids = [r[0] for r in conn.execute(sa.select(cases.c.id).order_by(cases.c.id))]
    _add(conn, tally(conn, case_ids, lambda event_id: event_id <= last))
    _cursor(conn, now)
    conn.execute(insight_changes.delete())
    conn.execute(insight_cursor.update().where(insight_cursor.c.name == CURSOR).values(
        position=last, gap_since=None, updated_at=now, generation=insight_cursor.c.generation + 1))
    return int(last)


def as_of(conn: Connection) -> datetime | None:
    """When the rollup last caught up (None before its first run)."""
    return conn.execute(sa.select(insight_cursor.c.updated_at).where(insight_cursor.c.name == CURSOR)).scalar()
