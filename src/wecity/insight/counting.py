"""Which events of a case count where: the definitions every figure of the operations centre rests on.

One case's events, in order, give counter increments, each on the local day the event happened and under
the case's district, intake channel, and its department and category *as they were at that event*:

- received: `submitted` (a case opened; a report that joined an open case opens none);
- acknowledged, and acknowledged_on_time: `acknowledged` with no `ack_escalated` since the clock last started
  (a dispatch, transfer or reopening restarts it) — the SLA clock's own verdict;
- resolved (办结), and resolved_on_time: `resolved` with no `resolve_escalated` since the clock last started;
- closed (结案): `closed`;
- rated, stars (their sum), satisfied (4 or 5 stars), solved (解决: 3 stars or more and not tagged "not fixed"
  / "没解决"): `rated`;
- returned (退回): `returned`; recategorised (改类): `recategorised`; reopened (重办): `reopened`;
  escalated (超时升级): `ack_escalated` and `resolve_escalated`; merged (并单, a duplicate folded into another
  case): `merged`; verification_failed (核查不通过): `verification_failed`; urged (市民催办): `citizen_urged`.

A case's category at an event is the one it had then: where it was re-filed later, the first later
`recategorised` says what it was (`from`). Its department is the event's own where the engine wrote one;
events before the first dispatch (the submission) count under the department it was first sent to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

NOT_FIXED_TAGS = frozenset({"not_fixed", "没解决", "未解决"})
CLOCK_STARTS = frozenset({"dispatched", "transferred", "reopened"})
SIMPLE = {"submitted": "received", "closed": "closed", "returned": "returned", "recategorised": "recategorised",
          "reopened": "reopened", "ack_escalated": "escalated", "resolve_escalated": "escalated",
          "merged": "merged", "verification_failed": "verification_failed", "citizen_urged": "urged"}


@dataclass(frozen=True, slots=True)
class Key:
    """Where a count goes: the local day and the case's district, department, category and channel."""

    day: date
    area_id: int
    department_id: int
    category_code: str
    channel: str


@dataclass(frozen=True, slots=True)
class CaseFacts:
    """What the counting needs of a case besides its events: as it is now."""

    id: int
    category_code: str
    department_id: int | None
    area_id: int | None
    channel: str


def increments(event: Any, *, ack_late: bool, resolve_late: bool) -> dict[str, int]:
    """The counters one event adds to (empty for events no figure counts)."""
    name = event.event
    if name in SIMPLE:
        return {SIMPLE[name]: 1}
    if name == "acknowledged":
        return {"acknowledged": 1, "acknowledged_on_time": int(not ack_late)}
    if name == "resolved":
        return {"resolved": 1, "resolved_on_time": int(not resolve_late)}
    if name == "rated":
        detail = event.detail or {}
        stars = int(detail.get("stars") or 0)
        tags = set(detail.get("tags") or [])
        return {"rated": 1, "stars": stars, "satisfied": int(stars >= 4),
                "solved": int(stars >= 3 and not (tags & NOT_FIXED_TAGS))}
    return {}


def count_case(case: CaseFacts, events: Iterable[Any], zone: ZoneInfo) -> Iterator[tuple[int, Key, dict[str, int]]]:
    """(event id, where it counts, what it adds) for each counted event of one case; `events` all of the
    case's events in id order (each with id, at, event, department_id, detail)."""
    ordered = list(events)
    # The category before each event: walk back from the current one through the re-filings.
    category_at: list[str] = [case.category_code] * len(ordered)
    current = case.category_code
    for i in range(len(ordered) - 1, -1, -1):
        if ordered[i].event == "recategorised":  # counted under the category it left
            current = (ordered[i].detail or {}).get("from") or current
        category_at[i] = current
    first_department = next((e.department_id for e in ordered if e.event == "dispatched" and e.department_id),
                            case.department_id)
    department = first_department
    ack_late = resolve_late = False
    for i, e in enumerate(ordered):
        if e.event in CLOCK_STARTS:
            ack_late = resolve_late = False
        if e.department_id is not None:
            department = e.department_id
        adds = increments(e, ack_late=ack_late, resolve_late=resolve_late)
        if e.event == "ack_escalated":
            ack_late = True
        elif e.event == "resolve_escalated":
            resolve_late = True
        if adds:
            yield e.id, Key(local_day(e.at, zone), case.area_id or 0, department or 0, category_at[i], case.channel), adds


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()
