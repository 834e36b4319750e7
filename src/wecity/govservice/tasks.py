"""Background work of digital government: the working-day clock check (80% warning, escalation)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.engine import Connection

from wecity.core.context import AppContext
from wecity.geo.service import city_calendar
from wecity.govservice.clock import local_day
from wecity.govservice.models import applications
from wecity.govservice.queries import clock, running_clocks
from wecity.govservice.steps import log_event, tell_department

log = logging.getLogger(__name__)


def check_clocks(conn: Connection, now: datetime) -> int:
    """Warn the department once at 80% of the allowed working days; escalate to its supervisors (and
    say so on the timeline) once the due date has passed. Returns how many notices were made."""
    calendar = city_calendar(conn)
    today = local_day(now, calendar)
    fired = 0
    for row in running_clocks(conn):
        reading = clock(row, calendar, today)
        if reading is None:
            continue
        if reading.overdue and row.escalated_at is None:
            conn.execute(applications.update().where(applications.c.id == row.id).values(
                escalated_at=now, warned_at=row.warned_at or now))
            log_event(conn, row.id, "escalated", actor="system", now=now, department_code=row.department_code,
                      detail={"due_on": row.due_on.isoformat(), "used": reading.used, "allowed": reading.allowed})
            tell_department(conn, row.department_code, row.id, "overdue", now=now, role="supervisor")
            fired += 1
        elif reading.warning and row.warned_at is None:
            conn.execute(applications.update().where(applications.c.id == row.id).values(warned_at=now))
            log_event(conn, row.id, "warned", actor="system", now=now, department_code=row.department_code,
                      detail={"used": reading.used, "allowed": reading.allowed})
            tell_department(conn, row.department_code, row.id, "warning", now=now)
            fired += 1
    return fired


async def clock_check(ctx: AppContext) -> None:
    fired = await ctx.db.write(check_clocks, ctx.clock.now())
    if fired:
        log.info("application clock notices", extra={"fields": {"notices": fired}})
