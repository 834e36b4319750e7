"""Tables of digital government: the catalogue of matters, applications and their clocks, reviews,
certificates, ratings and rectifications."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "govservice"}

# A matter (事项) of the city's catalogue. The whole definition (materials, form schema, fees, process,
# certificate) is kept as the JSON document a city imports (wecity.govservice.catalogue); the columns
# beside it are what searches and joins need. A changed definition gets the next `version`; applications
# keep the version they were made under.
matters = sa.Table(
    "matters", metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(300), nullable=False),
    sa.Column("department_code", sa.String(64), sa.ForeignKey("departments.code"), nullable=False, index=True),
    sa.Column("applicants", sa.String(40), nullable=False),  # space-separated: citizen enterprise
    sa.Column("online_level", sa.String(20), nullable=False),  # full_online | at_most_once
    sa.Column("active", sa.Boolean, nullable=False, default=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    info=INFO,
)

# Every version of every matter, so that an application is always read against the definition it was made
# under (its form, materials and limits), also after the city changes the matter.
matter_versions = sa.Table(
    "matter_versions", metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)

# An application (申请 / 办件). `applicant_id` is whom it is for (a citizen, or an enterprise), `filed_by`
# the citizen who filed it. The working-day clock: `limit_days` (the promised limit) runs from acceptance;
# `due_on` is the last working day, moved by pauses (补正 and uncounted procedures) and extensions.
applications = sa.Table(
    "applications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(32), nullable=False, unique=True),  # 办件编号, shown to the applicant
    sa.Column("matter_code", sa.String(64), sa.ForeignKey("matters.code"), nullable=False, index=True),
    sa.Column("matter_version", sa.Integer, nullable=False),
    sa.Column("department_code", sa.String(64), nullable=False, index=True),
    sa.Column("applicant_id", sa.Integer, sa.ForeignKey("applicants.id"), nullable=False, index=True),
    sa.Column("filed_by", sa.Integer, sa.ForeignKey("applicants.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("form_data", sa.JSON, nullable=False),
    # field -> {"source": ..., "status": "filled" | "failed" | "absent", "error": ...}: where each pre-filled
    # value came from, and which sources failed (shown as failed, never as an empty success).
    sa.Column("prefill", sa.JSON, nullable=False),
    # material code -> {"state": "uploaded" | "replaced" | "missing", "media": [ids], "by": certificate no.}
    sa.Column("materials", sa.JSON, nullable=False),
    sa.Column("documents_spared", sa.Integer, nullable=False, default=0),  # materials not uploaded (once-only)
    sa.Column("workflow", sa.Text),  # the BPMN engine's serialised state (wecity.govservice.process)
    sa.Column("idempotency_key", sa.String(100)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime),
    sa.Column("accepted_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("outcome", sa.String(20)),  # approved | refused | not_accepted | withdrawn
    sa.Column("limit_days", sa.Integer),
    sa.Column("paused_days", sa.Integer, nullable=False, default=0),
    sa.Column("extended_days", sa.Integer, nullable=False, default=0),
    sa.Column("due_on", sa.Date, index=True),
    sa.Column("paused_since", UTCDateTime),
    sa.Column("warned_at", UTCDateTime),
    sa.Column("escalated_at", UTCDateTime),
    sa.UniqueConstraint("filed_by", "idempotency_key"),
    info=INFO,
)

# The application's timeline: every step, by whom, with the note the applicant sees.
application_events = sa.Table(
    "application_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("department_code", sa.String(64)),
    sa.Column("note", sa.Text),
    sa.Column("detail", sa.JSON),
    info=INFO,
)

# Spells when the clock does not run: 补正 (the applicant has the file) and the special procedures the
# law does not count (听证, 检验检测, 专家评审, 公示). `working_days` is fixed when the spell ends.
application_pauses = sa.Table(
    "application_pauses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),  # supplement | hearing | inspection | expert_review | public_notice
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested", sa.JSON),  # for 补正: the materials and fields asked for, all at once (一次性告知)
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime),
    sa.Column("working_days", sa.Integer),
    info=INFO,
)

# Extensions of the limit (延期), each with its reason and who approved it.
application_extensions = sa.Table(
    "application_extensions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, index=True),
    sa.Column("days", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("approved_by", sa.String(200), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    info=INFO,
)

# One row per department in a parallel review (并联审批) round: whose turn, and what it said.
application_reviews = sa.Table(
    "application_reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, index=True),
    sa.Column("round", sa.Integer, nullable=False),
    sa.Column("department_code", sa.String(64), nullable=False, index=True),
    sa.Column("task_id", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(20)),  # approve | refuse | supplement; NULL while pending
    sa.Column("note", sa.Text),
    sa.Column("decided_by", sa.String(200)),
    sa.Column("decided_at", UTCDateTime),
    info=INFO,
)

# The city's signing keys for e-certificates: public halves kept for ever, so that a certificate signed
# with a retired key still verifies. The private key lives outside the database.
signing_keys = sa.Table(
    "signing_keys", metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("algorithm", sa.String(20), nullable=False),  # Ed25519
    sa.Column("public_key", sa.String(200), nullable=False),  # base64url of the raw public key
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("retired_at", UTCDateTime),
    info=INFO,
)

# E-certificates (电子证照): the signed JSON document as issued, its holder, and its revocation.
certificates = sa.Table(
    "certificates", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number", sa.String(40), nullable=False, unique=True),  # printed on the certificate and its QR
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("holder_id", sa.Integer, sa.ForeignKey("applicants.id"), nullable=False, index=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id")),
    sa.Column("department_code", sa.String(64), nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime),
    sa.Column("document", sa.JSON, nullable=False),  # what was signed (wecity.govservice.certificates)
    sa.Column("signature", sa.String(200), nullable=False),  # base64url Ed25519 signature
    sa.Column("key_id", sa.String(64), sa.ForeignKey("signing_keys.key_id"), nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("revoked_by", sa.String(200)),
    sa.Column("revoked_reason", sa.Text),
    info=INFO,
)

# 好差评 of a finished application, on the national five levels (5 非常满意 ... 1 非常不满意).
application_ratings = sa.Table(
    "application_ratings", metadata,
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), primary_key=True),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("rated_at", UTCDateTime, nullable=False),
    info=INFO,
)

# A bad rating (不满意 or 非常不满意) makes the department rectify within 15 working days (整改), with a
# record of the call back to the applicant (回访).
rectifications = sa.Table(
    "rectifications", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("application_id", sa.Integer, sa.ForeignKey("applications.id"), nullable=False, unique=True),
    sa.Column("department_code", sa.String(64), nullable=False, index=True),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("callback_note", sa.Text),
    sa.Column("measures", sa.Text),
    sa.Column("closed_at", UTCDateTime),
    sa.Column("closed_by", sa.String(200)),
    info=INFO,
)
