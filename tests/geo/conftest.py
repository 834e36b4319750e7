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
    """A folder holding city.pmtiles and basemap.json made by import_basemap from the extract."""
    need_tilemaker()
    from wecity.geo.basemap import import_basemap

    out = tmp_path_factory.mktemp("basemap")
    import_basemap(EXTRACT, out, say=lambda _: None)
    return out


def install_basemap(built: Path, var_dir: Path) -> Path:
    """A copy of the built base map where a platform with `var_dir` looks for it."""
    target = var_dir / "basemap"
    shutil.copytree(built, target, dirs_exist_ok=True)
    return target
