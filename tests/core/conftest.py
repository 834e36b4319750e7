"""Fixtures for the base layer's tests: an app context on the test city, and clean registries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wecity.core import jobs, outbox, runner
from wecity.core.context import AppContext

from ..conftest import City


@pytest.fixture
def clean_registries() -> Iterator[None]:
    """Channels, jobs and periodic tasks registered by a test do not leak into the next one."""
    # Import every domain's tasks first, so their registrations are among those saved and restored,
    # not made inside the cleared registries and lost afterwards.
    runner.load_domain_tasks()
    saved = dict(outbox._channels), dict(jobs._jobs), dict(runner._periodic)
    outbox._channels.clear()
    jobs._jobs.clear()
    runner._periodic.clear()
    yield
    for registry, old in zip((outbox._channels, jobs._jobs, runner._periodic), saved, strict=True):
        registry.clear()
        registry.update(old)  # type: ignore[attr-defined]


@pytest.fixture
def ctx(city: City, clean_registries: None) -> AppContext:
    return AppContext(settings=city.settings, db=city.db, clock=city.clock)
