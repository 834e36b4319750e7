"""Tables of the case domain."""

import sqlalchemy as sa

from wecity.core.db import metadata

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
