"""Tables of the identity domain."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "identity"}

departments = sa.Table(
    "departments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("phone", sa.String(40)),
    sa.Column("email", sa.String(200)),
    sa.Column("webhook_url", sa.String(500)),
    sa.Column("is_dispatch_centre", sa.Boolean, nullable=False, default=False),
    info=INFO,
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id")),
    # Space-separated subset of: handler dispatcher supervisor admin.
    sa.Column("roles", sa.String(200), nullable=False, default=""),
    sa.Column("phone", sa.String(40)),
    sa.Column("email", sa.String(200)),
    sa.Column("locale", sa.String(10), nullable=False, default="zh_CN"),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # Keys are 256-bit random, so a fast hash is safe (no dictionary to attack) and keeps intake fast.
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    # What the key may do (space-separated, wecity.identity.keys.SCOPES) and in which NGSI-LD tenant ("*": any).
    sa.Column("scopes", sa.String(500), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, default=""),
    info=INFO,
)

staff_sessions = sa.Table(
    "staff_sessions", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    info=INFO,
)

# Append-only: the fields China's MLPS level-3 audit asks for (time, actor, action, target, outcome, source).
# Triggers refuse UPDATE and DELETE, and `entry_hash` chains the entries so that a change made around the
# triggers shows (wecity.identity.audit).
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(200), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("source_address", sa.String(100)),
    sa.Column("detail", sa.JSON),
    # SHA-256 (hex) of the previous entry's entry_hash followed by this entry's fields (audit.canonical).
    sa.Column("entry_hash", sa.String(64), nullable=False),
    info=INFO,
)

# Failed sign-ins in a row, per account and per client address (wecity.identity.signin): how many, the
# last one, and until when that account or address may not try again. A quiet spell clears the count;
# rows are read and written by the sign-in service only, never by the audit trail.
sign_in_failures = sa.Table(
    "sign_in_failures", metadata,
    sa.Column("subject", sa.String(200), primary_key=True),  # "account:<username>" or "address:<ip>"
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_failure_at", UTCDateTime, nullable=False, index=True),
    sa.Column("locked_until", UTCDateTime),
    info=INFO,
)

# Those who apply for public services: a citizen (kind "citizen", signed in by proving a phone number) or an
# enterprise (kind "enterprise", acting through the citizens in `applicant_agents`). `profile` holds what the
# city's base registers say of them (name, id_number, address, ...), the source of once-only pre-filling;
# it is personal data, read through wecity.identity.applicants only, each read by staff audited.
applicants = sa.Table(
    "applicants", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # citizen | enterprise
    sa.Column("phone", sa.String(40), unique=True),    # citizens only: the number they sign in with
    sa.Column("credit_code", sa.String(18), unique=True),  # enterprises only: 统一社会信用代码
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)

# Citizen sign-ins ended before their time ("forget my number on this device", at a service hall's kiosk):
# a citizen token is self-contained and valid until it expires, so the ones signed out are kept until then.
citizen_sign_outs = sa.Table(
    "citizen_sign_outs", metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    info=INFO,
)

# Who may act for an enterprise: its legal representative and authorised agents (citizen applicants).
applicant_agents = sa.Table(
    "applicant_agents", metadata,
    sa.Column("enterprise_id", sa.Integer, sa.ForeignKey("applicants.id"), primary_key=True),
    sa.Column("agent_id", sa.Integer, sa.ForeignKey("applicants.id"), primary_key=True, index=True),
    sa.Column("role", sa.String(30), nullable=False),  # legal_representative | agent
    info=INFO,
)
