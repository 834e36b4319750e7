"""Point-in-area lookup: a grid over the city answers most points with one dict look-up.

Each grid cell that lies wholly inside one area maps straight to it; cells on a border keep the few
candidate areas and test them exactly with prepared shapely geometries. Built once from the areas
(an STRtree finds each cell's candidates), then read-only and safe to share between threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape


@dataclass(frozen=True, slots=True)
class Area:
    id: int
    code: str
    name_zh: str
    name_en: str


class AreaIndex:
    def __init__(self, areas: list[tuple[Area, dict[str, Any]]], *, cell_deg: float = 0.01) -> None:
        self.areas = [a for a, _ in areas]
        self._geoms = [shape(g) for _, g in areas]
        for geom in self._geoms:
            shapely.prepare(geom)
        self.cell = cell_deg
        self._points: dict[int, tuple[float, float]] = {}
        self._cells: dict[tuple[int, int], Area | tuple[int, ...]] = {}
        if not self._geoms:
            return
        minx, miny, maxx, maxy = shapely.total_bounds(self._geoms)
        self._tree = shapely.STRtree(self._geoms)
        ix = np.arange(math.floor(minx / cell_deg), math.floor(maxx / cell_deg) + 1)
        iy = np.arange(math.floor(miny / cell_deg), math.floor(maxy / cell_deg) + 1)
        mesh_x, mesh_y = np.meshgrid(ix, iy)
        gx, gy = mesh_x.ravel(), mesh_y.ravel()
        boxes = shapely.box(gx * cell_deg, gy * cell_deg, (gx + 1) * cell_deg, (gy + 1) * cell_deg)
        cell_idx, area_idx = self._tree.query(boxes, predicate="intersects")
        candidates: dict[int, list[int]] = {}
        for c, a in zip(cell_idx.tolist(), area_idx.tolist(), strict=True):
            candidates.setdefault(c, []).append(a)
        for c, found in candidates.items():
            key = (int(gx[c]), int(gy[c]))
            if len(found) == 1 and self._geoms[found[0]].contains(boxes[c]):
                self._cells[key] = self.areas[found[0]]
            else:
                self._cells[key] = tuple(found)

    def locate(self, lat: float, lon: float) -> Area | None:
        """The area containing the WGS-84 point, or None when it is outside every area."""
        hit = self._cells.get((math.floor(lon / self.cell), math.floor(lat / self.cell)))
        if hit is None or isinstance(hit, Area):
            return hit
        for i in hit:
            if shapely.contains_xy(self._geoms[i], lon, lat):
                return self.areas[i]
        return None

    def locate_exact(self, lat: float, lon: float) -> Area | None:
        """The same answer through the STRtree alone (the reference the grid is tested against)."""
        if not self._geoms:
            return None
        for i in self._tree.query(shapely.Point(lon, lat), predicate="intersects").tolist():
            return self.areas[i]
        return None

    def point_of(self, area: Area) -> tuple[float, float]:
        """A (lat, lon) inside the area: where a search that knows only the area puts its answer."""
        found = self._points.get(area.id)
        if found is None:
            point = self._geoms[self.areas.index(area)].representative_point()
            found = self._points[area.id] = (point.y, point.x)
        return found

    def __len__(self) -> int:
        return len(self.areas)
