"""Geo verbs: import areas from GeoJSON, load the lookup index, describe the jurisdiction."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from shapely.geometry import mapping, shape
from shapely.validation import make_valid
from sqlalchemy.engine import Connection

from wecity.core import cache
from wecity.core.clock import CITY_TZ
from wecity.core.errors import ValidationFailed
from wecity.core.worktime import WorkCalendar, load_calendar
from wecity.geo.coords import CoordSystem, to_wgs84
from wecity.geo.index import Area, AreaIndex
from wecity.geo.models import areas, jurisdiction


def _convert_ring(ring: list[list[float]], system: CoordSystem) -> list[list[float]]:
    out = []
    for point in ring:
        lat, lon = to_wgs84(point[1], point[0], system)
        out.append([round(lon, 7), round(lat, 7)])
    return out


def geometry_to_wgs84(geometry: dict[str, Any], system: CoordSystem | str) -> dict[str, Any]:
    """A Polygon/MultiPolygon GeoJSON geometry with every vertex converted to WGS-84, made valid."""
    system = CoordSystem(system)
    kind = geometry.get("type")
    if kind == "Polygon":
        polygons = [geometry["coordinates"]]
    elif kind == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise ValidationFailed(f"area geometry must be Polygon or MultiPolygon, not {kind!r}",
                               message_zh=f"区域几何必须是 Polygon 或 MultiPolygon，而不是 {kind}")
    converted = {"type": "MultiPolygon",
                 "coordinates": [[_convert_ring(ring, system) for ring in poly] for poly in polygons]}
    geom = shape(converted)
    if not geom.is_valid:
        geom = make_valid(geom)
    return dict(mapping(geom))


def read_feature_collection(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationFailed(f"cannot read GeoJSON from {path}: {exc}", message_zh=f"无法读取 GeoJSON：{path}") from exc
    if data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise ValidationFailed("expected a GeoJSON FeatureCollection", message_zh="需要 GeoJSON FeatureCollection")
    return data["features"]


def import_areas(conn: Connection, features: list[dict[str, Any]], *, coord_system: CoordSystem | str,
                 now: datetime, name_property: str = "name", name_en_property: str = "name_en",
                 code_property: str = "adcode", english_names: dict[str, str] | None = None,
                 replace: bool = True) -> list[str]:
    """Store each feature as an area (by code: insert or update); return the names imported.

    With `replace`, areas that are not in the file are removed, so the file is the city's new map.
    """
    english_names = english_names or {}
    imported: list[str] = []
    codes: list[str] = []
    for n, feature in enumerate(features):
        props = feature.get("properties") or {}
        name = props.get(name_property)
        if not name or not feature.get("geometry"):
            raise ValidationFailed(f"feature {n} has no {name_property!r} property or no geometry",
                                   message_zh=f"第 {n} 个要素缺少 {name_property} 属性或几何")
        code = str(props.get(code_property) or name)
        values = {
            "name_zh": str(name),
            "name_en": str(props.get(name_en_property) or english_names.get(str(name)) or name),
            "kind": str(props.get("level") or "district"),
            "geometry": geometry_to_wgs84(feature["geometry"], coord_system),
            "imported_at": now,
        }
        existing = conn.execute(sa.select(areas.c.id).where(areas.c.code == code)).first()
        if existing:
            conn.execute(areas.update().where(areas.c.id == existing.id).values(**values))
        else:
            conn.execute(areas.insert().values(code=code, **values))
        imported.append(str(name))
        codes.append(code)
    if replace and codes:
        conn.execute(areas.delete().where(areas.c.code.not_in(codes)))
    return imported


def current_area_index(conn: Connection) -> AreaIndex:
    """The area index as the database has it now, give or take `cache.DEFAULT_TTL`: what a write that
    locates a report uses, so that areas imported while the servers run (`wecity city import-areas`) are
    used within seconds, not after a restart (a report located in a replaced area failed on its key)."""
    from wecity.core import cache

    return cache.cached(conn, ("area index",), lambda: load_area_index(conn))  # type: ignore[no-any-return]


def load_area_index(conn: Connection) -> AreaIndex:
    """The lookup index of the stored areas; built again only when they differ from those of a recent build."""
    rows = conn.execute(sa.select(areas.c.id, areas.c.code, areas.c.name_zh, areas.c.name_en,
                                  sa.cast(areas.c.geometry, sa.Text)).order_by(areas.c.id)).all()
    return _index_of(tuple((r[0], r[1], r[2], r[3], r[4]) for r in rows))


@functools.lru_cache(maxsize=8)
def _index_of(rows: tuple[tuple[int, str, str, str, str], ...]) -> AreaIndex:
    # Keyed by the areas as stored, geometry text included: reading that text costs far less than building
    # the grid, a change by any process or at any time shows in the next load, and databases holding the
    # same map (every test's demo city) share one index.
    return AreaIndex([(Area(area_id, code, zh, en), json.loads(geometry)) for area_id, code, zh, en, geometry in rows])


DEFAULT_TIMEZONE = CITY_TZ.key


def set_jurisdiction(conn: Connection, *, id: str, name_zh: str, name_en: str, adcode: str | None = None,
                     timezone: str = DEFAULT_TIMEZONE, center: tuple[float, float] | None = None) -> None:
    ZoneInfo(timezone)  # an unknown zone fails here, not when a page is drawn
    cache.invalidate(conn, "geo.timezone")
    conn.execute(jurisdiction.delete())
    conn.execute(jurisdiction.insert().values(
        id=id, name_zh=name_zh, name_en=name_en, adcode=adcode, timezone=timezone,
        center_lat=center[0] if center else None, center_long=center[1] if center else None))


def get_jurisdiction(conn: Connection) -> Any:
    return conn.execute(sa.select(jurisdiction)).first()


def city_timezone(conn: Connection) -> ZoneInfo:
    """The city's own time zone (its jurisdiction's), in which its days, working hours and dates are read."""
    def load() -> str:
        name = conn.execute(sa.select(jurisdiction.c.timezone)).scalar()
        return name or DEFAULT_TIMEZONE

    return ZoneInfo(cache.cached(conn, ("geo.timezone",), load))


def city_today(conn: Connection, now: datetime) -> date:
    """The city's date at `now`: due dates, validity and eligibility are counted in the city's days, so a
    moment just after midnight UTC is still yesterday in New York and already today in Shanghai."""
    return now.astimezone(city_timezone(conn)).date()


def city_calendar(conn: Connection, *, hours: str | None = None) -> WorkCalendar:
    """The city's working calendar, read in the city's own zone (its working days and hours are local)."""
    return load_calendar(conn, hours=hours, tz=city_timezone(conn))


def list_areas(conn: Connection, *, with_geometry: bool = False) -> list[dict[str, Any]]:
    cols = [areas.c.id, areas.c.code, areas.c.name_zh, areas.c.name_en, areas.c.kind]
    if with_geometry:
        cols.append(areas.c.geometry)
    return [dict(r._mapping) for r in conn.execute(sa.select(*cols).order_by(areas.c.id))]
