"""The gazetteer: named roads, places, POIs and addresses of an OpenStreetMap extract, in one SQLite file.

`build_gazetteer(pbf, out)` reads the extract once with pyosmium and writes a new file beside `out`, renamed
over it when complete, so readers never see half a build. `Gazetteer(path)` reads it: substring search over
the names (FTS5 with the trigram tokenizer, so "人民" finds "人民东路" and "kirnu" finds "Hiidenkirnuntie")
and the nearest named road of a point (an R*Tree over the roads' lines).

The file is SQLite whatever database the platform runs on: it is built in one pass from a file, replaced
whole and only read afterwards, so every process opens it read-only and no server is asked.

Trigram search needs three characters. One or two (Chinese street names are often two or three: 五一路,
湘江) are answered from `name_keys`, every name variant in lower case with an index, as a prefix match.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = "1"
# Ways of a road are cut into lines of at most this many points, so that each R*Tree box is small.
LINE_POINTS = 16
# The kinds of feature, in the order a search lists equally good matches.
KINDS = ("place", "boundary", "road", "poi", "address")
POI_KEYS = ("amenity", "shop", "tourism", "office", "leisure", "historic", "craft", "healthcare")
PLACE_VALUES = frozenset({"city", "town", "village", "borough", "suburb", "quarter", "neighbourhood", "hamlet",
                          "locality", "isolated_dwelling", "city_block", "square", "island"})
# Ways tagged highway=* that are not roads one stands on.
NOT_ROADS = frozenset({"bus_stop", "platform", "street_lamp", "elevator", "proposed", "construction", "razed",
                       "abandoned"})
MIN_TRIGRAM = 3
CANDIDATES = 200  # FTS rows ranked in Python for one search
MATCHED = 5000  # FTS matches ranked by the index for one search

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE features (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,          -- road, poi, address, place, boundary
    name TEXT NOT NULL,          -- OSM name (an address: street and house number)
    name_zh TEXT,
    name_en TEXT,
    category TEXT,               -- amenity=cafe, place=suburb, admin_level=8, highway=residential
    address TEXT,                -- addr:* of the feature, as one line
    lat REAL NOT NULL,           -- a point on or in the feature (WGS-84)
    lon REAL NOT NULL,
    osm TEXT NOT NULL            -- n123, w456, r789 (a road merged from many ways: its first way)
);
CREATE VIRTUAL TABLE features_fts USING fts5(
    name, name_zh, name_en, address, content='features', content_rowid='id', tokenize='trigram');
CREATE TABLE name_keys (key TEXT NOT NULL, feature_id INTEGER NOT NULL, PRIMARY KEY (key, feature_id))
    WITHOUT ROWID;
CREATE TABLE road_lines (id INTEGER PRIMARY KEY, feature_id INTEGER NOT NULL, coords BLOB NOT NULL);
CREATE VIRTUAL TABLE road_rtree USING rtree(id, min_lon, max_lon, min_lat, max_lat);
"""


@dataclass(slots=True)
class GazetteerStats:
    """What one build stored, and how long it took."""

    roads: int = 0
    road_lines: int = 0
    pois: int = 0
    addresses: int = 0
    places: int = 0
    boundaries: int = 0
    seconds: float = 0.0
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class _Road:
    name: str
    name_zh: str | None
    name_en: str | None
    category: str
    osm: str
    lines: list[list[tuple[float, float]]] = field(default_factory=list)


def _names(tags: Any) -> tuple[str | None, str | None, str | None]:
    return tags.get("name"), tags.get("name:zh"), tags.get("name:en")


def _address(tags: Any) -> str | None:
    street = tags.get("addr:street") or tags.get("addr:place")
    parts = [" ".join(p for p in (street, tags.get("addr:housenumber")) if p),
             " ".join(p for p in (tags.get("addr:postcode"), tags.get("addr:city")) if p)]
    text = ", ".join(p for p in parts if p)
    return text or None


def _poi_category(tags: Any) -> str | None:
    for key in POI_KEYS:
        value = tags.get(key)
        if value:
            return f"{key}={value}"
    return None


def _way_points(way: Any) -> list[tuple[float, float]]:
    return [(n.lon, n.lat) for n in way.nodes if n.location.valid()]


def _middle(points: list[tuple[float, float]]) -> tuple[float, float]:
    """A point of the line half way along it (by vertices): on the road, unlike a centroid."""
    if len(points) == 1:
        return points[0]
    mid = len(points) // 2
    (x1, y1), (x2, y2) = points[mid - 1], points[mid]
    return (x1 + x2) / 2, (y1 + y2) / 2


def _mean(points: list[tuple[float, float]]) -> tuple[float, float]:
    unique = list(dict.fromkeys(points))
    return sum(p[0] for p in unique) / len(unique), sum(p[1] for p in unique) / len(unique)


def _chunks(points: list[tuple[float, float]]) -> Iterator[list[tuple[float, float]]]:
    step = LINE_POINTS - 1
    for start in range(0, max(1, len(points) - 1), step):
        chunk = points[start:start + LINE_POINTS]
        if len(chunk) >= 2:
            yield chunk


class _Writer:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.next_id = 1
        self.stats = GazetteerStats()

    def feature(self, kind: str, name: str, name_zh: str | None, name_en: str | None, category: str | None,
                address: str | None, lon: float, lat: float, osm: str) -> int:
        fid = self.next_id
        self.next_id += 1
        self.conn.execute("INSERT INTO features VALUES (?,?,?,?,?,?,?,?,?,?)",
                          (fid, kind, name, name_zh, name_en, category, address, round(lat, 7), round(lon, 7), osm))
        keys = {n.casefold() for n in (name, name_zh, name_en) if n}
        self.conn.executemany("INSERT OR IGNORE INTO name_keys VALUES (?,?)", [(k, fid) for k in keys])
        attr = {"road": "roads", "poi": "pois", "address": "addresses", "place": "places", "boundary": "boundaries"}
        setattr(self.stats, attr[kind], getattr(self.stats, attr[kind]) + 1)
        return fid

    def road(self, road: _Road) -> None:
        longest = max(road.lines, key=len)
        lon, lat = _middle(longest)
        fid = self.feature("road", road.name, road.name_zh, road.name_en, road.category, None, lon, lat, road.osm)
        for line in road.lines:
            for chunk in _chunks(line):
                xs, ys = [p[0] for p in chunk], [p[1] for p in chunk]
                coords = array("d", [c for p in chunk for c in p]).tobytes()
                line_id = self.conn.execute("INSERT INTO road_lines (feature_id, coords) VALUES (?,?)",
                                            (fid, coords)).lastrowid
                self.conn.execute("INSERT INTO road_rtree VALUES (?,?,?,?,?)",
                                  (line_id, min(xs), max(xs), min(ys), max(ys)))
                self.stats.road_lines += 1


def _read(pbf_path: Path, writer: _Writer) -> None:
    import osmium
    import shapely

    roads: dict[str, _Road] = {}
    boundaries = osmium.filter.TagFilter(("boundary", "administrative"))
    wkb = osmium.geom.WKBFactory()
    processor = osmium.FileProcessor(str(pbf_path)).with_locations().with_areas(boundaries)
    for item in processor:
        obj: Any = item  # a Node, Way or Area: each branch below asks which before it reads
        tags = obj.tags
        name, name_zh, name_en = _names(tags)
        if obj.is_area():
            if name and tags.get("boundary") == "administrative":
                try:
                    point = shapely.from_wkb(wkb.create_multipolygon(obj)).representative_point()
                except (RuntimeError, shapely.errors.ShapelyError):
                    continue  # a boundary whose rings do not close in this extract
                writer.feature("boundary", name, name_zh, name_en, f"admin_level={tags.get('admin_level', '')}",
                               None, point.x, point.y, ("w" if obj.from_way() else "r") + str(obj.orig_id()))
            continue
        if obj.is_relation():
            continue
        is_way = obj.is_way()
        if is_way:
            points = _way_points(obj)
            if not points:
                continue
            osm = f"w{obj.id}"
        else:
            if not obj.location.valid():
                continue
            points = [(obj.location.lon, obj.location.lat)]
            osm = f"n{obj.id}"
        highway = tags.get("highway")
        if is_way and name and highway and highway not in NOT_ROADS and len(points) >= 2:
            road = roads.get(name)
            if road is None:
                road = roads[name] = _Road(name, name_zh, name_en, f"highway={highway}", osm)
            road.name_zh = road.name_zh or name_zh
            road.name_en = road.name_en or name_en
            road.lines.append(points)
            continue
        lon, lat = _mean(points)
        address = _address(tags)
        category = _poi_category(tags)
        place = tags.get("place")
        if name and not is_way and place in PLACE_VALUES:
            writer.feature("place", name, name_zh, name_en, f"place={place}", address, lon, lat, osm)
        elif name and category:
            writer.feature("poi", name, name_zh, name_en, category, address, lon, lat, osm)
        elif address and tags.get("addr:housenumber"):
            writer.feature("address", address.split(", ")[0], None, None, None, address, lon, lat, osm)
    for road in roads.values():
        writer.road(road)


def build_gazetteer(pbf_path: Path | str, out_path: Path | str) -> GazetteerStats:
    """Read an OpenStreetMap extract (.osm.pbf, .osm, .osm.bz2) into a new gazetteer file at `out_path`.

    The file is written beside `out_path` and renamed over it when complete; raises ValueError for a file
    osmium cannot read."""
    started = time.perf_counter()
    pbf_path, out_path = Path(pbf_path), Path(out_path)
    if not pbf_path.is_file():
        raise ValueError(f"no such file: {pbf_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    partial.unlink(missing_ok=True)
    conn = sqlite3.connect(partial)
    try:
        conn.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        writer = _Writer(conn)
        try:
            _read(pbf_path, writer)
        except RuntimeError as exc:  # osmium's word for a file it cannot parse
            raise ValueError(f"cannot read {pbf_path.name} as OpenStreetMap data: {exc}") from exc
        conn.execute("INSERT INTO features_fts(features_fts) VALUES ('rebuild')")
        stats = writer.stats
        conn.executemany("INSERT INTO meta VALUES (?,?)", [
            ("format", FORMAT), ("source", pbf_path.name), ("source_bytes", str(pbf_path.stat().st_size)),
            ("built_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())),
            *((k, str(v)) for k, v in stats.as_dict().items() if k not in ("seconds", "bytes"))])
        conn.commit()
        conn.execute("INSERT INTO features_fts(features_fts) VALUES ('optimize')")
        conn.commit()
        conn.execute("VACUUM")
    except BaseException:
        conn.close()
        partial.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(partial, out_path)
    stats.seconds = round(time.perf_counter() - started, 3)
    stats.bytes = out_path.stat().st_size
    return stats


@dataclass(frozen=True, slots=True)
class Feature:
    id: int
    kind: str
    name: str
    name_zh: str | None
    name_en: str | None
    category: str | None
    address: str | None
    lat: float
    lon: float

    def label(self, locale: str) -> str:
        """The name in the reader's language where the map has it."""
        if locale.startswith("zh"):
            return self.name_zh or self.name
        return self.name_en or self.name


_COLUMNS = "f.id, f.kind, f.name, f.name_zh, f.name_en, f.category, f.address, f.lat, f.lon"


def _feature(row: tuple[Any, ...]) -> Feature:
    return Feature(*row)


def fts_phrase(query: str) -> str:
    """The query as one FTS5 string: a substring to find anywhere in a name, whatever characters it has."""
    return '"' + query.replace('"', '""') + '"'


def rank(query: str, found: Iterable[Feature]) -> list[Feature]:
    """Exact names first, then names that start with the query, then the rest; places before roads before
    POIs before addresses; shorter names first."""
    q = query.casefold()

    def score(f: Feature) -> tuple[int, int, int, str]:
        names = [n.casefold() for n in (f.name, f.name_zh, f.name_en) if n]
        match = 0 if q in names else 1 if any(n.startswith(q) for n in names) else 2
        return match, KINDS.index(f.kind), min(len(n) for n in names), f.name

    return sorted(found, key=score)


def metres_between(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Distance on a local plane: good to a fraction of a percent over the few hundred metres it measures."""
    kx = 111_320.0 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot((lon2 - lon1) * kx, (lat2 - lat1) * 110_574.0)


def _to_segment(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


class Gazetteer:
    """A gazetteer file opened read-only: one connection per thread, opened again when the file is replaced."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()

    def exists(self) -> bool:
        return self.path.is_file()

    def _conn(self) -> sqlite3.Connection | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.stamp != stamp:
            if conn is not None:
                conn.close()
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.conn, self._local.stamp = conn, stamp
        return conn

    def meta(self) -> dict[str, str]:
        conn = self._conn()
        return dict(conn.execute("SELECT key, value FROM meta").fetchall()) if conn else {}

    def search(self, query: str, limit: int = 10) -> list[Feature]:
        """Features whose names contain `query` (case-insensitive), best first; names that start with it
        when it is shorter than three characters."""
        query = query.strip()
        conn = self._conn()
        if conn is None or not query:
            return []
        # Names that start with the query, by an index range: the best answers, whatever else matches.
        key = query.casefold()
        rows = conn.execute(
            f"SELECT DISTINCT {_COLUMNS} FROM name_keys k JOIN features f ON f.id = k.feature_id "
            "WHERE k.key >= ? AND k.key < ? LIMIT ?", (key, key + "\U0010ffff", CANDIDATES)).fetchall()
        if len(query) >= MIN_TRIGRAM:
            # And names (and address lines) that contain it. Ranking every match costs as much as the matches:
            # a city's name or a postcode is in nearly every address (270 ms over 200,000), so the first
            # MATCHED are ranked and the best kept; a name that starts with the query is found above anyway.
            rows += conn.execute(
                f"SELECT {_COLUMNS} FROM (SELECT rowid, rank FROM features_fts WHERE features_fts MATCH ? LIMIT ?) m "
                "JOIN features f ON f.id = m.rowid ORDER BY m.rank LIMIT ?",
                (fts_phrase(query), MATCHED, CANDIDATES)).fetchall()
        unique = {row[0]: row for row in rows}  # a feature found both ways, once
        return rank(query, map(_feature, unique.values()))[:limit]

    def nearest_road(self, lat: float, lon: float, max_m: float) -> tuple[Feature, float] | None:
        """The named road nearest the point within `max_m` metres, with its distance in metres."""
        conn = self._conn()
        if conn is None:
            return None
        kx = 111_320.0 * math.cos(math.radians(lat))
        ky = 110_574.0
        dlon, dlat = max_m / max(kx, 1.0), max_m / ky
        rows = conn.execute(
            "SELECT l.feature_id, l.coords FROM road_rtree r JOIN road_lines l ON l.id = r.id "
            "WHERE r.max_lon >= ? AND r.min_lon <= ? AND r.max_lat >= ? AND r.min_lat <= ?",
            (lon - dlon, lon + dlon, lat - dlat, lat + dlat)).fetchall()
        best: tuple[int, float] | None = None
        for feature_id, blob in rows:
            c = array("d")
            c.frombytes(blob)
            # Metres on a plane centred on the point.
            xs = [(c[i] - lon) * kx for i in range(0, len(c), 2)]
            ys = [(c[i] - lat) * ky for i in range(1, len(c), 2)]
            d = min(_to_segment(0.0, 0.0, xs[i], ys[i], xs[i + 1], ys[i + 1]) for i in range(len(xs) - 1))
            if d <= max_m and (best is None or d < best[1]):
                best = (feature_id, d)
        if best is None:
            return None
        row = conn.execute(f"SELECT {_COLUMNS} FROM features f WHERE f.id = ?", (best[0],)).fetchone()
        return _feature(row), best[1]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
