"""Tables of the context broker: entities, their attribute history, subscriptions and stored @contexts."""

from __future__ import annotations

import math

import sqlalchemy as sa

from wecity.core.db import metadata
from wecity.core.types import UTCDateTime

INFO = {"domain": "context"}
GEO_CELL = 0.0025  # degrees, about 250 m: a few dozen entities per cell where a city is densest


CELL_ROW = 100_000  # more cells than a column of latitude has (180 / GEO_CELL)


def geo_cell(lon: float, lat: float) -> int:
    """The grid cell holding a point (cells are GEO_CELL degrees square)."""
    return math.floor(lon / GEO_CELL) * CELL_ROW + math.floor(lat / GEO_CELL)

# One row per entity. Attributes are kept as one JSON document keyed by expanded attribute IRIs, so a
# term means the same thing whatever @context a client used. The bounding box of the `location`
# GeoProperty is kept in plain columns: an indexed pre-filter for geo-queries before the exact test.
entities = sa.Table(
    "ngsild_entities",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False, default=""),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("type", sa.String(512), nullable=False),
    # Further types of a multi-typed entity (JSON list), NULL for the usual single type.
    sa.Column("extra_types", sa.JSON, nullable=True),
    # True when extra_types is set: type queries look such entities up apart, so the common single-typed
    # case stays on the (tenant, type, ...) indexes.
    sa.Column("multi_typed", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("scope", sa.JSON, nullable=True),
    sa.Column("attrs", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.Column("min_lon", sa.Float, nullable=True),
    sa.Column("min_lat", sa.Float, nullable=True),
    sa.Column("max_lon", sa.Float, nullable=True),
    sa.Column("max_lat", sa.Float, nullable=True),
    # The grid cell (GEO_CELL degrees square) holding the whole bounding box, so a geo pre-filter reads
    # only the few cells a query covers; NULL for entities without a location or whose box spans several
    # cells (`geo_large`, looked up apart by plain box overlap).
    sa.Column("geo_cell", sa.BigInteger, nullable=True),
    sa.Column("geo_large", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    # Transient entities (clause 4.22): when the entity itself expires (its expiresAt), and the earliest
    # expiresAt of its attribute instances. Both NULL for the usual durable entity; reads hide an expired
    # entity and drop expired instances at once, the cleanup task removes them for good.
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("attrs_expire_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("tenant", "entity_id", name="uq_ngsild_entities_tenant_entity_id"),
    sa.Index("ix_ngsild_entities_type_cell", "tenant", "type", "geo_cell"),
    sa.Index("ix_ngsild_entities_cell", "tenant", "geo_cell"),
    sa.Index("ix_ngsild_entities_multi_typed", "tenant", "multi_typed"),
    sa.Index("ix_ngsild_entities_geo_large", "tenant", "geo_large"),
    sa.Index("ix_ngsild_entities_expires_at", "expires_at"),
    sa.Index("ix_ngsild_entities_attrs_expire_at", "attrs_expire_at"),
    info=INFO,
)

# Every attribute change, for the temporal API. `ts` is epoch seconds so that aggregation buckets are
# plain arithmetic in SQL on both backends; `number` holds the value when it is numeric.
attribute_history = sa.Table(
    "ngsild_attribute_history",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("entity_type", sa.String(512), nullable=False),
    sa.Column("attr", sa.String(512), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("number", sa.Float, nullable=True),
    sa.Column("instance", sa.JSON, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False),
    sa.Index("ix_ngsild_attribute_history_entity", "tenant", "entity_id", "attr", "ts"),
    # a type's history oldest first (the data platform's `<Type>/history` datasets)
    sa.Index("ix_ngsild_attribute_history_type_ts", "tenant", "entity_type", "ts", "pk"),
    info=INFO,
)

subscriptions = sa.Table(
    "ngsild_subscriptions",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subscription_id", sa.String(512), nullable=False),
    # "entity" for a subscription to entities (/subscriptions), "csource" for one to context source
    # registrations (/csourceSubscriptions): one table, one id space, one way to count and deliver.
    sa.Column("kind", sa.String(16), nullable=False, default="entity", server_default="entity"),
    # The subscription as given, with entity types and attribute names expanded to IRIs.
    sa.Column("body", sa.JSON, nullable=False),
    # The @context its notifications are compacted with.
    sa.Column("context", sa.JSON, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, default=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("throttling", sa.Float, nullable=True),
    sa.Column("last_triggered", UTCDateTime, nullable=True),
    # Periodic subscriptions (timeInterval, seconds): when their next notification is due. Subscriptions
    # on changes leave both NULL, so the periodic runner reads only the due rows through the index.
    sa.Column("time_interval", sa.Float, nullable=True),
    sa.Column("next_notification_at", UTCDateTime, nullable=True),
    sa.Column("times_sent", sa.Integer, nullable=False, default=0),
    sa.Column("times_failed", sa.Integer, nullable=False, default=0),
    sa.Column("last_notification", UTCDateTime, nullable=True),
    sa.Column("last_success", UTCDateTime, nullable=True),
    sa.Column("last_failure", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "subscription_id", name="uq_ngsild_subscriptions_tenant_subscription_id"),
    sa.Index("ix_ngsild_subscriptions_next_notification", "next_notification_at"),
    info=INFO,
)

# Context source registrations (clause 5.2.9): which other NGSI-LD systems hold which entities and
# attributes. `body` is the registration with entity types, attribute names and context source property
# names expanded to IRIs; `mode` and `expires_at` are kept beside it for the look-ups by index.
registrations = sa.Table(
    "ngsild_registrations",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("registration_id", sa.String(512), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    # The @context it was created with (its readers may use another).
    sa.Column("context", sa.JSON, nullable=True),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "registration_id", name="uq_ngsild_registrations_tenant_registration_id"),
    info=INFO,
)

# Copies of this broker's subscriptions sent to context sources (clause 5.8.1.4): each copy has an id of
# its own, made here and known only to this broker and that source, by which the source's notifications
# (to /ngsi-ld/ex/remote-notify) find the subscription they are for.
forwarded_subscriptions = sa.Table(
    "ngsild_forwarded_subscriptions",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("subscription_id", sa.String(512), nullable=False),
    sa.Column("remote_id", sa.String(512), nullable=False, unique=True),
    sa.Column("registration_id", sa.String(512), nullable=False),
    # Where the copy went: its delete goes there even when the registration is gone by then.
    sa.Column("endpoint", sa.String(2048), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_ngsild_forwarded_subscriptions_tenant_subscription_id", "tenant", "subscription_id"),
    info=INFO,
)

# @contexts the broker hosts (kind Hosted: posted to /jsonldContexts; ImplicitlyCreated: made for a
# request whose @context was not one URL) or has fetched once and keeps (Cached). Hosted and implicitly
# created ones belong to a tenant; cached ones are copies of public documents, shared by all ("").
contexts = sa.Table(
    "ngsild_contexts",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("context_id", sa.String(64), nullable=False, unique=True),
    sa.Column("url", sa.String(2048), nullable=False, unique=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("tenant", sa.String(64), nullable=False, default="", server_default=""),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used", UTCDateTime, nullable=True),
    sa.Column("times_used", sa.Integer, nullable=False, default=0),
    info=INFO,
)

# EntityMaps (clause 5.14): which entities a query or retrieval named, kept for a while so a client can
# refer to them again by the map's id (NGSILD-EntityMap header). `entity_map` is {entity id: ["@none"]}.
entity_maps = sa.Table(
    "ngsild_entity_maps",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("map_id", sa.String(512), nullable=False),
    sa.Column("entity_map", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "map_id", name="uq_ngsild_entity_maps_tenant_map_id"),
    sa.Index("ix_ngsild_entity_maps_expires_at", "expires_at"),
    info=INFO,
)

# Snapshots (clause 5.16): the result of some queries frozen at one time, which later queries naming the
# snapshot (NGSILD-Snapshot header) are answered from. `body` holds the snapshotQueries as given, with the
# @context they are read with; `details` the snapshotQueriesDetails.
snapshots = sa.Table(
    "ngsild_snapshots",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("snapshot_id", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_used_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "snapshot_id", name="uq_ngsild_snapshots_tenant_snapshot_id"),
    info=INFO,
)

# The frozen entities of a snapshot, in the columns of `entities` a query reads.
snapshot_entities = sa.Table(
    "ngsild_snapshot_entities",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("snapshot_pk", sa.Integer, sa.ForeignKey("ngsild_snapshots.pk", ondelete="CASCADE"), nullable=False),
    sa.Column("entity_id", sa.String(512), nullable=False),
    sa.Column("type", sa.String(512), nullable=False),
    sa.Column("extra_types", sa.JSON, nullable=True),
    sa.Column("scope", sa.JSON, nullable=True),
    sa.Column("attrs", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("modified_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("attrs_expire_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("snapshot_pk", "entity_id", name="uq_ngsild_snapshot_entities_snapshot_entity"),
    info=INFO,
)

# Tenants other than the default one (clause 5.5.10), from the first operation that created something
# in them; operations other than creations on a tenant not listed here are a NonexistentTenant.
tenants = sa.Table(
    "ngsild_tenants",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    info=INFO,
)
