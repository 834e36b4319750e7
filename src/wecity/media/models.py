"""Tables of the media domain."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "media"}

# One row per stored image. The id is random and unguessable (it is the public URL), not the hash:
# two reports with the same photo keep separate records, and an id reveals nothing about the content.
media = sa.Table(
    "media", metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("bytes", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("thumb_content_type", sa.String(64), nullable=False),
    sa.Column("thumb_width", sa.Integer, nullable=False),
    sa.Column("thumb_height", sa.Integer, nullable=False),
    sa.Column("thumb_bytes", sa.Integer, nullable=False),
    sa.Column("thumb_sha256", sa.String(64), nullable=False),
    # What the upload was (e.g. "image/webp") before re-encoding, for support and statistics.
    sa.Column("source_type", sa.String(64), nullable=False),
    # The EXIF GPS position the upload carried (WGS-84); kept for intake, never served.
    sa.Column("gps_lat", sa.Float),
    sa.Column("gps_long", sa.Float),
    # The photo's perceptual hash (wecity.media.images.perceptual_hash); none for photos stored before it.
    sa.Column("phash", sa.String(16)),
    # What the media belongs to, set by the owning domain (e.g. "report:SR-123", "case:42").
    sa.Column("ref", sa.String(100), index=True),
    sa.Column("owner", sa.String(100)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)
