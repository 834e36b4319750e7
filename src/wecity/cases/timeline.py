"""The case timeline: every event, in order, with who, when, what, why and from which channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.models import timeline
from wecity.core.db import inserted_id


def add_event(conn: Connection, case_id: int, *, at: datetime, event: str, actor: str, channel: str,
              actor_name: str | None = None, from_status: str | None = None, to_status: str | None = None,
              department_id: int | None = None, note: str | None = None, reason: str | None = None,
              public: bool = True, media_id: str | None = None, detail: dict[str, Any] | None = None) -> int:
    return inserted_id(conn.execute(timeline.insert().values(
        case_id=case_id, at=at, event=event, actor=actor, actor_name=actor_name, channel=channel,
        from_status=from_status, to_status=to_status, department_id=department_id, note=note, reason=reason,
        public=public, media_id=media_id, detail=detail)))


def add_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several events with one statement; each row has add_event's fields (case_id, at, event, ...)."""
    if rows:
        conn.execute(timeline.insert(), [{**_EVENT_DEFAULTS, **row} for row in rows])


_EVENT_DEFAULTS: dict[str, Any] = {
    "actor_name": None, "from_status": None, "to_status": None, "department_id": None, "note": None,
    "reason": None, "public": True, "media_id": None, "detail": None,
}


def case_events(conn: Connection, case_id: int, *, public_only: bool = False) -> list[dict[str, Any]]:
    query = sa.select(timeline).where(timeline.c.case_id == case_id).order_by(timeline.c.at, timeline.c.id)
    if public_only:
        query = query.where(timeline.c.public.is_(True))
    return [dict(r._mapping) for r in conn.execute(query)]
