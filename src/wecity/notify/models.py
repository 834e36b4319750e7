"""Tables of the notification domain: in-app notices and the configured webhook gateways."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "notify"}

# In-app notices, addressed by a recipient key: "user:12", "department:3", "department:3:supervisor",
# "citizen:<tracking token>". One outbox message makes at most one notice (`outbox_id`), so a retried
# delivery does not show it twice.
notifications = sa.Table(
    "notifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("recipient", sa.String(200), nullable=False),
    sa.Column("title_zh", sa.String(300), nullable=False),
    sa.Column("title_en", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False, default=""),
    sa.Column("link", sa.String(500)),
    sa.Column("data", sa.JSON),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("read_at", UTCDateTime),
    sa.Column("outbox_id", sa.Integer, unique=True),
    sa.Index("ix_notifications_recipient", "recipient", "id"),
    info=INFO,
)

# Named webhook endpoints with their own signing secret: gateways such as "sms" or "wechat", or a
# department's system. An outbox target that is not a URL names one of these.
webhooks = sa.Table(
    "webhooks", metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("secret", sa.String(200), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)
