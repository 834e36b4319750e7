"""HTTP adapter of the device domain: provisioning (administrators), and the MQTT listener's life cycle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from wecity.core.context import AppContext
from wecity.core.errors import PermissionDenied
from wecity.core.http import Ctx
from wecity.identity.deps import CurrentStaff
from wecity.iot import service
from wecity.iot.listener import MqttListener

router = APIRouter(prefix="/api/v1/iot", tags=["iot"])


async def on_startup(ctx: AppContext) -> None:
    if ctx.settings.mqtt_url:
        listener = MqttListener(ctx, ctx.settings.mqtt_url)
        await listener.start()
        ctx.services["mqtt_listener"] = listener


async def on_shutdown(ctx: AppContext) -> None:
    listener = ctx.services.pop("mqtt_listener", None)
    if listener is not None:
        await listener.stop()


class DeviceIn(BaseModel):
    device_id: str = Field(min_length=1, max_length=128)
    entity_id: str = Field(min_length=3, max_length=512)
    entity_type: str = Field(min_length=1, max_length=256)
    tenant: str = Field(default="", max_length=64)
    attribute_map: dict[str, str] | None = None


def _require_admin(staff: Any) -> None:
    if not staff.has("admin"):
        raise PermissionDenied("only administrators provision devices", message_zh="只有管理员可以登记设备")


@router.post("/devices", status_code=201, summary="Provision a device that feeds an NGSI-LD entity")
async def provision(body: DeviceIn, ctx: Ctx, staff: CurrentStaff) -> dict[str, Any]:
    _require_admin(staff)
    device = await ctx.db.write(lambda conn: service.provision(
        conn, tenant=body.tenant, device_id=body.device_id, entity_id=body.entity_id, entity_type=body.entity_type,
        now=ctx.clock.now(), attribute_map=body.attribute_map))
    return _as_dict(device)


@router.get("/devices", summary="Provisioned devices")
async def devices(ctx: Ctx, staff: CurrentStaff, tenant: str | None = None) -> list[dict[str, Any]]:
    _require_admin(staff)
    return [_as_dict(d) for d in await ctx.db.read(service.list_devices, tenant)]


@router.delete("/devices/{device_id}", status_code=204, summary="Remove a device")
async def remove(device_id: str, ctx: Ctx, staff: CurrentStaff, tenant: str = "") -> None:
    _require_admin(staff)
    await ctx.db.write(service.remove, tenant, device_id)


def _as_dict(device: service.Device) -> dict[str, Any]:
    return {"tenant": device.tenant, "device_id": device.device_id, "entity_id": device.entity_id,
            "entity_type": device.entity_type, "attribute_map": device.attribute_map}
