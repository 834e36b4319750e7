"""The case events in the order they were written, for readers that keep something in step with them after
the fact (the cases' NGSI-LD entities), each with its own cursor.

Ids are taken in order without skipping: on PostgreSQL a transaction can commit an event id after a higher
one, so at a gap the reader waits (up to GAP_WAIT) for the missing id before taking it for a rolled-back
insert and going on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.models import case_event_cursors, timeline

GAP_WAIT = timedelta(minutes=1)


def in_order(ids: Sequence[int], position: int, gap_since: datetime | None, now: datetime
             ) -> tuple[int, datetime | None]:
    """How far a reader at `position` may go along the event `ids` that follow it (ascending): up to the
    first gap, unless that gap has stood since `gap_since` for GAP_WAIT. Returns the new position (the last
    id taken, or `position`) and when the gap it stops at was first seen (None when it stopped at none).
    Only the gap that has waited is passed: a later gap in the same ids is seen now, and waited for."""
    expected, last = position + 1, position
    # `gap_since` is when the gap at the reader's position was first seen: only that gap has waited.
    waited = gap_since is not None and now - gap_since >= GAP_WAIT
    for event_id in ids:
        if event_id != expected:
            at_cursor = last == position
            if not (waited and at_cursor):
                return last, (gap_since or now) if at_cursor else now
        last, expected = event_id, event_id + 1
    return last, None


def take(conn: Connection, name: str, *, now: datetime, batch: int) -> list[Any]:
    """The next events after the cursor `name` (id, case_id, event, to_status, at), oldest first, at most
    `batch`, stopping at a gap younger than GAP_WAIT; the cursor moves past them in the caller's transaction."""
    cursor = conn.execute(sa.select(case_event_cursors).where(case_event_cursors.c.name == name)).first()
    if cursor is None:
        conn.execute(case_event_cursors.insert().values(name=name, position=0, updated_at=now))
        cursor = conn.execute(sa.select(case_event_cursors).where(case_event_cursors.c.name == name)).one()
    rows = conn.execute(sa.select(timeline.c.id, timeline.c.case_id, timeline.c.event, timeline.c.to_status,
                                  timeline.c.at)
                        .where(timeline.c.id > cursor.position).order_by(timeline.c.id).limit(batch)).all()
    position, gap_since = in_order([r.id for r in rows], cursor.position, cursor.gap_since, now)
    if rows:
        conn.execute(case_event_cursors.update().where(case_event_cursors.c.name == name).values(
            position=position, gap_since=gap_since, updated_at=now))
    return [r for r in rows if r.id <= position]
