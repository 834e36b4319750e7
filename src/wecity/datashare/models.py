"""Tables of the data platform: the catalogue of datasets (目录) and their fields."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "datashare"}

# A dataset a department publishes over the platform's own data (cases, NGSI-LD entity types, service
# applications, certificates) or over a table it uploads. Its metadata follows DCAT-AP: titles and
# descriptions in both languages, the publisher, an EU data theme, keywords, an update frequency, spatial
# and temporal coverage. `share_class` is its class under the government data-sharing rules: 无条件共享
# (unconditional), 有条件共享 (conditional) or 不予共享 (not shared), with the legal basis for it.
datasets = sa.Table(
    "datasets", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),  # CKAN's package name: a-z 0-9 - _
    sa.Column("title_zh", sa.String(300), nullable=False),
    sa.Column("title_en", sa.String(300), nullable=False),
    sa.Column("description_zh", sa.Text, nullable=False),
    sa.Column("description_en", sa.Text, nullable=False),
    sa.Column("publisher", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("theme", sa.String(10), nullable=False),  # EU data theme: TRAN, ENVI, GOVE ...
    sa.Column("keywords", sa.JSON, nullable=False),
    sa.Column("frequency", sa.String(20), nullable=False),  # EU frequency: DAILY, MONTHLY, IRREG ...
    sa.Column("spatial", sa.String(200), nullable=False),
    sa.Column("temporal_start", sa.Date),
    sa.Column("temporal_end", sa.Date),
    sa.Column("source", sa.String(30), nullable=False),  # cases | ngsild | applications | certificates | table
    sa.Column("source_ref", sa.String(200), nullable=False, default=""),  # an entity type, a matter code ...
    sa.Column("share_class", sa.String(20), nullable=False),  # unconditional | conditional | not_shared
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("open_data", sa.Boolean, nullable=False, default=False),
    sa.Column("state", sa.String(20), nullable=False, index=True),  # draft | published | withdrawn
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.Column("issued_at", UTCDateTime),
    info=INFO,
)

# A dataset's fields, in order: type, and how sensitive the values are (public, internal, personal,
# sensitive personal), which decides what a grant must name before the data API returns them unmasked.
dataset_fields = sa.Table(
    "dataset_fields", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("title_zh", sa.String(200), nullable=False),
    sa.Column("title_en", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),  # string | integer | number | boolean | date | datetime | geometry
    sa.Column("sensitivity", sa.String(20), nullable=False),  # public | internal | personal | sensitive
    sa.Column("description", sa.Text),
    sa.UniqueConstraint("dataset_id", "name"),
    info=INFO,
)

# A department's request for a dataset (共享申请): what it wants (fields, the personal ones it asks to see
# in clear, a row filter such as one district), why, and for how long. The provider decides on a clock of
# working days from submission (2 for an unconditional resource, 5 for a conditional one); a request still
# open on its due day is escalated to the coordinating department. A refusal carries reasons and their basis.
data_requests = sa.Table(
    "data_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False, index=True),
    sa.Column("requester", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("provider", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("requested_by", sa.String(100), nullable=False),  # the requesting staff member's username
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("basis", sa.Text, nullable=False, default=""),  # the requester's legal basis or duty
    sa.Column("fields", sa.JSON, nullable=False),  # field names, in the dataset's order
    sa.Column("clear_fields", sa.JSON, nullable=False),  # personal fields asked for unmasked
    sa.Column("row_filter", sa.JSON, nullable=False),  # {field: [allowed values]}; {} is every row
    sa.Column("days", sa.Integer, nullable=False),  # how long the grant is asked for, in calendar days
    sa.Column("state", sa.String(20), nullable=False, index=True),  # submitted | granted | refused | withdrawn
    sa.Column("submitted_at", UTCDateTime, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),  # the working day by which the provider answers
    sa.Column("warned_at", UTCDateTime),
    sa.Column("escalated_at", UTCDateTime),  # when the coordinating department was told it is late
    sa.Column("decided_at", UTCDateTime),
    sa.Column("decided_by", sa.String(100)),
    sa.Column("reasons", sa.Text),  # why it was refused, or what the grant narrowed
    sa.Column("decision_basis", sa.Text),
    info=INFO,
)

# What happened to a request, in order: submitted, warned, escalated, granted, refused, withdrawn, revoked,
# disclosure_delayed. The pages show it as the request's timeline; the audit log has each step too.
data_request_events = sa.Table(
    "data_request_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("data_requests.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),  # a username, or "system"
    sa.Column("department", sa.String(64)),
    sa.Column("note", sa.Text),
    info=INFO,
)

# A grant (共享授权): the scope within which one department reads one dataset through the data API. Fields
# outside it are not returned; its personal fields come masked unless `clear_fields` names them; rows are
# those the row filter lets through; it ends at `expires_at` or when revoked. `rate_limit` counts its calls.
# `disclose_from`: until this time, accesses under the grant are not shown to the people the data is about
# (an investigation the law lets stay unannounced); setting it is logged, and so is its basis.
data_grants = sa.Table(
    "data_grants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("data_requests.id"), unique=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False, index=True),
    sa.Column("grantee", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("clear_fields", sa.JSON, nullable=False),
    sa.Column("row_filter", sa.JSON, nullable=False),
    sa.Column("rate_limit", sa.String(40), nullable=False),
    sa.Column("granted_at", UTCDateTime, nullable=False),
    sa.Column("granted_by", sa.String(100), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revoked_by", sa.String(100)),
    sa.Column("revoke_reason", sa.Text),
    sa.Column("disclose_from", UTCDateTime),
    sa.Column("disclosure_basis", sa.Text),
    info=INFO,
)

# Every call of the data API on data that is not open, answered or refused: the department's view of who used
# its data, and a grant's access log. The audit-log entry (`audit_id`) is the tamper-evident record of the
# same call; this table is the index that pages and figures read.
data_accesses = sa.Table(
    "data_accesses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False, index=True),
    sa.Column("grant_id", sa.Integer, sa.ForeignKey("data_grants.id"), index=True),
    sa.Column("reader", sa.String(64)),  # the reading department's code (none for an anonymous caller)
    sa.Column("actor", sa.String(200), nullable=False),  # "user:<username>" or "anonymous:<address>"
    sa.Column("access", sa.String(20), nullable=False),  # publisher | grant | refused
    sa.Column("purpose", sa.Text, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("fields", sa.JSON, nullable=False),  # the fields returned (empty when refused)
    sa.Column("outcome", sa.String(20), nullable=False),  # ok | no_grant | expired | revoked | anonymous
    sa.Column("audit_id", sa.Integer, nullable=False),
    # When the people the records are about may see this reading: its time, or later under a grant whose
    # disclosure is delayed (data_grants.disclose_from).
    sa.Column("visible_from", UTCDateTime, nullable=False),
    # When the records of the reading were indexed under the people they are about (data_disclosures);
    # NULL until the runner has done it, moments after the call (wecity.datashare.disclosures).
    sa.Column("indexed_at", UTCDateTime),
    sa.Index("ix_data_accesses_unindexed", "indexed_at", "id"),
    info=INFO,
)

# The index behind "who used my data": one row per record about a person returned by the data API, derived
# from the audit log's list of the records each reading returned (wecity.datashare.disclosures), kept small
# because one reading may return ten thousand records. The person is a keyed hash of their
# phone number (never the number itself); `access_id` is the call: who, when, why, under which grant, and
# from when the person may see it (and through it the audit-log entry whose hash chain makes the account
# tamper-evident).
data_disclosures = sa.Table(
    "data_disclosures", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("access_id", sa.Integer, sa.ForeignKey("data_accesses.id"), nullable=False),
    sa.Column("subject", sa.String(64), nullable=False, index=True),
    sa.Column("record", sa.String(100), nullable=False),  # "case:12", "application:…", "certificate:…"
    info=INFO,
)

# The rows of a table a department uploads (source "table", source_ref "upload"), as CSV or XLSX: each row
# keyed by the dataset's field names, with values of its field types. An upload replaces them all.
dataset_rows = sa.Table(
    "dataset_rows", metadata,
    sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("row", sa.JSON, nullable=False),
    info=INFO,
)
