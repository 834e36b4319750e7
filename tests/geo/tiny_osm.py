"""A small OpenStreetMap file of central Changsha written with pyosmium: Chinese names for the gazetteer's tests.

The roads lie where the real ones do (WGS-84, rounded), so the demo city's districts contain them.
"""

from __future__ import annotations

from pathlib import Path

# name, name:en, highway, [(lon, lat), ...]
ROADS = [
    ("人民东路", "Renmin East Road", "primary", [(112.9950, 28.1905), (113.0050, 28.1900), (113.0150, 28.1895)]),
    ("五一大道", "Wuyi Avenue", "trunk", [(112.9700, 28.1960), (112.9800, 28.1962), (112.9900, 28.1963)]),
    ("岳麓大道", "Yuelu Avenue", "primary", [(112.9000, 28.2100), (112.9150, 28.2110), (112.9300, 28.2115)]),
    ("芙蓉中路", "Furong Middle Road", "primary", [(112.9880, 28.1750), (112.9882, 28.1850), (112.9884, 28.1950)]),
]
# name, tags, (lon, lat)
NODES = [
    ("五一广场", {"place": "square"}, (112.9770, 28.1960)),
    ("长沙市第一医院", {"amenity": "hospital", "addr:street": "营盘路", "addr:housenumber": "311号"}, (112.9830, 28.2040)),
]


def write_changsha_osm(path: Path) -> Path:
    import osmium

    path.unlink(missing_ok=True)  # osmium does not overwrite
    writer = osmium.SimpleWriter(str(path))
    try:
        node_id = 1
        ways = []
        for way_id, (name, name_en, highway, points) in enumerate(ROADS, start=1):
            ids = []
            for lon, lat in points:
                writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat), tags={}))
                ids.append(node_id)
                node_id += 1
            ways.append(osmium.osm.mutable.Way(id=way_id, nodes=ids,
                                               tags={"highway": highway, "name": name, "name:zh": name,
                                                     "name:en": name_en}))
        for name, tags, location in NODES:
            writer.add_node(osmium.osm.mutable.Node(id=node_id, location=location, tags={"name": name, **tags}))
            node_id += 1
        for way in ways:
            writer.add_way(way)
    finally:
        writer.close()
    return path
