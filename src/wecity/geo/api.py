"""HTTP adapter of the geo domain: the city's areas, point-in-area lookup, address search and reverse geocoding."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query, Request
from pydantic import BaseModel

from wecity.core.cache import DEFAULT_TTL
from wecity.core.context import AppContext
from wecity.core.http import Ctx, client_address
from wecity.geo import geocode
from wecity.geo.coords import CoordSystem, to_wgs84
from wecity.geo.index import Area, AreaIndex
from wecity.geo.service import list_areas, load_area_index

router = APIRouter(prefix="/api/v1/areas", tags=["geo"])
search_router = APIRouter(prefix="/api/v1/geo", tags=["geo"])


def register(app: FastAPI) -> None:
    from wecity.geo import basemap_api

    app.include_router(router)
    app.include_router(search_router)
    app.include_router(basemap_api.router)


async def on_startup(ctx: AppContext) -> None:
    await area_index(ctx)  # built once here, before the first request
    ctx.services["gazetteer"] = geocode.gazetteer_for(ctx.settings.var_dir)
    ctx.services["streets"] = geocode.streets_for(ctx.settings.var_dir)


async def area_index(ctx: AppContext) -> AreaIndex:
    """The areas as stored, read again at most every `cache.DEFAULT_TTL` seconds, so that areas imported
    while the server runs are used without a restart. Held by the app: a lookup (the report form asks as the
    pin moves) costs no trip to the database."""
    held: tuple[float, AreaIndex] | None = ctx.services.get(_AREA_INDEX)
    now = time.monotonic()
    if held is None or now - held[0] > DEFAULT_TTL:
        held = (now, await ctx.db.read(load_area_index))
        ctx.services[_AREA_INDEX] = held
    return held[1]


_AREA_INDEX = "geo_area_index"


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
    area = (await area_index(ctx)).locate(wlat, wlon)
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


class PlaceOut(BaseModel):
    name: str
    name_zh: str | None
    name_en: str | None
    kind: str
    category: str | None
    address: str | None
    district: AreaOut | None
    lat: float
    long: float
    approximate: bool


class SearchOut(BaseModel):
    query: str
    results: list[PlaceOut]
    gazetteer: bool


class RoadOut(BaseModel):
    name: str
    name_zh: str | None
    name_en: str | None
    category: str | None
    distance_m: float


class ReverseOut(BaseModel):
    lat: float
    long: float
    road: RoadOut | None
    district: AreaOut | None
    gazetteer: bool


def _area_out(area: Area | None) -> AreaOut | None:
    return None if area is None else AreaOut(id=area.id, code=area.code, name_zh=area.name_zh, name_en=area.name_en)


@search_router.get("/search", response_model=SearchOut, summary="Find a place by name: districts, 街道, roads, "
                   "POIs and addresses (public, rate-limited)")
async def search(request: Request, ctx: Ctx,
                 q: Annotated[str, Query(min_length=1, max_length=geocode.MAX_QUERY, pattern=r"^[^\x00-\x1f\x7f]+$")],
                 limit: Annotated[int, Query(ge=1, le=geocode.MAX_RESULTS)] = 10) -> SearchOut:
    """Names containing `q`; one or two characters match the start of a name. A 街道 answers its district
    (`approximate`: the division codes carry no coordinates)."""
    await ctx.limits.hit("geo_search", client_address(request) or "-")
    gazetteer = ctx["gazetteer"]
    # A search reads the gazetteer file: off the event loop, so other requests are served meanwhile.
    found = await asyncio.to_thread(geocode.search, q, index=await area_index(ctx), gazetteer=gazetteer,
                                    streets=ctx["streets"], limit=limit)
    return SearchOut(query=q.strip(), gazetteer=gazetteer.exists(), results=[
        PlaceOut(name=p.name, name_zh=p.name_zh, name_en=p.name_en, kind=p.kind, category=p.category,
                 address=p.address, district=_area_out(p.district), lat=p.lat, long=p.lon, approximate=p.approximate)
        for p in found])


@search_router.get("/reverse", response_model=ReverseOut, summary="The nearest named road and the district of a "
                   "point (public, rate-limited)")
async def reverse(request: Request, ctx: Ctx,
                  lat: Annotated[float, Query(ge=-90, le=90)],
                  long: Annotated[float, Query(ge=-180, le=180)],
                  coord_system: CoordSystem = CoordSystem.WGS84,
                  radius: Annotated[float, Query(gt=0, le=geocode.MAX_REVERSE_RADIUS_M,
                                                 description="metres to look for a road")] = geocode.REVERSE_RADIUS_M,
                  ) -> ReverseOut:
    await ctx.limits.hit("geo_search", client_address(request) or "-")
    wlat, wlon = to_wgs84(lat, long, coord_system)
    gazetteer = ctx["gazetteer"]
    found = await asyncio.to_thread(geocode.reverse, wlat, wlon, index=await area_index(ctx),
                                    gazetteer=gazetteer,
                                    radius_m=radius)
    road = None if found.road is None or found.distance_m is None else RoadOut(
        name=found.road.name, name_zh=found.road.name_zh, name_en=found.road.name_en, category=found.road.category,
        distance_m=found.distance_m)
    return ReverseOut(lat=wlat, long=wlon, road=road, district=_area_out(found.district), gazetteer=gazetteer.exists())
