"""Tables of the portal: one-time codes that let a citizen see their reports by phone number."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "web"}

# A code sent by SMS to a phone number; only hashes are kept (the phone's, keyed, and the code's).
portal_codes = sa.Table(
    "portal_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("phone_hash", sa.String(64), nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("used_at", UTCDateTime),
    info=INFO,
)
