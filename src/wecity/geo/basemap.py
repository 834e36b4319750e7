"""The city's own street map: vector tiles built from an OpenStreetMap extract, kept as one PMTiles file.

`import_basemap` runs Debian's tilemaker with its OpenMapTiles-schema configuration on a `.osm.pbf`
extract, writes the tiles into one PMTiles archive and a `basemap.json` beside it in `<var>/basemap/`.
One file read by byte ranges needs no tile server: the platform serves it like a static file
(`wecity.geo.basemap_api`) and MapLibre reads the tiles it needs through the `pmtiles` protocol; a new
import replaces the file whole (rename), so a running server never reads a half-written map.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wecity.core.errors import DependencyUnavailable, ValidationFailed

ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
ATTRIBUTION_HTML = ('<a href="https://www.openstreetmap.org/copyright">© OpenStreetMap contributors</a> '
                    '(<a href="https://opendatacommons.org/licenses/odbl/">ODbL</a>)')
TILES_FILE = "city.pmtiles"
META_FILE = "basemap.json"
# Debian's tilemaker package ships the OpenMapTiles-schema profile as examples.
TILEMAKER_EXAMPLES = Path("/usr/share/doc/tilemaker/examples")
TILEMAKER_CONFIG = "config-openmaptiles.json"
TILEMAKER_PROCESS = "process-openmaptiles.lua"
# The names the tiles carry besides `name` (and the profile's own `name:latin`): the portal's languages.
LABEL_LANGUAGES = ("zh", "en")


def basemap_dir(var_dir: Path) -> Path:
    return var_dir / "basemap"


@dataclass(frozen=True, slots=True)
class Basemap:
    """An imported base map as `basemap.json` describes it."""

    path: Path  # the PMTiles file
    bounds: tuple[float, float, float, float]  # west, south, east, north (WGS-84)
    center: tuple[float, float]  # longitude, latitude
    minzoom: int
    maxzoom: int
    attribution: str
    layers: tuple[str, ...]
    size: int
    etag: str


def load_basemap(var_dir: Path) -> Basemap | None:
    """The imported base map, or None when there is none (or its files are incomplete)."""
    folder = basemap_dir(var_dir)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        tiles = folder / str(meta["tiles"])
        stat = tiles.stat()
        return Basemap(path=tiles, bounds=tuple(meta["bounds"]), center=tuple(meta["center"]),  # type: ignore[arg-type]
                       minzoom=int(meta["minzoom"]), maxzoom=int(meta["maxzoom"]),
                       attribution=str(meta.get("attribution") or ATTRIBUTION),
                       layers=tuple(meta.get("layers") or ()), size=stat.st_size,
                       etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"')
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_extract(path: Path) -> None:
    """Refuse, with a message a person can act on, a path that is no OpenStreetMap PBF file."""
    if not path.exists():
        raise ValidationFailed(f"no such file: {path}", message_zh=f"文件不存在：{path}", code="basemap.no_file")
    if not path.is_file():
        raise ValidationFailed(f"not a file: {path}", message_zh=f"不是文件：{path}", code="basemap.no_file")
    # A PBF file starts with a 4-byte length and a BlobHeader whose type is "OSMHeader".
    with path.open("rb") as f:
        head = f.read(4)
        size = struct.unpack(">I", head)[0] if len(head) == 4 else 0
        blob_header = f.read(size) if 0 < size <= 64 * 1024 else b""
    if b"\x0a\x09OSMHeader" not in blob_header:
        raise ValidationFailed(f"{path} is not an OpenStreetMap PBF extract (.osm.pbf)",
                               message_zh=f"{path} 不是 OpenStreetMap PBF 数据（.osm.pbf）", code="basemap.not_pbf")


def find_tilemaker(tilemaker: str = "tilemaker", examples: Path = TILEMAKER_EXAMPLES) -> tuple[str, Path, Path]:
    """tilemaker's executable and its OpenMapTiles config and process files, or why they are missing."""
    exe = shutil.which(tilemaker)
    if exe is None:
        raise DependencyUnavailable(
            f"{tilemaker} not found: install Debian's package tilemaker (apt-get install tilemaker)",
            message_zh=f"找不到 {tilemaker}：请安装 Debian 软件包 tilemaker（apt-get install tilemaker）",
            code="basemap.no_tilemaker")
    config, process = examples / TILEMAKER_CONFIG, examples / TILEMAKER_PROCESS
    for needed in (config, process):
        if not needed.is_file():
            raise DependencyUnavailable(
                f"{needed} is missing: reinstall Debian's package tilemaker (it ships the OpenMapTiles profile)",
                message_zh=f"缺少 {needed}：请重新安装 Debian 软件包 tilemaker", code="basemap.no_tilemaker")
    return exe, config, process


def import_basemap(extract: Path, out_dir: Path, *, tilemaker: str = "tilemaker",
                   examples: Path = TILEMAKER_EXAMPLES, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Build `out_dir/city.pmtiles` and `out_dir/basemap.json` from an OpenStreetMap extract; returns the
    metadata written. The previous map stays in place until the new one is complete."""
    extract, out_dir = extract.resolve(), out_dir.resolve()
    check_extract(extract)
    exe, config_path, process_path = find_tilemaker(tilemaker, examples)
    started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".import-", dir=out_dir) as work_name:
        work = Path(work_name)
        bounds = extract_bounds(extract)
        config = work / "config.json"
        config.write_text(json.dumps(tilemaker_config(config_path)), encoding="utf-8")
        process = work / "process.lua"
        process.write_text(tilemaker_process(process_path), encoding="utf-8")
        mbtiles = work / "tiles.mbtiles"
        source = extract
        say(f"tilemaker: {extract.name} ({extract.stat().st_size / 1e6:.1f} MB) ...")
        ok, log = _run_tilemaker(exe, source, mbtiles, config, process, bounds, work)
        if not ok and "Could not find node" in log:
            # An extract cut without its ways' nodes (a simple bounding-box cut): keep what is complete.
            say("the extract has ways whose nodes it lacks; building from its complete part ...")
            source = work / "complete.osm.pbf"
            complete_extract(extract, source)
            ok, log = _run_tilemaker(exe, source, mbtiles, config, process, bounds, work)
        if not ok:
            raise DependencyUnavailable("tilemaker failed:\n" + log[-2000:],
                                        message_zh="tilemaker 运行失败：\n" + log[-2000:], code="basemap.tilemaker_failed")
        staged = work / TILES_FILE
        meta = mbtiles_to_pmtiles(mbtiles, staged)
        meta.update(
            tiles=TILES_FILE, attribution=ATTRIBUTION, source=extract.name, source_sha256=_sha256(extract),
            built_at=datetime.now(UTC).isoformat(timespec="seconds"), tilemaker=_version(exe),
            build_seconds=round(time.monotonic() - started, 1), bytes=staged.stat().st_size)
        os.replace(staged, out_dir / TILES_FILE)
        staged_meta = work / META_FILE
        staged_meta.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(staged_meta, out_dir / META_FILE)
    return meta


def tilemaker_config(path: Path) -> dict[str, Any]:
    """Debian's OpenMapTiles config without the layers read from shapefiles (ocean, Natural Earth), which
    no city extract comes with; everything else is drawn from the extract itself."""
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    config["layers"] = {name: layer for name, layer in config["layers"].items() if "source" not in layer}
    settings = config.setdefault("settings", {})
    settings["name"] = "WeCity base map"
    settings["description"] = "Vector tiles in the OpenMapTiles schema, from OpenStreetMap"
    settings.setdefault("filemetadata", {}).pop("tiles", None)
    settings["filemetadata"]["attribution"] = ATTRIBUTION
    return config


def tilemaker_process(path: Path) -> str:
    """Debian's OpenMapTiles process script, then names written as the portal reads them: `name` and,
    where the map has them, `name:zh` and `name:en` (the profile writes only `name:latin` by default)."""
    languages = ", ".join(json.dumps(lang) for lang in LABEL_LANGUAGES)
    return f"""dofile({json.dumps(str(path))})

local profile_names = SetNameAttributes
function SetNameAttributes(obj)
	profile_names(obj)
	local name = obj:Find("name")
	if name ~= "" then obj:Attribute("name", name) end
	for _, lang in ipairs({{{languages}}}) do
		local value = obj:Find("name:" .. lang)
		if value ~= "" then obj:Attribute("name:" .. lang, value) end
	end
end
"""


def _run_tilemaker(exe: str, source: Path, mbtiles: Path, config: Path, process: Path,
                   bounds: tuple[float, float, float, float], work: Path) -> tuple[bool, str]:
    mbtiles.unlink(missing_ok=True)
    command = [exe, "--input", str(source), "--output", str(mbtiles), "--config", str(config),
               "--process", str(process), "--bbox", ",".join(f"{v:.7f}" for v in bounds)]
    result = subprocess.run(command, cwd=work, capture_output=True, text=True, errors="replace")
    log = result.stdout + result.stderr
    return result.returncode == 0 and mbtiles.is_file(), log


def extract_bounds(path: Path) -> tuple[float, float, float, float]:
    """West, south, east, north of an extract: its header's box, else the extent of its nodes."""
    import osmium

    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if box.valid():
        return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)
    west = south = 180.0
    east = north = -180.0
    for node in osmium.FileProcessor(str(path), osmium.osm.NODE):
        if not isinstance(node, osmium.osm.Node):
            continue
        lon, lat = node.location.lon, node.location.lat
        west, east, south, north = min(west, lon), max(east, lon), min(south, lat), max(north, lat)
    if west > east:
        raise ValidationFailed(f"{path} holds no nodes", message_zh=f"{path} 中没有节点", code="basemap.empty")
    return (west, south, east, north)


def complete_extract(source: Path, target: Path) -> None:
    """A copy of `source` without references to what it lacks: ways lose the nodes the file does not
    hold (and go when fewer than two remain), relations lose the ways that went."""
    import osmium

    kept: set[int] = set()
    entities = osmium.osm.NODE | osmium.osm.WAY | osmium.osm.RELATION
    writer = osmium.SimpleWriter(str(target))
    try:
        for obj in osmium.FileProcessor(str(source), entities).with_locations():
            if isinstance(obj, osmium.osm.Node):
                writer.add_node(obj)
            elif isinstance(obj, osmium.osm.Way):
                refs = [n.ref for n in obj.nodes if n.location.valid()]
                if len(refs) >= 2:
                    kept.add(obj.id)
                    writer.add_way(obj.replace(nodes=refs))
            elif isinstance(obj, osmium.osm.Relation):
                members = [(m.type, m.ref, m.role) for m in obj.members if m.type != "w" or m.ref in kept]
                if members:
                    writer.add_relation(obj.replace(members=members))
    finally:
        writer.close()


def mbtiles_to_pmtiles(mbtiles: Path, target: Path) -> dict[str, Any]:
    """Copy tilemaker's MBTiles into one PMTiles archive (tiles gzipped, in tile-id order), with the
    TileJSON metadata MapLibre reads (vector_layers, attribution); returns what basemap.json keeps."""
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import write

    with sqlite3.connect(f"file:{mbtiles}?mode=ro", uri=True) as conn:
        metadata = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
        layers = json.loads(metadata.get("json") or "{}").get("vector_layers", [])
        rows = conn.execute("SELECT zoom_level, tile_column, tile_row FROM tiles").fetchall()
        ids = sorted((zxy_to_tileid(z, x, (1 << z) - 1 - y), z, x, y) for z, x, y in rows)
        west, south, east, north = (float(v) for v in metadata["bounds"].split(","))
        minzoom, maxzoom = int(metadata["minzoom"]), int(metadata["maxzoom"])
        center = ((west + east) / 2, (south + north) / 2)
        with write(str(target)) as writer:
            for tile_id, z, x, y in ids:
                data = conn.execute("SELECT tile_data FROM tiles WHERE zoom_level=? AND tile_column=? AND tile_row=?",
                                    (z, x, y)).fetchone()[0]
                if data[:2] != b"\x1f\x8b":
                    data = gzip.compress(data, mtime=0)
                writer.write_tile(tile_id, data)
            header = {
                "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                "min_zoom": minzoom, "max_zoom": maxzoom,
                "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
                "center_zoom": min(maxzoom, 14), "center_lon_e7": int(center[0] * 1e7),
                "center_lat_e7": int(center[1] * 1e7),
            }
            writer.finalize(header, {"name": "WeCity base map", "format": "pbf", "attribution": ATTRIBUTION,
                                     "vector_layers": layers})
    return {"bounds": [west, south, east, north], "center": list(center), "minzoom": minzoom, "maxzoom": maxzoom,
            "layers": [layer["id"] for layer in layers], "tile_count": len(ids)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version(exe: str) -> str:
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, errors="replace")
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0] if first else "tilemaker"


def current_basemap(var_dir: Path, services: dict[str, Any]) -> Basemap | None:
    """The imported base map, read again only when `basemap.json` changes (an import while serving);
    `services` is the app's own (AppContext.services), so each app keeps its own copy."""
    try:
        stamp = (basemap_dir(var_dir) / META_FILE).stat().st_mtime_ns
    except OSError:
        return None
    cached = services.get("geo.basemap")
    if cached is not None and cached[0] == stamp:
        return cached[1]  # type: ignore[no-any-return]
    basemap = load_basemap(var_dir)
    services["geo.basemap"] = (stamp, basemap)
    return basemap
