"""`wecity serve` freezes what its process loaded at start, so full collections do not walk it mid-request."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient

from tests.conftest import City
from wecity.api.app import create_app


def test_the_served_app_freezes_its_start_up_heap_and_a_test_app_does_not(sqlite_city: City) -> None:
    gc.unfreeze()
    try:
        plain = create_app(sqlite_city.settings, clock=sqlite_city.clock, db=sqlite_city.db)
        with TestClient(plain):
            assert gc.get_freeze_count() == 0
        served = create_app(sqlite_city.settings, clock=sqlite_city.clock, db=sqlite_city.db)
        served.state.freeze_heap_after_start = True
        with TestClient(served):
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
