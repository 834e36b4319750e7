"""Geo-queries: `georel`, `geometry`, `coordinates` parsed once; a bounding-box pre-filter for SQL and the
exact test with shapely. Distances are metres on a local equirectangular projection around the query
geometry, accurate to well under 1% at city scale."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from wecity.context.errors import bad_request_data
from wecity.core.errors import ValidationFailed
from wecity.core.jsontext import parse_json

GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
GEORELS = {"near", "within", "contains", "intersects", "equals", "disjoint", "overlaps"}
METRES_PER_DEGREE = 111_320.0


def to_shape(geojson: Any) -> BaseGeometry:
    """A shapely geometry from a GeoJSON geometry, or BadRequestData."""
    if not isinstance(geojson, dict) or geojson.get("type") not in GEOMETRY_TYPES | {"GeometryCollection"}:
        raise bad_request_data("not a GeoJSON geometry", "不是有效的 GeoJSON 几何对象")
    try:
        geom = shape(geojson)
    except Exception as exc:  # shapely raises several kinds for malformed coordinates
        raise bad_request_data(f"invalid GeoJSON coordinates: {exc}", "GeoJSON 坐标无效") from exc
    if geom.is_empty:
        raise bad_request_data("empty GeoJSON geometry", "GeoJSON 几何对象为空")
    for x, y in _sample_coords(geom):
        if not (-180 <= x <= 180 and -90 <= y <= 90):
            raise bad_request_data("coordinates out of range (longitude, latitude)", "坐标超出范围（经度，纬度）")
    return geom


def _sample_coords(geom: BaseGeometry) -> list[tuple[float, float]]:
    minx, miny, maxx, maxy = geom.bounds
    return [(minx, miny), (maxx, maxy)]


def bbox_of(geojson: Any) -> tuple[float, float, float, float] | None:
    """(min_lon, min_lat, max_lon, max_lat) of a GeoJSON geometry, for the stored pre-filter columns."""
    if isinstance(geojson, dict) and geojson.get("type") == "Point":
        coords = geojson.get("coordinates")
        if isinstance(coords, list) and len(coords) >= 2:
            x, y = float(coords[0]), float(coords[1])
            return x, y, x, y
    geom = to_shape(geojson)
    minx, miny, maxx, maxy = geom.bounds
    return minx, miny, maxx, maxy


@dataclass
class GeoQuery:
    georel: str
    geometry: BaseGeometry
    geoproperty: str  # expanded IRI
    max_distance: float | None = None
    min_distance: float | None = None

    def __post_init__(self) -> None:
        c = self.geometry.centroid
        self._lon0, self._lat0 = c.x, c.y
        self._kx = METRES_PER_DEGREE * math.cos(math.radians(self._lat0))
        self._local = self._project(self.geometry)

    def _project(self, geom: BaseGeometry) -> BaseGeometry:
        lon0, lat0, kx = self._lon0, self._lat0, self._kx
        return shapely.transform(geom, lambda a: (a - [lon0, lat0]) * [kx, METRES_PER_DEGREE])

    def bbox(self) -> tuple[float, float, float, float] | None:
        """The box an entity's bounding box must intersect to possibly match; None when any may match."""
        minx, miny, maxx, maxy = self.geometry.bounds
        if self.georel == "near":
            if self.max_distance is None:
                return None
            dlat = self.max_distance / METRES_PER_DEGREE
            dlon = self.max_distance / max(self._kx, 1e-9)
            if not math.isfinite(dlon + dlat):
                return None
            # Within the world, as every stored geometry is: a distance larger than the earth covers it all.
            return max(minx - dlon, -180), max(miny - dlat, -90), min(maxx + dlon, 180), min(maxy + dlat, 90)
        if self.georel in ("disjoint",):
            return None
        return minx, miny, maxx, maxy

    def _distance(self, geom: BaseGeometry) -> float:
        if geom.geom_type == "Point" and self.geometry.geom_type == "Point":
            return _haversine(geom.x, geom.y, self._lon0, self._lat0)
        return float(self._project(geom).distance(self._local))

    def distance(self, geojson: Any) -> float | None:
        """Metres from the query geometry to a GeoJSON geometry; None when it is not a valid geometry."""
        try:
            return self._distance(to_shape(geojson))
        except ValidationFailed:
            return None

    def matches(self, geojson: Any) -> bool:
        try:
            geom = to_shape(geojson)
        except ValidationFailed:
            return False
        rel = self.georel
        if rel == "near":
            distance = self._distance(geom)
            if self.max_distance is not None and distance > self.max_distance:
                return False
            return not (self.min_distance is not None and distance < self.min_distance)
        if rel == "within":
            return bool(geom.within(self.geometry))
        if rel == "contains":
            return bool(geom.contains(self.geometry))
        if rel == "intersects":
            return bool(geom.intersects(self.geometry))
        if rel == "equals":
            return bool(geom.equals(self.geometry))
        if rel == "disjoint":
            return bool(geom.disjoint(self.geometry))
        return bool(geom.overlaps(self.geometry))


def _haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))


_NUMBER = re.compile(r"^(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$")


def _positive_number(text: str) -> float | None:
    """A JSON number above zero and finite (the grammar's PositiveNumber), or None."""
    if not _NUMBER.match(text.strip()):
        return None
    value = float(text)
    return value if 0 < value < math.inf else None


def parse_geoquery(georel: str | None, geometry: str | None, coordinates: Any,
                   geoproperty_iri: str) -> GeoQuery | None:
    """The geo-query of a request, or None when it has none; BadRequestData when it is incomplete."""
    if georel is None and geometry is None and coordinates is None:
        return None
    if not georel or not geometry or coordinates is None:
        raise bad_request_data("a geo-query needs georel, geometry and coordinates",
                               "地理查询需要 georel、geometry 和 coordinates")
    if not isinstance(georel, str) or not isinstance(geometry, str):
        raise bad_request_data("georel and geometry must be strings", "georel 和 geometry 必须是字符串")
    parts = georel.split(";")
    rel = parts[0]
    if rel not in GEORELS:
        raise bad_request_data(f"unknown georel {rel!r}", f"未知的 georel：{rel!r}")
    if geometry not in GEOMETRY_TYPES:
        raise bad_request_data(f"unknown geometry {geometry!r}", f"未知的几何类型：{geometry!r}")
    if isinstance(coordinates, str):
        try:
            coordinates = parse_json(coordinates)
        except ValueError as exc:
            raise bad_request_data("coordinates are not a JSON array", "coordinates 不是 JSON 数组") from exc
    if not isinstance(coordinates, list):
        raise bad_request_data("coordinates must be a JSON array", "coordinates 必须是 JSON 数组")
    geom = to_shape({"type": geometry, "coordinates": coordinates})
    query = GeoQuery(rel, geom, geoproperty_iri)
    if rel == "near":
        if len(parts) > 2:
            raise bad_request_data("near takes exactly one distance (maxDistance or minDistance)",
                                   "near 只能带一个距离参数（maxDistance 或 minDistance）")
        for modifier in parts[1:]:
            name, _, value = modifier.partition("==")
            metres = _positive_number(value)
            if metres is None:
                raise bad_request_data(f"the distance in {modifier!r} must be a finite number above zero",
                                       f"{modifier!r} 中的距离必须是大于零的有限数值")
            if name == "maxDistance":
                query.max_distance = metres
            elif name == "minDistance":
                query.min_distance = metres
            else:
                raise bad_request_data(f"unknown near modifier {name!r}", f"未知的 near 参数：{name!r}")
        if query.max_distance is None and query.min_distance is None:
            raise bad_request_data("near needs maxDistance or minDistance",
                                   "near 需要 maxDistance 或 minDistance")
        query.__post_init__()
    elif len(parts) > 1:
        raise bad_request_data(f"{rel} takes no modifiers", f"{rel} 不接受参数")
    return query


def parse_geoq(geo: Any, expand: Callable[[str], str], *, required: bool = True) -> GeoQuery | None:
    """The geo-query of a geoQ member (of a Query or a Subscription, clause 5.2.13); BadRequestData when it
    is malformed or, if `required`, when it lacks georel, geometry and coordinates (else None then)."""
    if not isinstance(geo, dict):
        raise bad_request_data("geoQ must be an object", "geoQ 必须是对象")
    geoproperty = geo.get("geoproperty")
    if geoproperty is not None and not isinstance(geoproperty, str):
        raise bad_request_data("geoproperty must be a string", "geoproperty 必须是字符串")
    query = parse_geoquery(geo.get("georel"), geo.get("geometry"), geo.get("coordinates"),
                           expand(geoproperty or "location"))
    if query is None and required:
        raise bad_request_data("geoQ needs georel, geometry and coordinates", "geoQ 需要 georel、geometry 和 coordinates")
    return query
