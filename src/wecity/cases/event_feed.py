"""The case events in the order they were written, for readers that keep something in step with them after
the fact (the cases' NGSI-LD entities), each with its own cursor.

Ids are taken in order without skipping: on PostgreSQL a transaction can commit an event id after a higher
one, so at a gap the reader waits (up to GAP_WAIT) for the missing id before taking it for a rolled-back
insert and going on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.models import case_event_cursors, timeline

GAP_WAIT = timedelta(minutes=1)


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
    taken: list[Any] = []
    expected, gap_since = cursor.position + 1, None
    for row in rows:
        if row.id != expected and not (cursor.gap_since is not None and now - cursor.gap_since >= GAP_WAIT):
            gap_since = cursor.gap_since or now
            break
        taken.append(row)
        expected = row.id + 1
    if rows:
        conn.execute(case_event_cursors.update().where(case_event_cursors.c.name == name).values(
            position=taken[-1].id if taken else cursor.position, gap_since=gap_since, updated_at=now))
    return taken
