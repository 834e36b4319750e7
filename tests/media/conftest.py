"""Fixtures of the media tests: the city's media store and a helper that lists what is on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from wecity.media.store import LocalMediaStore

from ..conftest import City
from ..govservice.conftest import services  # noqa: F401 (an application's materials: test_private_media)


@pytest.fixture
def store(city: City) -> LocalMediaStore:
    return LocalMediaStore(city.settings.media_dir)


def files_under(root: Path) -> list[str]:
    """Every file under the media directory, temporaries included."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []
