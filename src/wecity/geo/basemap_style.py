"""The platform's own MapLibre style for its base map (OpenMapTiles schema, as tilemaker writes it).

Quiet colours, so that the districts, pins and case markers drawn over it stay the loudest thing on the
map: land use and parks, water, roads by class (casing and fill), buildings from zoom 14, street names
along their streets, and place names. The style names no `glyphs` URL: MapLibre then draws every label
itself with the fonts the reader's device has (Chinese through `localIdeographFontFamily`), so the map
needs no font files and nothing from another server.
"""

from __future__ import annotations

from typing import Any

from wecity.geo.basemap import ATTRIBUTION_HTML, Basemap

SOURCE = "city"
TILES_PATH = "/api/v1/basemap/city.pmtiles"
# CSS font families, tried in order for each character; MapLibre reads the weight from the first name.
FONT = ["Noto Sans", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", "sans-serif"]
FONT_BOLD = ["Noto Sans Bold", *FONT]
# For Chinese characters (MapLibre's localIdeographFontFamily, a page passes it to the map).
IDEOGRAPH_FONTS = "Noto Sans CJK SC,WenQuanYi Micro Hei,Microsoft YaHei,PingFang SC,sans-serif"

COLOURS = {
    "background": "#f3f0ea", "residential": "#ebe6df", "commercial": "#f1e4e0", "industrial": "#ebe4ee",
    "institutional": "#f1eadb", "park": "#d6e9c6", "wood": "#cfe2bd", "grass": "#dcebcc", "farmland": "#ecefd6",
    "water": "#aacbe6", "water_text": "#3b6e99", "building": "#e0d9cf", "building_line": "#d0c6b9",
    "casing": "#c9beb0", "minor": "#ffffff", "tertiary": "#fffaf0", "secondary": "#fdf1c4",
    "primary": "#fbe0a6", "trunk": "#f8c98a", "motorway": "#f4b274", "path": "#a99f93", "rail": "#9e9e9e",
    "text": "#333333", "text_minor": "#555555", "halo": "#ffffff", "boundary": "#a18fb5",
}

MAJOR = ["motorway", "trunk", "primary"]
MIDDLE = ["secondary", "tertiary"]
MINOR = ["minor", "service", "track", "raceway", "busway"]


def label(locale: str) -> list[Any]:
    """The label of a feature in the portal's language: the Chinese name where the map has one, else the
    name on the ground; in English the English name, else the Latin one, else the local one."""
    if locale == "en":
        return ["coalesce", ["get", "name:en"], ["get", "name_en"], ["get", "name:latin"], ["get", "name"]]
    return ["coalesce", ["get", "name:zh"], ["get", "name_zh"], ["get", "name"], ["get", "name:latin"]]


def _by_zoom(*stops: float) -> list[Any]:
    """A width or size growing exponentially between (zoom, value) pairs."""
    return ["interpolate", ["exponential", 1.5], ["zoom"], *stops]


def _fill(layer_id: str, source_layer: str, colour: str, classes: list[str] | None = None,
          minzoom: int = 0) -> dict[str, Any]:
    layer: dict[str, Any] = {"id": layer_id, "type": "fill", "source": SOURCE, "source-layer": source_layer,
                             "minzoom": minzoom, "paint": {"fill-color": colour}}
    if classes:
        layer["filter"] = ["in", ["get", "class"], ["literal", classes]]
    return layer


def _road(layer_id: str, classes: list[str], colour: str, widths: tuple[float, ...], *,
          casing: bool = False, minzoom: int = 0, dash: list[float] | None = None) -> dict[str, Any]:
    # (zoom, width) pairs; a casing is the same line drawn wider underneath.
    stops = [v + 1.5 if casing and i % 2 else v for i, v in enumerate(widths)]
    layer: dict[str, Any] = {
        "id": layer_id, "type": "line", "source": SOURCE, "source-layer": "transportation", "minzoom": minzoom,
        "filter": ["all", ["in", ["get", "class"], ["literal", classes]],
                   ["!=", ["get", "brunnel"], "tunnel"]],
        "layout": {"line-cap": "round", "line-join": "round"},
        "paint": {"line-color": COLOURS["casing"] if casing else colour, "line-width": _by_zoom(*stops)},
    }
    if dash:
        layer["layout"] = {"line-join": "round"}
        layer["paint"]["line-dasharray"] = dash
    return layer


def style(basemap: Basemap, locale: str) -> dict[str, Any]:
    """The MapLibre style of the imported base map, its labels in `locale` ("zh_CN" or "en")."""
    name = label(locale)
    layers: list[dict[str, Any]] = [
        {"id": "background", "type": "background", "paint": {"background-color": COLOURS["background"]}},
        _fill("landuse-residential", "landuse", COLOURS["residential"], ["residential", "suburb", "neighbourhood"]),
        _fill("landuse-commercial", "landuse", COLOURS["commercial"], ["commercial", "retail"]),
        _fill("landuse-industrial", "landuse", COLOURS["industrial"], ["industrial", "garages", "railway"]),
        _fill("landuse-institutional", "landuse", COLOURS["institutional"],
              ["school", "university", "college", "hospital", "kindergarten", "stadium", "cemetery"]),
        _fill("landcover-farmland", "landcover", COLOURS["farmland"], ["farmland"]),
        _fill("landcover-grass", "landcover", COLOURS["grass"], ["grass"]),
        _fill("landcover-wood", "landcover", COLOURS["wood"], ["wood", "forest"]),
        _fill("park", "park", COLOURS["park"]),
        _fill("water", "water", COLOURS["water"]),
        {"id": "waterway", "type": "line", "source": SOURCE, "source-layer": "waterway",
         "paint": {"line-color": COLOURS["water"], "line-width": _by_zoom(8, 0.5, 14, 2, 18, 6)}},
        {"id": "building", "type": "fill", "source": SOURCE, "source-layer": "building", "minzoom": 14,
         "paint": {"fill-color": COLOURS["building"], "fill-outline-color": COLOURS["building_line"]}},
        {"id": "boundary", "type": "line", "source": SOURCE, "source-layer": "boundary",
         "filter": ["<=", ["get", "admin_level"], 6],
         "paint": {"line-color": COLOURS["boundary"], "line-width": 1, "line-dasharray": [3, 2]}},
        _road("road-path", ["path", "pedestrian"], COLOURS["path"], (14, 0.5, 18, 1.5), minzoom=14, dash=[2, 1.5]),
        _road("road-minor-casing", MINOR, "", (12, 0.5, 14, 2, 18, 12), casing=True, minzoom=12),
        _road("road-middle-casing", MIDDLE, "", (10, 0.8, 14, 4, 18, 18), casing=True, minzoom=10),
        _road("road-major-casing", MAJOR, "", (6, 0.8, 14, 5, 18, 22), casing=True),
        _road("road-minor", MINOR, COLOURS["minor"], (12, 0.3, 14, 1.5, 18, 10), minzoom=12),
        _road("road-tertiary", ["tertiary"], COLOURS["tertiary"], (10, 0.5, 14, 3, 18, 16), minzoom=10),
        _road("road-secondary", ["secondary"], COLOURS["secondary"], (10, 0.5, 14, 3, 18, 16), minzoom=10),
        _road("road-primary", ["primary"], COLOURS["primary"], (6, 0.5, 14, 4, 18, 20)),
        _road("road-trunk", ["trunk"], COLOURS["trunk"], (6, 0.5, 14, 4, 18, 20)),
        _road("road-motorway", ["motorway"], COLOURS["motorway"], (6, 0.6, 14, 4.5, 18, 22)),
        _road("rail", ["rail", "transit"], COLOURS["rail"], (10, 0.5, 14, 1.2, 18, 2.5), dash=[3, 3]),
        {"id": "water-name", "type": "symbol", "source": SOURCE, "source-layer": "water_name",
         "layout": {"text-field": name, "text-font": FONT, "text-size": 12, "symbol-placement": "point"},
         "paint": {"text-color": COLOURS["water_text"], "text-halo-color": COLOURS["halo"], "text-halo-width": 1}},
        {"id": "street-name", "type": "symbol", "source": SOURCE, "source-layer": "transportation_name",
         "minzoom": 13, "filter": ["has", "name"],
         "layout": {"text-field": name, "text-font": FONT, "symbol-placement": "line",
                    "text-size": ["interpolate", ["linear"], ["zoom"], 13, 10, 17, 14],
                    "text-max-angle": 30, "symbol-spacing": 300, "text-padding": 2},
         "paint": {"text-color": COLOURS["text_minor"], "text-halo-color": COLOURS["halo"],
                   "text-halo-width": 1.5}},
        {"id": "place-minor", "type": "symbol", "source": SOURCE, "source-layer": "place", "minzoom": 12,
         "filter": ["in", ["get", "class"], ["literal", ["suburb", "quarter", "neighbourhood", "hamlet",
                                                          "village", "isolated_dwelling", "locality"]]],
         "layout": {"text-field": name, "text-font": FONT, "text-size": 12, "text-max-width": 8},
         "paint": {"text-color": COLOURS["text_minor"], "text-halo-color": COLOURS["halo"],
                   "text-halo-width": 1.5}},
        {"id": "place-major", "type": "symbol", "source": SOURCE, "source-layer": "place",
         "filter": ["in", ["get", "class"], ["literal", ["city", "town"]]],
         "layout": {"text-field": name, "text-font": FONT_BOLD,
                    "text-size": ["interpolate", ["linear"], ["zoom"], 6, 12, 14, 18], "text-max-width": 8},
         "paint": {"text-color": COLOURS["text"], "text-halo-color": COLOURS["halo"], "text-halo-width": 2}},
    ]
    west, south, east, north = basemap.bounds
    return {
        "version": 8,
        "name": "WeCity base map",
        "metadata": {"wecity:bounds": [west, south, east, north], "wecity:locale": locale,
                     "wecity:ideograph_fonts": IDEOGRAPH_FONTS},
        "center": list(basemap.center),
        "zoom": min(14, basemap.maxzoom),
        "sources": {SOURCE: {"type": "vector", "url": f"pmtiles://{TILES_PATH}?v={basemap.etag.strip(chr(34))}",
                             "attribution": ATTRIBUTION_HTML, "minzoom": basemap.minzoom,
                             "maxzoom": basemap.maxzoom, "bounds": [west, south, east, north]}},
        "layers": layers,
    }
