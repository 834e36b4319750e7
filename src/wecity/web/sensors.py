"""The sensors page (物联感知): the city's sensor entities per type and on the map, those gone quiet, the open
cases their readings opened, the rules that open them, the provisioned devices and the MQTT listener's counts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from wecity.cases.sensors import list_rules, open_sensor_cases
from wecity.context.overview import QUIET_AFTER, located_entities, type_summaries
from wecity.core.http import request_locale
from wecity.identity.choices import Role
from wecity.identity.deps import OptionalStaff
from wecity.iot.service import list_devices
from wecity.web.i18n import gettext_for
from wecity.web.labels import ANOMALY_KIND_LABELS, SENSOR_TYPE_LABELS
from wecity.web.render import page
from wecity.web.views import login_redirect, not_allowed, require_supervisor

router = APIRouter(include_in_schema=False)
MAP_LIMIT = 5000  # points on the map; the tables count every entity


def _listener_counts(request: Request) -> dict[str, Any] | None:
    listener = request.app.state.ctx.services.get("mqtt_listener")
    if listener is None:
        return None
    connected = getattr(listener, "connected", None)
    return {"connected": bool(connected.is_set()) if connected is not None else None,
            "counts": dict(getattr(listener, "counts", {}))}


@router.get("/ops/sensors")
async def sensors(request: Request, user: OptionalStaff) -> Response:
    if user is None:
        return login_redirect(request)
    if not user.has(Role.SUPERVISOR):
        return not_allowed(request, user)
    ctx = request.app.state.ctx
    now = ctx.clock.now()

    def read(conn: Any) -> dict[str, Any]:
        return {"types": type_summaries(conn, now), "cases": open_sensor_cases(conn), "rules": list_rules(conn),
                "devices": list_devices(conn)}

    data = await ctx.db.read(read)
    _ = gettext_for(request_locale(request)).gettext
    type_names = {code: _(label) for code, label in SENSOR_TYPE_LABELS.items()}
    anomaly_kinds = {code: _(label) for code, label in ANOMALY_KIND_LABELS.items()}
    return page(request, "web/sensors.html", user=user, data=data, type_names=type_names, anomaly_kinds=anomaly_kinds,
                listener=_listener_counts(request), quiet_hours=int(QUIET_AFTER.total_seconds() // 3600),
                map_limit=MAP_LIMIT)


@router.get("/ops/sensors.geojson")
async def sensors_geojson(request: Request, user: OptionalStaff) -> Response:
    require_supervisor(user)
    ctx = request.app.state.ctx
    now = ctx.clock.now()

    def read(conn: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return located_entities(conn, limit=MAP_LIMIT), open_sensor_cases(conn)

    points, open_cases = await ctx.db.read(read)
    alarm = {c["entity_id"]: c["case_id"] for c in open_cases if not c["tenant"]}
    quiet_before = now - QUIET_AFTER
    return JSONResponse({"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": p["id"], "geometry": {"type": "Point", "coordinates": [p["lon"], p["lat"]]},
         "properties": {"type": p["type"], "modified_at": p["modified_at"].isoformat(),
                        "quiet": p["modified_at"] < quiet_before, "case_id": alarm.get(p["id"])}}
        for p in points]}, headers={"Cache-Control": "no-store"})
