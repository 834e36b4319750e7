"""Tables of the AI platform: the versions of the category model with their model cards, history imported
for training, and duplicate reports found by text and photo."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "ai"}

# Every model trained, kept: its figures on the slice held back from training, the serving model's figures
# on the same slice at the time, and whether it replaced it. The model itself is a file under the var
# directory (`file`, relative to it), written by the platform and read only by it.
ai_models = sa.Table(
    "ai_models", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),          # category
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("trained_at", UTCDateTime, nullable=False),
    sa.Column("trained_by", sa.String(200), nullable=False),   # the runner's schedule, or who asked
    sa.Column("rows_train", sa.Integer, nullable=False),
    sa.Column("rows_holdout", sa.Integer, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),              # the categories it knows
    sa.Column("metrics", sa.JSON, nullable=False),             # top1, top3, macro_f1, per category, on the holdout
    sa.Column("serving_metrics", sa.JSON),                     # the serving model's, on the same holdout
    sa.Column("state", sa.String(12), nullable=False),         # serving | retired | rejected
    sa.Column("file", sa.String(300), nullable=False),
    sa.UniqueConstraint("kind", "version"),
    info=INFO,
)

# Past cases a city brings from its earlier system (`wecity ai import-history`), so that it starts with a
# model: training rows only — they are not cases, and count in no figure of the operations page.
ai_history = sa.Table(
    "ai_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("category_code", sa.String(64), nullable=False, index=True),
    sa.Column("lat", sa.Float),
    sa.Column("long", sa.Float),
    sa.Column("at", UTCDateTime),
    sa.Column("source", sa.String(200), nullable=False),  # the file it came from
    sa.Column("imported_at", UTCDateTime, nullable=False),
    info=INFO,
)

# Duplicate reports the exact rule of intake (same category, within the merge radius and window) did not
# catch: a newer case and an older open one that may be the same problem, with the score and its parts.
# `state`: proposed (for a dispatcher to decide), merged (by the platform above the threshold, or by a
# dispatcher from the proposal) or dismissed (a dispatcher said they differ: never proposed again).
ai_duplicates = sa.Table(
    "ai_duplicates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, nullable=False, index=True),       # the newer case
    sa.Column("candidate_id", sa.Integer, nullable=False, index=True),  # the older open case it may repeat
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("text_similarity", sa.Float, nullable=False),
    sa.Column("photo_similarity", sa.Float),                            # none when either has no photo
    sa.Column("distance_m", sa.Float, nullable=False),
    sa.Column("same_category", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("found_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(200)),
    sa.UniqueConstraint("case_id", "candidate_id"),
    info=INFO,
)

# Where each of the platform's incremental jobs has got to (the last case id it looked at).
ai_cursors = sa.Table(
    "ai_cursors", metadata,
    sa.Column("name", sa.String(50), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    info=INFO,
)
