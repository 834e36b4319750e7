"""Tables of the geo domain: the jurisdiction and its areas."""

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "geo"}

# One row: the city this platform serves (Open311's jurisdiction_id is its `id`).
jurisdiction = sa.Table(
    "jurisdiction", metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("adcode", sa.String(12)),
    sa.Column("timezone", sa.String(64), nullable=False, default="Asia/Shanghai"),
    sa.Column("center_lat", sa.Float),
    sa.Column("center_long", sa.Float),
    info=INFO,
)

areas = sa.Table(
    "areas", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False, default="district"),
    # GeoJSON geometry (Polygon or MultiPolygon) in WGS-84, as RFC 7946 requires.
    sa.Column("geometry", sa.JSON, nullable=False),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    info=INFO,
)
