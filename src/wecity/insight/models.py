"""Tables of the operations centre: the daily rollup of the case engine's events, and where its consumer is."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "insight"}

# What the events of one local day added up to. Every counter counts events of that day
# (wecity.insight.counting says which); a rate over a period is a sum of one counter over another.
COUNTERS = ("received", "acknowledged", "acknowledged_on_time", "resolved", "resolved_on_time", "closed", "rated",
            "stars", "satisfied", "solved", "returned", "recategorised", "reopened", "escalated", "merged",
            "verification_failed", "urged")
DIMENSIONS = ("area_id", "department_id", "category_code", "channel")


def _counters() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer, nullable=False, default=0, server_default="0") for name in COUNTERS]


# By day, district, department, category and intake channel (0 where a case has no district or
# department yet). Kept by the runner (wecity.insight.rollup), rebuilt by `wecity insight rebuild`, and read
# by each process into memory as columns (wecity.insight.frame): at a million cases a year it has some
# 250,000 rows, too many to sum in SQL for every figure.
insight_daily = sa.Table(
    "insight_daily", metadata,
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("area_id", sa.Integer, nullable=False),
    sa.Column("department_id", sa.Integer, nullable=False),
    sa.Column("category_code", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    *_counters(),
    sa.PrimaryKeyConstraint("day", "area_id", "department_id", "category_code", "channel"),
    info=INFO,
)

# The days each run of the consumer added to, in order: what a process's copy of the rollup reads again.
insight_changes = sa.Table(
    "insight_changes", metadata,
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("day", sa.Date, nullable=False),
    info=INFO,
)

# The rollup's consumer: the last case event counted, and since when it has waited at a gap in the event
# ids (on PostgreSQL an id can commit after a higher one; a gap older than a minute is a rolled-back insert).
insight_cursor = sa.Table(
    "insight_cursor", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("gap_since", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # Bumped by a rebuild: every process reads the rollup whole again.
    sa.Column("generation", sa.Integer, nullable=False, default=0, server_default="0"),
    info=INFO,
)
