"""Staff API for the sensor rules that open cases (administrators): list, add, pause or resume, remove.

A rule is an NGSI-LD `q` condition on an entity type and the category of the case it opens
(`tiltAngle>15` on `Manhole` -> 井盖缺失/破损), and/or an anomaly condition on one attribute (a spike, a
stuck device or drift against the sensor's own history); see `wecity.cases.sensors`. Every change is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from wecity.cases import sensors
from wecity.core.errors import NotFound, PermissionDenied
from wecity.core.http import Ctx, client_address, id_param
from wecity.identity.choices import Role
from wecity.identity.deps import CurrentStaff
from wecity.identity.service import StaffUser, record_audit

router = APIRouter(prefix="/sensor-rules", tags=["sensor rules"])  # mounted under /api/v1 by wecity.cases.api
RuleId = Annotated[int, id_param("rule id")]


class RuleIn(BaseModel):
    entity_type: str = Field(min_length=1, max_length=300, examples=["Manhole"])
    q: str = Field(default="", max_length=1000, examples=["tiltAngle>15"],
                   description="NGSI-LD q condition; may be empty when anomaly_attribute is given")
    category_code: str = Field(min_length=1, max_length=64, examples=["manhole"])
    description_zh: str = Field(min_length=1, max_length=500)
    description_en: str = Field(min_length=1, max_length=500)
    tenant: str = Field(default="", max_length=100)
    anomaly_attribute: str | None = Field(
        default=None, max_length=300, examples=["tiltAngle"],
        description="open a case when this attribute's stored reading is anomalous against the sensor's own history")
    anomaly_kind: str | None = Field(default=None, max_length=16, examples=["stuck"],
                                     description="any (the default), spike, stuck or drift")
    anomaly_threshold: float | None = Field(
        default=None, examples=[5.0], description="robust z beyond which a spike or drift counts (2-100; default 5)")


class RuleState(BaseModel):
    active: bool


def _require_admin(user: StaffUser) -> None:
    if not user.has(Role.ADMIN):
        raise PermissionDenied("only administrators change sensor rules", message_zh="只有管理员可以管理传感规则")


def _not_found(rule_id: int) -> NotFound:
    return NotFound(f"no sensor rule {rule_id}", message_zh=f"传感规则 {rule_id} 不存在")


@router.get("", summary="Sensor rules and whether each is active")
async def list_rules(ctx: Ctx, user: CurrentStaff) -> list[dict[str, Any]]:
    _require_admin(user)
    return await ctx.db.read(sensors.list_rules)


@router.post("", status_code=201, summary="Add a rule: a q condition on an entity type, a reading anomaly of "
             "one of its attributes, or both, opens a case")
async def add_rule(body: RuleIn, request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    _require_admin(user)
    now = ctx.clock.now()

    def write(conn: Any) -> dict[str, Any]:
        rule_id = sensors.add_rule(conn, entity_type=body.entity_type, q=body.q, category_code=body.category_code,
                                   description_zh=body.description_zh, description_en=body.description_en,
                                   now=now, tenant=body.tenant, anomaly_attribute=body.anomaly_attribute,
                                   anomaly_kind=body.anomaly_kind, anomaly_threshold=body.anomaly_threshold)
        rule = sensors.get_rule(conn, rule_id)
        detail = {"entity_type": body.entity_type, "q": rule["q"], "category": body.category_code}
        if rule["anomaly_attribute"]:
            detail["anomaly"] = {k: rule[f"anomaly_{k}"] for k in ("attribute", "kind", "threshold")}
        record_audit(conn, at=now, actor=f"user:{user.id}", action="sensor_rule.add", target=f"sensor_rule:{rule_id}",
                     source_address=client_address(request), detail=detail)
        return rule

    return await ctx.db.write(write)


@router.patch("/{rule_id}", summary="Pause or resume a rule")
async def set_active(rule_id: RuleId, body: RuleState, request: Request, ctx: Ctx, user: CurrentStaff) -> dict[str, Any]:
    _require_admin(user)
    now = ctx.clock.now()

    def write(conn: Any) -> dict[str, Any]:
        if not sensors.set_rule_active(conn, rule_id, body.active):
            raise _not_found(rule_id)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="sensor_rule.resume" if body.active
                     else "sensor_rule.pause", target=f"sensor_rule:{rule_id}", source_address=client_address(request))
        return sensors.get_rule(conn, rule_id)

    return await ctx.db.write(write)


@router.delete("/{rule_id}", status_code=204, summary="Remove a rule (its cases stay)")
async def remove_rule(rule_id: RuleId, request: Request, ctx: Ctx, user: CurrentStaff) -> None:
    _require_admin(user)
    now = ctx.clock.now()

    def write(conn: Any) -> None:
        if not sensors.delete_rule(conn, rule_id):
            raise _not_found(rule_id)
        record_audit(conn, at=now, actor=f"user:{user.id}", action="sensor_rule.remove", target=f"sensor_rule:{rule_id}",
                     source_address=client_address(request))

    await ctx.db.write(write)
