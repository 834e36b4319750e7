"""Address search and reverse geocoding over what the city has: its districts (areas), their 街道 (the
national division codes) and, where an OpenStreetMap extract was imported, the gazetteer.

Every answer carries the district that contains it (`AreaIndex.locate`), so a search for a 街道 without
any extract still answers its district, and a road's answer says which district it lies in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wecity.geo.divisions import Street, load_streets
from wecity.geo.gazetteer import Feature, Gazetteer
from wecity.geo.index import Area, AreaIndex

MAX_QUERY = 100
MAX_RESULTS = 20
REVERSE_RADIUS_M = 150.0
MAX_REVERSE_RADIUS_M = 500.0
# The order in which equally good matches are listed.
KIND_ORDER = ("district", "subdistrict", "place", "boundary", "road", "poi", "address")
GAZETTEER_FILE = "gazetteer.sqlite"
STREETS_FILE = "streets.csv"


@dataclass(frozen=True, slots=True)
class Place:
    """One search answer: a name, its kind, where it is and in which district."""

    name: str
    name_zh: str | None
    name_en: str | None
    kind: str  # district, subdistrict (街道/乡镇), place, boundary, road, poi, address
    lat: float
    lon: float
    district: Area | None
    category: str | None = None
    address: str | None = None
    # True when the point stands for a larger whole: a 街道 placed at its district, as the codes have no
    # coordinates.
    approximate: bool = False

    def label(self, locale: str) -> str:
        if locale.startswith("zh"):
            return self.name_zh or self.name
        return self.name_en or self.name


@dataclass(frozen=True, slots=True)
class Reverse:
    """What is at a point: the nearest named road (within the radius) and the district containing it."""

    road: Feature | None
    distance_m: float | None
    district: Area | None


def gazetteer_for(var_dir: Path) -> Gazetteer:
    return Gazetteer(var_dir / GAZETTEER_FILE)


def streets_for(var_dir: Path) -> tuple[Street, ...]:
    """The city's own streets file when the var dir has one, else the demo cities' shipped with the platform."""
    own = var_dir / STREETS_FILE
    return load_streets(str(own) if own.is_file() else None)


def _score(query: str, place: Place) -> tuple[int, int, int, str]:
    q = query.casefold()
    names = [n.casefold() for n in (place.name, place.name_zh, place.name_en) if n]
    match = 0 if q in names else 1 if any(n.startswith(q) for n in names) else 2
    return match, KIND_ORDER.index(place.kind), min(len(n) for n in names), place.name


def _contains(query: str, *names: str | None) -> bool:
    q = query.casefold()
    return any(n and q in n.casefold() for n in names)


def _districts(query: str, index: AreaIndex) -> Iterable[Place]:
    for area in index.areas:
        if _contains(query, area.name_zh, area.name_en):
            lat, lon = index.point_of(area)
            yield Place(area.name_zh, area.name_zh, area.name_en, "district", lat, lon, area, approximate=True)


def _streets(query: str, index: AreaIndex, streets: tuple[Street, ...]) -> Iterable[Place]:
    by_code = {a.code: a for a in index.areas}
    for street in streets:
        area = by_code.get(street.area_code)
        if area is not None and _contains(query, street.name):
            lat, lon = index.point_of(area)
            yield Place(street.name, street.name, None, "subdistrict", lat, lon, area, approximate=True)


def search(query: str, *, index: AreaIndex, gazetteer: Gazetteer, streets: tuple[Street, ...],
           limit: int = 10) -> list[Place]:
    """Places whose names contain the query, best first: exact names, then names starting with it; districts
    and 街道 before places, roads, POIs and addresses."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    found = [*_districts(query, index), *_streets(query, index, streets)]
    for f in gazetteer.search(query, limit=max(limit, 50)):
        found.append(Place(f.name, f.name_zh, f.name_en, f.kind, f.lat, f.lon, index.locate(f.lat, f.lon),
                           category=f.category, address=f.address))
    return sorted(found, key=lambda p: _score(query, p))[:limit]


def best_in_city(text: str, *, index: AreaIndex, gazetteer: Gazetteer, streets: tuple[Street, ...]) -> Place | None:
    """Where a report that gave only an address in words is placed: the best match of the whole text, else of
    its longest part (split at spaces and commas), that lies in one of the city's districts (anywhere when the
    city has none). Districts and 街道 are too coarse for a pin: only the gazetteer's roads, places, POIs and
    addresses count, so without an extract nothing is placed."""
    text = text.strip()[:MAX_QUERY]
    parts = sorted({p for p in re.split(r"[\s,，、;；]+", text) if len(p) >= 2 and p != text}, key=len, reverse=True)
    for query in [text, *parts][:4]:
        for place in search(query, index=index, gazetteer=gazetteer, streets=(), limit=MAX_RESULTS):
            if not place.approximate and (place.district is not None or not len(index)):
                return place
    return None


def reverse(lat: float, lon: float, *, index: AreaIndex, gazetteer: Gazetteer,
            radius_m: float = REVERSE_RADIUS_M) -> Reverse:
    found = gazetteer.nearest_road(lat, lon, min(radius_m, MAX_REVERSE_RADIUS_M))
    road, distance = found if found else (None, None)
    return Reverse(road, None if distance is None else round(distance, 1), index.locate(lat, lon))
