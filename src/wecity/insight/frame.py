"""The daily rollup held in memory as columns (NumPy), kept in step with the table as the runner adds to it.

At a million cases a year `insight_daily` has some 250,000 rows; summing a year of them in SQL takes
~170 ms on SQLite, more than a dashboard may spend on a whole answer. Held as arrays sorted by day, a
period is a slice, a filter a boolean mask and a breakdown a `bincount`: a figure costs a millisecond or
two. Each process keeps one `RollupFrame` (`frame_of`); before answering it asks the database what changed
since it last looked: the consumer records the days it touched (`insight_changes`), so only those days
are read again, and a rebuild starts a new generation, read whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.insight.models import COUNTERS, insight_changes, insight_cursor, insight_daily

_COLUMNS = (insight_daily.c.day, insight_daily.c.area_id, insight_daily.c.department_id,
            insight_daily.c.category_code, insight_daily.c.channel, *(getattr(insight_daily.c, c) for c in COUNTERS))
COUNTER_INDEX = {name: i for i, name in enumerate(COUNTERS)}


@dataclass
class Frame:
    """The rollup's rows as columns, sorted by day (ordinal). Text dimensions are codes into `labels`."""

    day: np.ndarray
    area: np.ndarray
    department: np.ndarray
    category: np.ndarray
    channel: np.ndarray
    counts: np.ndarray                 # rows × COUNTERS
    categories: list[str]
    channels: list[str]

    @classmethod
    def from_rows(cls, rows: list[Any], categories: list[str] | None = None,
                  channels: list[str] | None = None) -> Frame:
        """A frame of rows (day, area, department, category, channel, *counters); codes for categories and
        channels extend the lists given."""
        rows = sorted(rows, key=lambda r: _ordinal(r[0]))
        categories = list(categories or [])
        channels = list(channels or [])
        categories += sorted({r[3] for r in rows} - set(categories))
        channels += sorted({r[4] for r in rows} - set(channels))
        cat_code = {c: i for i, c in enumerate(categories)}
        chan_code = {c: i for i, c in enumerate(channels)}
        n = len(rows)
        return cls(
            day=np.fromiter((_ordinal(r[0]) for r in rows), np.int32, n),
            area=np.fromiter((r[1] for r in rows), np.int32, n),
            department=np.fromiter((r[2] for r in rows), np.int32, n),
            category=np.fromiter((cat_code[r[3]] for r in rows), np.int32, n),
            channel=np.fromiter((chan_code[r[4]] for r in rows), np.int32, n),
            counts=np.array([r[5:] for r in rows], dtype=np.int64).reshape(n, len(COUNTERS)),
            categories=categories, channels=channels)

    def with_days(self, days: list[date], rows: list[Any]) -> Frame:
        """This frame with the rows of `days` replaced by `rows` (those days as the table has them now)."""
        fresh = Frame.from_rows(rows, self.categories, self.channels)
        keep = ~np.isin(self.day, [d.toordinal() for d in days])
        order = np.argsort(np.concatenate([self.day[keep], fresh.day]), kind="stable")

        def joined(old: np.ndarray, new: np.ndarray) -> np.ndarray:
            return np.concatenate([old[keep], new])[order]

        return Frame(day=joined(self.day, fresh.day), area=joined(self.area, fresh.area),
                     department=joined(self.department, fresh.department),
                     category=joined(self.category, fresh.category), channel=joined(self.channel, fresh.channel),
                     counts=joined(self.counts, fresh.counts), categories=fresh.categories, channels=fresh.channels)

    def select(self, start: date, end: date, *, area: int | None = None, department: int | None = None,
               category: str | None = None, channel: str | None = None) -> tuple[slice, np.ndarray | None]:
        """The rows of a period (a slice: the rows are sorted by day) and, for the other filters, a mask
        over that slice (None when there is none)."""
        lo = int(np.searchsorted(self.day, start.toordinal(), "left"))
        hi = int(np.searchsorted(self.day, end.toordinal(), "right"))
        part = slice(lo, hi)
        mask: np.ndarray | None = None

        def narrow(values: np.ndarray, wanted: int) -> None:
            nonlocal mask
            hit = values[part] == wanted
            mask = hit if mask is None else mask & hit

        if area is not None:
            narrow(self.area, area)
        if department is not None:
            narrow(self.department, department)
        if category is not None:
            narrow(self.category, self.categories.index(category) if category in self.categories else -1)
        if channel is not None:
            narrow(self.channel, self.channels.index(channel) if channel in self.channels else -1)
        return part, mask

    def sums(self, part: slice, mask: np.ndarray | None) -> dict[str, int]:
        block = self.counts[part] if mask is None else self.counts[part][mask]
        totals = block.sum(axis=0) if len(block) else np.zeros(len(COUNTERS), np.int64)
        return {name: int(totals[i]) for i, name in enumerate(COUNTERS)}

    def grouped(self, part: slice, mask: np.ndarray | None, by: str) -> dict[Any, dict[str, int]]:
        """The sums per value of `by` (area, department or category) within the selection."""
        keys = {"area": self.area, "department": self.department, "category": self.category}[by][part]
        block = self.counts[part]
        if mask is not None:
            keys, block = keys[mask], block[mask]
        out: dict[Any, dict[str, int]] = {}
        if not len(keys):
            return out
        # The keys are small whole numbers (ids, category codes): one bincount per counter, no sorting.
        size = int(keys.max()) + 1
        columns = np.ascontiguousarray(block.T, dtype=np.float64)  # exact: counts stay far below 2**53
        totals = np.stack([np.bincount(keys, weights=columns[i], minlength=size) for i in range(len(COUNTERS))],
                          axis=1)
        present = np.flatnonzero(np.bincount(keys, minlength=size))
        for value in present:
            key = self.categories[int(value)] if by == "category" else int(value)
            out[key] = {name: int(round(totals[value, i])) for i, name in enumerate(COUNTERS)}
        return out


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _ordinal(value: Any) -> int:
    return _day(value).toordinal()


def load(conn: Connection, days: list[date] | None = None) -> list[Any]:
    query = sa.select(*_COLUMNS)
    if days is not None:
        query = query.where(insight_daily.c.day.in_(days))
    return [tuple(r) for r in conn.execute(query)]


class RollupFrame:
    """One process's copy of the rollup, brought up to date before each use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._generation: int | None = None
        self._seen = 0

    def current(self, conn: Connection) -> Frame:
        state = conn.execute(sa.select(insight_cursor.c.generation).where(insight_cursor.c.name == "case_events")
                             ).scalar()
        latest = conn.execute(sa.select(sa.func.max(insight_changes.c.seq))).scalar() or 0
        with self._lock:
            if self._frame is None or state != self._generation:
                self._frame = Frame.from_rows(load(conn))
                self._generation, self._seen = state, latest
            elif latest > self._seen:
                oldest = conn.execute(sa.select(sa.func.min(insight_changes.c.seq))).scalar() or 0
                if oldest > self._seen + 1:  # changes were pruned before this process saw them
                    self._frame = Frame.from_rows(load(conn))
                else:
                    days = sorted({_day(r[0]) for r in conn.execute(sa.select(insight_changes.c.day).where(
                        insight_changes.c.seq > self._seen))})
                    self._frame = self._frame.with_days(days, load(conn, days))
                self._seen = latest
            # latest < _seen with the same generation: this request's snapshot is older than one already
            # taken (another request read later and got the lock first); the frame stays, never goes back.
            return self._frame


def frame_of(ctx: Any) -> RollupFrame:
    """The app's copy of the rollup (one per process, made on first use)."""
    found = ctx.services.get("insight_frame")
    if found is None:
        found = ctx.services["insight_frame"] = RollupFrame()
    return found  # type: ignore[no-any-return]
