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

# Group robots (WeCom 企业微信, DingTalk 钉钉) and generic webhooks that hear of case events for staff: which
# departments (none listed: every one) and which kinds of event each wants. The robot's URL carries its
# key (WeCom `key`, DingTalk `access_token`) and `secret` its signing secret (DingTalk 加签; the HMAC key of
# a generic webhook): both are shown to administrators only in part. `next_slot_at` spaces a burst of
# messages to the robot's documented rate (wecity.notify.robots).
robots = sa.Table(
    "robots", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("url", sa.String(500), nullable=False),
    sa.Column("secret", sa.String(200)),
    sa.Column("department_ids", sa.JSON, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("locale", sa.String(10), nullable=False, default="zh_CN"),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("next_slot_at", UTCDateTime),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    info=INFO,
)

# How a staff member is @mentioned by the group robots, given by them on /staff/me: a mobile number
# (WeCom `mentioned_mobile_list`, DingTalk `at.atMobiles`) and/or their WeCom userid (`mentioned_list`).
# Staff personal data: every change and every look by someone else is in the audit log.
staff_robot_links = sa.Table(
    "staff_robot_links", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("mobile", sa.String(20)),
    sa.Column("wecom_userid", sa.String(64)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    info=INFO,
)
