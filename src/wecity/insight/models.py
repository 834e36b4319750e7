"""Tables of the operations centre: the daily rollups of the case engine's events, and where their consumer is."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "insight"}

# What the events of one local day added up to. Every counter counts events of that day
# (wecity.insight.counting says which); a rate over a period is a sum of one counter over another.
COUNTERS = ("received", "acknowledged", "acknowledged_on_time", "resolved", "resolved_on_time", "closed", "rated",
            "stars", "satisfied", "solved", "returned", "recategorised", "reopened", "escalated", "merged",
            "verification_failed")
DIMENSIONS = ("area_id", "department_id", "category_code", "channel")


def _counters() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer, nullable=False, default=0, server_default="0") for name in COUNTERS]


# Three rollups of the same counts, kept together by the runner (wecity.insight.rollup) and rebuilt by
# `wecity insight rebuild`: a figure reads the smallest one that holds its filter. At a million cases a
# year the full one has some 250,000 rows; the city's has 365 and the places' a few tens of thousands, so a
# year's figures for the whole city or a district do not sum a quarter of a million rows.
# By day, district, department, category and intake channel (0 where a case has no district or
# department yet): every filter.
insight_daily = sa.Table(
    "insight_daily", metadata,
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("area_id", sa.Integer, nullable=False),
    sa.Column("department_id", sa.Integer, nullable=False),
    sa.Column("category_code", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    *_counters(),
    sa.PrimaryKeyConstraint("day", "area_id", "department_id", "category_code", "channel"),
    # A category's or a channel's figures, and a department of a district by category, without reading
    # the other rows of the period.
    sa.Index("ix_insight_daily_category", "category_code", "day"),
    sa.Index("ix_insight_daily_channel", "channel", "day"),
    sa.Index("ix_insight_daily_place", "area_id", "department_id", "day"),
    info=INFO,
)

# By day, district and department: the whole city by district, a district by department.
insight_daily_places = sa.Table(
    "insight_daily_places", metadata,
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("area_id", sa.Integer, nullable=False),
    sa.Column("department_id", sa.Integer, nullable=False),
    *_counters(),
    sa.PrimaryKeyConstraint("day", "area_id", "department_id"),
    sa.Index("ix_insight_daily_places_area", "area_id", "day"),
    info=INFO,
)

# By day: the whole city.
insight_daily_city = sa.Table(
    "insight_daily_city", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    *_counters(),
    info=INFO,
)

# Each rollup with the dimensions it keeps.
ROLLUPS = ((insight_daily, DIMENSIONS), (insight_daily_places, ("area_id", "department_id")),
           (insight_daily_city, ()))

# The rollup's consumer: the last case event counted, and since when it has waited at a gap in the event
# ids (on PostgreSQL an id can commit after a higher one; a gap older than a minute is a rolled-back insert).
insight_cursor = sa.Table(
    "insight_cursor", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("gap_since", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    info=INFO,
)
