"""Device provisioning, and readings turned into NGSI-LD attribute updates of the devices' entities."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.context import service as context
from wecity.context import tenants
from wecity.context.entity import (
    Entity,
    check_entity_id,
    check_name,
    normalize_attribute,
    now_text,
    parse_time,
)
from wecity.context.ldcontext import ContextStore
from wecity.core.errors import AlreadyExists, NotFound, ValidationFailed
from wecity.core.jsontext import BadJson, parse_json
from wecity.core.registry import Events
from wecity.iot.models import devices as t

# Topic segment that stands for the NGSI-LD default tenant (a topic level cannot be empty).
DEFAULT_TENANT = "default"
# Keys of a payload that say when the reading was taken rather than naming an attribute.
TIME_KEYS = ("observedAt", "ts", "timestamp")


@dataclass(frozen=True, slots=True)
class Device:
    tenant: str
    device_id: str
    entity_id: str
    entity_type: str
    attribute_map: dict[str, str] | None = None


def _device(row: Any) -> Device:
    return Device(row.tenant, row.device_id, row.entity_id, row.entity_type, row.attribute_map)


def provision(conn: Connection, *, tenant: str, device_id: str, entity_id: str, entity_type: str, now: datetime,
              attribute_map: dict[str, str] | None = None) -> Device:
    """Register a device that feeds `entity_id`; AlreadyExists when the device id is taken."""
    if not device_id or "/" in device_id or "+" in device_id or "#" in device_id or len(device_id) > 128:
        raise ValidationFailed(f"invalid device id {device_id!r}", message_zh=f"设备编号无效：{device_id!r}",
                               code="iot.invalid_device")
    if tenant and not tenants.NAME.match(tenant):
        raise ValidationFailed(f"invalid tenant {tenant!r}", message_zh=f"租户名无效：{tenant!r}",
                               code="iot.invalid_tenant")
    check_entity_id(entity_id)
    check_name(entity_type)
    for name in (attribute_map or {}).values():
        check_name(name)
    exists = conn.execute(sa.select(t.c.pk).where(t.c.tenant == tenant, t.c.device_id == device_id)).first()
    if exists:
        raise AlreadyExists(f"device {device_id} already exists", message_zh=f"设备 {device_id} 已存在",
                            code="iot.device_exists")
    conn.execute(t.insert().values(tenant=tenant, device_id=device_id, entity_id=entity_id, entity_type=entity_type,
                                   attribute_map=attribute_map or None, created_at=now))
    tenants.ensure_in(conn, tenant, now)  # its readings are read through the API in that tenant
    return Device(tenant, device_id, entity_id, entity_type, attribute_map)


def list_devices(conn: Connection, tenant: str | None = None) -> list[Device]:
    stmt = sa.select(t).order_by(t.c.tenant, t.c.device_id)
    if tenant is not None:
        stmt = stmt.where(t.c.tenant == tenant)
    return [_device(r) for r in conn.execute(stmt)]


def remove(conn: Connection, tenant: str, device_id: str) -> None:
    if not conn.execute(t.delete().where(t.c.tenant == tenant, t.c.device_id == device_id)).rowcount:
        raise NotFound(f"device {device_id} not found", message_zh=f"设备 {device_id} 不存在", code="iot.device_not_found")


# -- readings -------------------------------------------------------------------------------------

@dataclass(slots=True)
class Reading:
    """One message: its tenant and device from the topic, its JSON payload parsed (or why it is not)."""

    tenant: str
    device_id: str
    payload: dict[str, Any] | None
    problem: str | None = None


def parse(topic: str, body: bytes) -> Reading | None:
    """The reading in a message on `wecity/{tenant}/devices/{device_id}/attrs`; None for another topic."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "wecity" or parts[2] != "devices" or parts[4] != "attrs":
        return None
    tenant = "" if parts[1] == DEFAULT_TENANT else parts[1]
    try:
        payload = parse_json(body)
    except BadJson as exc:
        return Reading(tenant, parts[3], None, f"payload is {'nested too deep' if exc.too_deep else 'not JSON'}")
    if not isinstance(payload, dict) or not payload:
        return Reading(tenant, parts[3], None, "payload is not a non-empty JSON object")
    return Reading(tenant, parts[3], payload)


def _attributes(reading: Reading, device: Device, store: ContextStore, now: datetime) -> dict[str, dict[str, Any]]:
    assert reading.payload is not None
    terms = store.core
    observed = next((reading.payload[k] for k in TIME_KEYS if k in reading.payload), None)
    if isinstance(observed, str) and not observed.endswith("Z"):
        # Devices may stamp local time with an offset; NGSI-LD keeps observedAt in UTC, written with Z.
        observed = now_text(parse_time(observed, "observedAt"))
    out: dict[str, dict[str, Any]] = {}
    for key, value in reading.payload.items():
        if key in TIME_KEYS:
            continue
        name = (device.attribute_map or {}).get(key, key)
        check_name(name)
        if name == "location" and isinstance(value, list) and len(value) in (2, 3):
            value = {"type": "Point", "coordinates": value}
        raw: Any = value if observed is None else {"value": value, "observedAt": observed}
        out[terms.expand(name)] = normalize_attribute(raw, terms, now, name=name)
    return out


@dataclass
class IngestResult:
    stored: int = 0
    unknown: list[Reading] = field(default_factory=list)
    malformed: list[tuple[Reading, str]] = field(default_factory=list)


def ingest(conn: Connection, readings: list[Reading], *, now: datetime, store: ContextStore,
           events: Events) -> IngestResult:
    """Store a batch of parsed readings as attribute updates of their devices' entities (created when missing)
    in one transaction, telling `events` (the app's: sensor rules); readings of unknown devices or with bad
    values are returned, not stored."""
    result = IngestResult()
    by_tenant: dict[str, list[Reading]] = {}
    for r in readings:
        by_tenant.setdefault(r.tenant, []).append(r)
    known_by_tenant: dict[str, dict[str, Device]] = {}
    for tenant, items in by_tenant.items():
        ids = list({r.device_id for r in items})
        known = known_by_tenant[tenant] = {}
        for start in range(0, len(ids), 500):
            rows = conn.execute(sa.select(t).where(t.c.tenant == tenant, t.c.device_id.in_(ids[start:start + 500])))
            known.update({row.device_id: _device(row) for row in rows})
    # Every entity of the batch locked at once, in one order: the tenants are written one after the other.
    context.lock_entities(conn, [(tenant, d.entity_id) for tenant, known in known_by_tenant.items()
                                 for d in known.values()])
    for tenant, items in by_tenant.items():
        known = known_by_tenant[tenant]
        entities: list[Entity] = []
        for reading in items:
            device = known.get(reading.device_id)
            if device is None:
                result.unknown.append(reading)
                continue
            try:
                attrs = _attributes(reading, device, store, now)
            except ValidationFailed as exc:
                result.malformed.append((reading, exc.message))
                continue
            entities.append(Entity(device.entity_id, [store.core.expand(device.entity_type)], attrs))
        if entities:
            tenants.ensure_in(conn, tenant, now)  # devices provisioned before provisioning made the tenant
            context.batch_upsert(conn, context.Env(tenant, now, store, events), entities, mode="update")
            result.stored += len(entities)
    return result
