"""Load scripts for wrk: points in Changsha and Open311 reports, each request different from the last."""

from __future__ import annotations

import math
import random
from functools import cache
from urllib.parse import quote

from bench._common import lua_string

CELL = 0.01  # degrees; a point anywhere in a cell that lies wholly inside a district is inside the city
DESCRIPTION = quote("路面有坑，雨天积水，影响通行。Pothole on the road, please fix. #")
# Same length as the platform's keys ("wk_" + 43 characters), so ceiling and platform requests match in size.
DUMMY_KEY = "wk_" + "x" * 43


@cache
def changsha() -> tuple[tuple[float, float, float, float], tuple[tuple[float, float], ...]]:
    """Changsha's WGS-84 bounding box (minx, miny, maxx, maxy) and the corners of grid cells wholly inside it."""
    import shapely
    from shapely.geometry import shape

    from wecity.demo.changsha import boundaries
    from wecity.geo.service import geometry_to_wgs84

    geoms = [shape(geometry_to_wgs84(f["geometry"], "gcj02")) for f in boundaries()]
    city = shapely.union_all(geoms)
    shapely.prepare(city)
    minx, miny, maxx, maxy = city.bounds
    corners = []
    for ix in range(math.floor(minx / CELL), math.floor(maxx / CELL) + 1):
        for iy in range(math.floor(miny / CELL), math.floor(maxy / CELL) + 1):
            x, y = ix * CELL, iy * CELL
            if city.contains(shapely.box(x, y, x + CELL, y + CELL)):
                corners.append((round(x, 4), round(y, 4)))
    return (minx, miny, maxx, maxy), tuple(corners)


def _lua_cells(corners: tuple[tuple[float, float], ...]) -> str:
    return "{" + ",".join(f"{{{x},{y}}}" for x, y in corners) + "}"


def locate_get(seed: int | None = None) -> str:
    """GET /api/v1/areas/locate at uniformly random points of the city's bounding box."""
    (minx, miny, maxx, maxy), _ = changsha()
    seed = random.randrange(1 << 30) if seed is None else seed
    return f"""
math.randomseed({seed})
request = function()
  local lon = {minx} + math.random() * {maxx - minx}
  local lat = {miny} + math.random() * {maxy - miny}
  return wrk.format("GET", string.format("/api/v1/areas/locate?lat=%.6f&long=%.6f", lat, lon))
end
"""


def open311_post(api_key: str, codes: list[str], seed: int | None = None) -> str:
    """POST /open311/v2/requests.json, form-urlencoded as GeoReport v2 says, at random points inside the city.

    Points are spread over every district and the category varies, so duplicate merge (same category within
    50 m) joins only the rare near-coincidence, as it would with real reports.
    """
    _, corners = changsha()
    seed = random.randrange(1 << 30) if seed is None else seed
    codes_lua = "{" + ",".join(lua_string(c) for c in codes) + "}"
    return f"""
math.randomseed({seed})
local cells = {_lua_cells(corners)}
local codes = {codes_lua}
local prefix = "api_key=" .. {lua_string(api_key)} .. "&service_code="
local desc = {lua_string(DESCRIPTION)}
local headers = {{["Content-Type"] = "application/x-www-form-urlencoded"}}
local n = 0
request = function()
  n = n + 1
  local c = cells[math.random(#cells)]
  local body = prefix .. codes[math.random(#codes)] ..
    string.format("&lat=%.6f&long=%.6f", c[2] + math.random() * {CELL}, c[1] + math.random() * {CELL}) ..
    "&description=" .. desc .. {seed} .. "-" .. n .. "&email=citizen" .. n .. "%40example.com"
  return wrk.format("POST", "/open311/v2/requests.json", headers, body)
end
"""
