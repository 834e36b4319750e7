"""Tables of the device domain: which device feeds which NGSI-LD entity."""

from __future__ import annotations

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

devices = sa.Table(
    "iot_devices",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False, default=""),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("entity_type", sa.String(256), nullable=False),
    # Payload key -> attribute name, for devices whose firmware names things its own way.
    sa.Column("attribute_map", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "device_id", name="uq_iot_devices_tenant_device_id"),
    info={"domain": "iot"},
)

# Messages that could not be stored however often they were tried (a payload that breaks ingestion): kept
# with the error, so nothing the devices sent is lost without a trace, and acknowledged so that they do not
# hold up the messages behind them.
rejected_messages = sa.Table(
    "iot_rejected_messages",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(512), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("error", sa.String(2000), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    info={"domain": "iot"},
)
