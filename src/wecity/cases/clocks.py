"""The SLA clock check: warnings at 80% of a clock, escalation (催办) when it runs out.

Each clock event fires once per dispatch (flags on the case, reset when the case is re-dispatched),
is written to the timeline, and tells the department — and, for an escalation, its supervisors and the
dispatch centre — through the outbox, all in one transaction per case.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases import notifications
from wecity.cases.choices import ACK_CLOCK_STATES, RESOLVE_CLOCK_STATES, Channel
from wecity.cases.models import cases
from wecity.cases.timeline import add_event

WAITING_FOR_ACK = ACK_CLOCK_STATES
# The resolve clock starts at dispatch: a case not even acknowledged by its deadline is escalated too.
WAITING_FOR_FIX = (*ACK_CLOCK_STATES, *RESOLVE_CLOCK_STATES)

# event -> (flag column, time column, states in which the clock runs)
CLOCK_EVENTS = {
    "ack_warning": ("ack_warned", "ack_warn_at", WAITING_FOR_ACK),
    "ack_escalated": ("ack_escalated", "ack_due_at", WAITING_FOR_ACK),
    "resolve_warning": ("resolve_warned", "resolve_warn_at", WAITING_FOR_FIX),
    "resolve_escalated": ("resolve_escalated", "resolve_due_at", WAITING_FOR_FIX),
}

_NOTES = {
    "ack_warning": "签收时限已过 80% / 80% of the acknowledge time has passed",
    "ack_escalated": "超时未签收，已催办 / not acknowledged in time: escalated",
    "resolve_warning": "办结时限已过 80% / 80% of the resolve time has passed",
    "resolve_escalated": "超时未办结，已催办 / not resolved in time: escalated",
}


def check_clocks(conn: Connection, now: datetime, *, limit: int = 500) -> list[tuple[int, str]]:
    """Fire every clock event that is due; return (case id, event) for each one fired."""
    fired: list[tuple[int, str]] = []
    for event, (flag, at, states) in CLOCK_EVENTS.items():
        flag_col, at_col = cases.c[flag], cases.c[at]
        due = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.department_id).where(
            cases.c.status.in_([s.value for s in states]), flag_col.is_(False), at_col.is_not(None), at_col <= now,
        ).order_by(at_col).limit(limit)).all()
        for row in due:
            # Guarded update: a concurrent runner or state change makes this a no-op.
            changed = conn.execute(cases.update().where(
                cases.c.id == row.id, flag_col.is_(False), cases.c.status == row.status,
            ).values({flag: True})).rowcount
            if changed != 1:
                continue
            add_event(conn, row.id, at=now, event=event, actor="system", actor_name="SLA",
                      channel=Channel.SYSTEM, department_id=row.department_id, note=_NOTES[event], public=False)
            notifications.clock_event(conn, case_id=row.id, event=event, now=now)
            fired.append((row.id, event))
    return fired
