"""The base map built once from the committed OpenStreetMap extract, for the tests that read it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXTRACT = Path(__file__).parents[1] / "fixtures" / "osm" / "helsinki-test.osm.pbf"


def need_tilemaker() -> None:
    if shutil.which("tilemaker") is None:
        pytest.skip("the base-map tests need Debian's tilemaker (scripts/test-services.sh installs it)")


@pytest.fixture(scope="session")
def built_basemap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding city.pmtiles and basemap.json made by import_basemap from the extract (one street
    translated)."""
    need_tilemaker()
    from wecity.geo.basemap import import_basemap

    out = tmp_path_factory.mktemp("basemap")
    import_basemap(with_translated_street(out.parent / "translated.osm.pbf"), out, say=lambda _: None)
    return out


def install_basemap(built: Path, var_dir: Path) -> Path:
    """A copy of the built base map where a platform with `var_dir` looks for it."""
    target = var_dir / "basemap"
    shutil.copytree(built, target, dirs_exist_ok=True)
    return target


# Names the committed extract lacks, added to one of its streets to follow a translated name from the
# OpenStreetMap tags to the labels (`name:zh` on the Chinese portal, `name:en` on the English one).
TRANSLATED_STREET = "Ristikalliontie"
TRANSLATED_NAMES = {"name:zh": "里斯蒂卡利奥路", "name:en": "Ristikallio Road"}


def with_translated_street(target: Path) -> Path:
    """A copy of the extract in which TRANSLATED_STREET carries TRANSLATED_NAMES (and all else is as it was)."""
    import osmium

    writer = osmium.SimpleWriter(str(target))
    try:
        for obj in osmium.FileProcessor(str(EXTRACT)):
            if isinstance(obj, osmium.osm.Node):
                writer.add_node(obj)
            elif isinstance(obj, osmium.osm.Way):
                if obj.tags.get("name") == TRANSLATED_STREET:
                    obj = obj.replace(tags=dict(obj.tags) | TRANSLATED_NAMES)
                writer.add_way(obj)
            elif isinstance(obj, osmium.osm.Relation):
                writer.add_relation(obj)
    finally:
        writer.close()
    return target
