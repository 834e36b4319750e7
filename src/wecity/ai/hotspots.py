"""Hot spots: where cases cluster more than chance would put them, per category and period.

Cases are counted on H3 cells (resolution 8 by default: cells of about 0.74 km², edges of about 460 m).
The study area is every cell within the convex hull of the period's cases, empty cells included: a cell is
compared with the whole extent over which cases were reported, not only with places that had one, and not
with the empty countryside of a large district either (against which the whole built-up city would be one
hot spot: the first version, on the districts' outlines, showed exactly that on the demo). Each cell's
Getis-Ord Gi* (Ord and Getis 1995) compares the count of the cell and its six neighbours (binary weights,
the cell itself included) with what the mean over the study area would give:

    Gi* = (sum_j w_ij x_j - mean * W_i) / (S * sqrt((n * W_i - W_i^2) / (n - 1)))

where W_i is the number of cells in the neighbourhood, n the number of cells and S the standard deviation
of the counts. Gi* is a z-score; its two-sided p-value comes from the normal distribution. Because every
cell is tested, the p-values are corrected for the false-discovery rate (Benjamini-Hochberg): a cell is a
hot spot only where its q-value is at most `alpha` (0.05) and Gi* is positive; so noise spread evenly over
the city gives none.

Why not esda (PySAL): its G_Local needs libpysal, which brings pandas and geopandas (with pyproj and a GIS
stack) for a statistic of a few lines; the formula above is the one esda's analytical z-score uses, and the
tests check it on cases built to cluster and on cases spread at random.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import h3
import numpy as np
import sqlalchemy as sa
from scipy.stats import norm
from shapely.geometry import MultiPoint, mapping
from sqlalchemy.engine import Connection

from wecity.cases.models import cases

RESOLUTION = 8
ALPHA = 0.05
MAX_DAYS = 366
# The most cells one study area holds: past it the next coarser resolution is taken (and said in the
# method). Resolution 9 over a province-sized hull is ~190,000 cells, seconds of CPU per request.
MAX_CELLS = 50_000
COARSEST = 6
METHOD = {
    "zh": "H3 六边形网格（{res} 级）计数；Getis-Ord Gi* 局部统计（本格及相邻 6 格）；正态近似的双侧 p 值经 "
          "Benjamini-Hochberg 错误发现率校正，q ≤ {alpha} 且 Gi* > 0 为热点。研究区为本期案件凸包内的全部网格。",
    "en": "Counts on H3 cells (resolution {res}); Getis-Ord Gi* (each cell with its 6 neighbours); two-sided "
          "p-values from the normal approximation, corrected for the false-discovery rate (Benjamini-Hochberg): a hot "
          "spot has q <= {alpha} and Gi* > 0. The study area is every cell within the convex hull of the period's cases.",
}


@dataclass(frozen=True)
class Cell:
    cell: str
    count: int
    z: float
    p: float
    q: float


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """q-values: the smallest false-discovery rate at which each test would be called significant."""
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def gi_star(cells: list[str], counts: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and two-sided p-values of `cells` (the study area) with their case `counts`."""
    n = len(cells)
    if n < 3:
        return np.zeros(n), np.ones(n)
    index = {c: i for i, c in enumerate(cells)}
    x = np.fromiter((counts.get(c, 0) for c in cells), np.float64, count=n)
    mean = x.mean()
    s = np.sqrt((x ** 2).mean() - mean ** 2)
    if s == 0:
        return np.zeros(n), np.ones(n)
    local = np.zeros(n)
    weight = np.zeros(n)
    for i, c in enumerate(cells):
        for neighbour in h3.grid_disk(c, 1):
            j = index.get(neighbour)
            if j is not None:
                local[i] += x[j]
                weight[i] += 1
    # A neighbourhood that is the whole study area (a handful of cells) has no variance to test against.
    spread = s * np.sqrt(np.maximum(n * weight - weight ** 2, 0.0) / (n - 1))
    z = np.divide(local - mean * weight, spread, out=np.zeros(n), where=spread > 0)
    return z, 2 * norm.sf(np.abs(z))


def _study_area(points: list[tuple[float, float]], resolution: int) -> list[str]:
    """The cells within the convex hull of the points (lat, long), and every cell holding one."""
    cells = {h3.latlng_to_cell(lat, lon, resolution) for lat, lon in points}
    hull = MultiPoint([(lon, lat) for lat, lon in points]).convex_hull if len(points) >= 3 else None
    if hull is not None and hull.geom_type == "Polygon":
        cells.update(h3.geo_to_cells(mapping(hull), resolution))
    else:  # one or two places, or all on a line: their neighbourhoods
        cells = {n for c in cells for n in h3.grid_disk(c, 1)}
    return sorted(cells)


def _cells_estimate(points: list[tuple[float, float]], resolution: int) -> float:
    """About how many cells of `resolution` the study area of `points` holds: the hull's area over a cell's
    (degrees to km at the hull's latitude), before any cell is listed."""
    if len(points) < 3:
        return 7.0 * max(len(points), 1)
    hull = MultiPoint([(lon, lat) for lat, lon in points]).convex_hull
    lat = hull.centroid.y
    km2 = hull.area * 111.32 * 111.32 * max(np.cos(np.radians(lat)), 0.01)
    # the cells inside the hull, and a ring of edge cells (those holding a point on the hull's edge)
    return km2 / h3.average_hexagon_area(resolution, unit="km^2") + 6 * math.sqrt(max(km2, 0.0) + 1.0)


def hotspots(conn: Connection, *, now: datetime, days: int = 30, category: str | None = None,
             resolution: int = RESOLUTION, alpha: float = ALPHA) -> dict[str, Any]:
    """The significant hot spots of the last `days` days (of one category, or all) as GeoJSON, with the
    method, the study area's size and every cell's figures."""
    since = now - timedelta(days=days)
    query = sa.select(cases.c.lat, cases.c.long).where(
        cases.c.created_at >= since, cases.c.created_at <= now, cases.c.lat.is_not(None),
        cases.c.merged_into_id.is_(None), cases.c.place_from_address.is_(False))
    if category:
        query = query.where(cases.c.category_code == category)
    points = [(float(r.lat), float(r.long)) for r in conn.execute(query)]
    asked = resolution
    while resolution > COARSEST and _cells_estimate(points, resolution) > MAX_CELLS:
        resolution -= 1
    counts: Counter[str] = Counter(h3.latlng_to_cell(lat, lon, resolution) for lat, lon in points)
    study = _study_area(points, resolution)
    z, p = gi_star(study, counts)
    q = benjamini_hochberg(p)
    hot = [Cell(c, counts.get(c, 0), float(z[i]), float(p[i]), float(q[i]))
           for i, c in enumerate(study) if q[i] <= alpha and z[i] > 0]
    hot.sort(key=lambda cell: -cell.z)
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "id": cell.cell, "geometry": {
            "type": "Polygon", "coordinates": [[[lng, lat] for lat, lng in
                                                [*h3.cell_to_boundary(cell.cell), h3.cell_to_boundary(cell.cell)[0]]]]},
            "properties": {"cases": cell.count, "gi_star": round(cell.z, 3), "p": cell.p, "q": cell.q}}
            for cell in hot],
        "method": {"zh": METHOD["zh"].format(res=resolution, alpha=alpha),
                   "en": METHOD["en"].format(res=resolution, alpha=alpha),
                   "resolution": resolution, "resolution_asked": asked, "alpha": alpha, "days": days,
                   "category": category,
                   "cases": len(points), "cells": len(study)},
    }
