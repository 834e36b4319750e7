"""Fixtures for the base layer's tests: an app context on the test city, bare or with every domain wired."""

from __future__ import annotations

import pytest

from wecity.core.assemble import build_context
from wecity.core.context import AppContext

from ..conftest import City


@pytest.fixture
def ctx(city: City) -> AppContext:
    """A context with an empty registry: a test's channels, jobs and tasks are the only ones, and stay its own."""
    return AppContext(settings=city.settings, db=city.db, clock=city.clock)


@pytest.fixture
def wired_ctx(city: City) -> AppContext:
    """A context as the app builds it, with every domain's channels, tasks and listeners."""
    return build_context(city.settings, db=city.db, clock=city.clock)
