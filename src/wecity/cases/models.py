"""Tables of the case domain."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "cases"}

# Service categories (Open311 services): what the city handles, who handles it, how fast.
categories = sa.Table(
    "categories", metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("group_zh", sa.String(100), nullable=False),
    sa.Column("group_en", sa.String(100), nullable=False),
    sa.Column("description_zh", sa.Text, nullable=False, default=""),
    sa.Column("description_en", sa.Text, nullable=False, default=""),
    sa.Column("keywords", sa.Text, nullable=False, default=""),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=False),
    # SLA targets: minutes to acknowledge (签收), hours to resolve; `calendar` says whether the resolve
    # clock counts every hour ("24x7") or only working hours ("working").
    sa.Column("ack_minutes", sa.Integer, nullable=False),
    sa.Column("resolve_hours", sa.Integer, nullable=False),
    sa.Column("calendar", sa.String(16), nullable=False, default="24x7"),
    sa.Column("sort_order", sa.Integer, nullable=False, default=0),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    # Open311 service definition attributes: [{"code", "datatype", "required", "description_zh", ...}].
    sa.Column("attributes", sa.JSON),
    # The intake channels that take this category (["enterprise"] for enterprise 诉求); NULL: every channel.
    sa.Column("channels", sa.JSON),
    # A citizen's report of this category needs a description ("Other", noise: the place and photo alone
    # do not say what is wrong).
    sa.Column("description_required", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    info=INFO,
)

# Per-area override of the responsible department (e.g. a district's own 城管 bureau).
category_area_departments = sa.Table(
    "category_area_departments", metadata,
    sa.Column("category_code", sa.String(64), sa.ForeignKey("categories.code"), primary_key=True),
    sa.Column("area_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=False),
    info=INFO,
)

# A case (案件): one problem at one place, handled by one department at a time. Several citizen reports
# (and sensor alerts) may join one case (并单).
cases = sa.Table(
    "cases", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("category_code", sa.String(64), sa.ForeignKey("categories.code"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id")),
    sa.Column("area_id", sa.Integer, sa.ForeignKey("areas.id", ondelete="SET NULL")),
    sa.Column("lat", sa.Float),
    sa.Column("long", sa.Float),
    sa.Column("address", sa.String(500)),
    # The place is the gazetteer's match for an address in words (a road's point, say), not a pin: near
    # enough to dispatch, too coarse to tell two reports on one road apart, so never merged by place.
    sa.Column("place_from_address", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.String(20), nullable=False),            # citizen, sensor, hotline, staff
    # The intake channel of the report that opened it (portal, open311, hotline, sensor, enterprise): the
    # operations centre's filter, without a look at the reports.
    sa.Column("channel", sa.String(20)),
    sa.Column("source_ref", sa.String(300)),                        # e.g. "<entity id>|<rule id>" for sensors
    sa.Column("status_notes", sa.Text),                             # the latest public note
    sa.Column("merged_into_id", sa.Integer, sa.ForeignKey("cases.id")),
    sa.Column("assignee_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("dispatched_at", UTCDateTime),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("closed_at", UTCDateTime),
    # SLA clocks: due times, and which clock events have fired (so each fires once).
    sa.Column("ack_due_at", UTCDateTime),
    sa.Column("resolve_due_at", UTCDateTime),
    # 80% of each clock, computed with the same calendar, so the clock check is a plain indexed query.
    sa.Column("ack_warn_at", UTCDateTime),
    sa.Column("resolve_warn_at", UTCDateTime),
    sa.Column("ack_warned", sa.Boolean, nullable=False, default=False),
    sa.Column("ack_escalated", sa.Boolean, nullable=False, default=False),
    sa.Column("resolve_warned", sa.Boolean, nullable=False, default=False),
    sa.Column("resolve_escalated", sa.Boolean, nullable=False, default=False),
    sa.Column("reopen_count", sa.Integer, nullable=False, default=0),
    sa.Column("followup_open", sa.Boolean, nullable=False, default=False),
    # 市民催办: the reporter's last "please hurry" not yet answered by the department (a move or a public
    # reply clears it), and how many times the case was urged in all.
    sa.Column("urged_at", UTCDateTime),
    sa.Column("urge_count", sa.Integer, nullable=False, default=0, server_default="0"),
    # The number of the last webhook notice about the case: receivers order notices by it after an outage,
    # since the outbox delivers several at once and retries some later.
    sa.Column("notice_seq", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("evidence_media_id", sa.String(64)),
    # Every evidence photo of the resolution, in the order sent (evidence_media_id is the first).
    sa.Column("evidence_media_ids", sa.JSON),
    # How urgent the department is to treat it (choices.Priority): set by the dispatch centre or the handler.
    sa.Column("priority", sa.String(10), nullable=False, default="normal", server_default="normal"),
    # Duplicate merge looks for a category within a few metres: the latitude band narrows it at once.
    sa.Index("ix_cases_category_lat", "category_code", "lat"),
    sa.Index("ix_cases_department_status", "department_id", "status"),
    # The open cases of the whole city (the operations centre's "open now" and "overdue now").
    sa.Index("ix_cases_status", "status"),
    sa.Index("ix_cases_source_ref", "source_ref"),
    info=INFO,
)

# A report (Open311 service request): what one person or device said, with its own public id.
reports = sa.Table(
    "reports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("token", sa.String(40), nullable=False, unique=True),
    sa.Column("service_code", sa.String(64), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("lat", sa.Float),
    sa.Column("long", sa.Float),
    sa.Column("address", sa.String(500)),
    sa.Column("address_id", sa.String(100)),
    sa.Column("attributes", sa.JSON),
    sa.Column("media_ids", sa.JSON),
    sa.Column("channel", sa.String(20), nullable=False),            # open311, portal, sensor, hotline
    # Personal data: never in public output; masked in staff lists.
    sa.Column("email", sa.String(200)),
    sa.Column("phone", sa.String(40)),
    sa.Column("first_name", sa.String(100)),
    sa.Column("last_name", sa.String(100)),
    sa.Column("device_id", sa.String(200)),
    sa.Column("account_id", sa.String(200), index=True),           # an enterprise's appeals list reads by it
    # The language the reporter used (zh_CN, en): every message to them is in it.
    sa.Column("lang", sa.String(10)),
    sa.Column("requested_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
    info=INFO,
)

# The case timeline: every event, who, when, what, why and from which channel.
timeline = sa.Table(
    "case_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("event", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),             # "user:12", "citizen", "system", "sensor:..."
    sa.Column("actor_name", sa.String(200)),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("from_status", sa.String(20)),
    sa.Column("to_status", sa.String(20)),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id")),
    sa.Column("note", sa.Text),
    sa.Column("reason", sa.String(100)),
    sa.Column("public", sa.Boolean, nullable=False, default=True),
    sa.Column("media_id", sa.String(64)),
    sa.Column("detail", sa.JSON),
    info=INFO,
)

# Standard replies (标准回复): text a handler starts from when resolving or writing to the citizen, for a
# state and a category (NULL: any), in one language, with `{{field}}` placeholders the handler must fill.
reply_templates = sa.Table(
    "reply_templates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("locale", sa.String(10), nullable=False),              # zh_CN, en
    sa.Column("use", sa.String(12), nullable=False),                 # resolve, note (a public note)
    sa.Column("status", sa.String(20)),                              # the case state it is for; NULL: any
    sa.Column("category_code", sa.String(64), sa.ForeignKey("categories.code")),  # NULL: any
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
    info=INFO,
)

ratings = sa.Table(
    "ratings", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False, index=True),
    sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id"), nullable=False, unique=True),
    sa.Column("stars", sa.Integer, nullable=False),
    sa.Column("tags", sa.JSON),
    sa.Column("comment", sa.Text),
    sa.Column("at", UTCDateTime, nullable=False),
    info=INFO,
)

# 关注 / +1: people who have the same problem and say so (counted once per person) without filing a report;
# with an e-mail address they are told when it is fixed. The key is a keyed hash of who they are (their
# address, or the browser's follow cookie), never the address itself.
case_followers = sa.Table(
    "case_followers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("case_id", sa.Integer, sa.ForeignKey("cases.id"), nullable=False),
    sa.Column("follower_key", sa.String(64), nullable=False),
    sa.Column("email", sa.String(200)),  # personal data: never shown, used only for the case's notices
    sa.Column("lang", sa.String(10)),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("case_id", "follower_key", name="uq_case_followers_case_key"),
    info=INFO,
)

# Safe retries: the first response to a POST with an Idempotency-Key, returned again for a repeat within
# wecity.cases.receive.IDEMPOTENCY_KEEP; older keys are purged by the runner.
idempotency_keys = sa.Table(
    "idempotency_keys", metadata,
    sa.Column("scope", sa.String(100), primary_key=True),           # endpoint + client
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),        # hash of the request body
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),  # the purge reads by age
    info=INFO,
)

# Sensor rules: an NGSI-LD `q` condition on an entity type that, when it holds, opens a case of a
# category at the entity's location (one open case per entity and rule).
sensor_rules = sa.Table(
    "sensor_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False, default=""),
    sa.Column("entity_type", sa.String(300), nullable=False),
    sa.Column("q", sa.String(1000), nullable=False),
    sa.Column("category_code", sa.String(64), sa.ForeignKey("categories.code"), nullable=False),
    sa.Column("description_zh", sa.String(500), nullable=False),
    sa.Column("description_en", sa.String(500), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # An anomaly condition (judged by wecity.ai.anomaly_rules): the attribute whose readings are compared with
    # the sensor's own past, the kind of anomaly that opens a case (choices.AnomalyKind) and the rule's own
    # z threshold (NULL: the platform's). `q` may be empty on such a rule; when both are given, both must hold.
    sa.Column("anomaly_attribute", sa.String(300), nullable=True),
    sa.Column("anomaly_kind", sa.String(16), nullable=True),
    sa.Column("anomaly_threshold", sa.Float, nullable=True),
    info=INFO,
)


# Readers of the case events that keep something else in step (the cases' NGSI-LD entities): the last event
# taken, and since when the reader has waited at a gap in the event ids (on PostgreSQL an id can commit
# after a higher one; a gap older than a minute is a rolled-back insert).
case_event_cursors = sa.Table(
    "case_event_cursors", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("gap_since", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    info=INFO,
)
