"""Tables of the base layer: the outbox, the job queue, periodic task state, the work calendar and the
shared rate-limit counts."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "core"}

# Side effects waiting to leave the platform (webhooks, e-mail, in-app notices). A row is written in the
# same transaction as the state change it reports, so it exists exactly when that change committed.
# Runners claim rows by setting `claimed_until` (a lease): a runner that dies loses its claims when the
# lease runs out, and another runner takes them.
outbox_messages = sa.Table(
    "outbox_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("status", sa.String(12), nullable=False, default="pending"),  # pending, delivered, dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("delivered_at", UTCDateTime),
    # Callers that may enqueue the same notice twice (a retried request) name it; the second is ignored.
    sa.Column("dedupe_key", sa.String(200), unique=True),
    sa.Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    info=INFO,
)

# Background jobs queued by the domains (`wecity.core.jobs`), claimed like outbox messages.
jobs = sa.Table(
    "jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("args", sa.JSON, nullable=False),
    sa.Column("status", sa.String(12), nullable=False, default="queued"),  # queued, done, dead
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("run_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("dedupe_key", sa.String(200), unique=True),
    sa.Index("ix_jobs_due", "status", "run_at"),
    info=INFO,
)

# When each periodic task last ran and is next due; shared by every runner so that a task registered
# to run every minute runs once a minute in the whole installation, not once per runner.
periodic_tasks = sa.Table(
    "periodic_tasks", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("next_run_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("last_run_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    info=INFO,
)

# Exceptions to the Monday-to-Friday week: public holidays (放假) and make-up working days (调休上班).
# Seeded from wecity/core/data/cn-holidays.json; the city edits it when the State Council publishes
# the next year's arrangement.
calendar_days = sa.Table(
    "calendar_days", metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),  # holiday, workday
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("name_en", sa.String(100), nullable=False),
    sa.Column("source", sa.String(300), nullable=False, default=""),
    info=INFO,
)

# Requests counted per rate-limit window, shared by the processes of a PostgreSQL installation
# (wecity.core.limits). `bucket` is the rule, the window's length and a hash of the key (an API key,
# an address, a phone number: none is kept as such); rows of ended windows are purged periodically.
rate_limit_counters = sa.Table(
    "rate_limit_counters", metadata,
    sa.Column("bucket", sa.String(100), primary_key=True),
    sa.Column("window_start", UTCDateTime, primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("count", sa.Integer, nullable=False),
    info=INFO,
)
