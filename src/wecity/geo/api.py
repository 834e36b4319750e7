"""HTTP adapter of the geo domain: the city's areas and point-in-area lookup."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel

from wecity.core.context import AppContext
from wecity.core.http import Ctx
from wecity.geo.coords import CoordSystem, to_wgs84
from wecity.geo.index import AreaIndex
from wecity.geo.service import list_areas, load_area_index

router = APIRouter(prefix="/api/v1/areas", tags=["geo"])


def register(app: FastAPI) -> None:
    from wecity.geo import basemap_api

    app.include_router(router)
    app.include_router(basemap_api.router)


async def on_startup(ctx: AppContext) -> None:
    await reload_area_index(ctx)


async def reload_area_index(ctx: AppContext) -> AreaIndex:
    index = await ctx.db.read(load_area_index)
    ctx.services["area_index"] = index
    return index


class AreaOut(BaseModel):
    id: int
    code: str
    name_zh: str
    name_en: str


class LocateOut(BaseModel):
    inside: bool
    area: AreaOut | None
    wgs84: tuple[float, float]
    message: str


@router.get("/locate", response_model=LocateOut, summary="Which area contains a point")
async def locate(
    ctx: Ctx,
    lat: Annotated[float, Query(ge=-90, le=90)],
    long: Annotated[float, Query(ge=-180, le=180)],
    coord_system: CoordSystem = CoordSystem.WGS84,
) -> LocateOut:
    """The area containing the point (converted to WGS-84 first), or `inside: false` outside the city."""
    wlat, wlon = to_wgs84(lat, long, coord_system)
    area = ctx["area_index"].locate(wlat, wlon)
    if area is None:
        return LocateOut(inside=False, area=None, wgs84=(wlat, wlon),
                         message="outside the city / 不在本市范围内")
    return LocateOut(inside=True, area=AreaOut(id=area.id, code=area.code, name_zh=area.name_zh,
                                               name_en=area.name_en),
                     wgs84=(wlat, wlon), message=f"{area.name_zh} / {area.name_en}")


@router.get("", summary="The city's areas as a GeoJSON FeatureCollection (WGS-84)")
async def areas_geojson(ctx: Ctx) -> dict[str, Any]:
    rows = await ctx.db.read(_areas_with_geometry)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": r["id"], "geometry": r["geometry"],
             "properties": {"code": r["code"], "name_zh": r["name_zh"], "name_en": r["name_en"], "kind": r["kind"]}}
            for r in rows
        ],
    }


def _areas_with_geometry(conn: Any) -> list[dict[str, Any]]:
    return list_areas(conn, with_geometry=True)
