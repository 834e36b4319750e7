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
