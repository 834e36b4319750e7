"""Data platform fixtures: the demo city's catalogue of datasets, published through the real verb."""

from __future__ import annotations

import pytest

from wecity.demo.datasets import seed_datasets

from ..conftest import City


@pytest.fixture
def catalogued(city: City) -> City:
    city.db.write_sync(lambda conn: seed_datasets(conn, city.clock.now()))
    return city
