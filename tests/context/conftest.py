"""Fixtures for the context broker's tests: an NGSI-LD client on a fresh demo city."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import City, make_client

LD = "application/ld+json"
CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
BASE = "/ngsi-ld/v1"


@pytest.fixture
def ngsi(city: City) -> Iterator[Any]:
    with make_client(city) as client:
        yield client


def entity(eid: str = "urn:ngsi-ld:Manhole:1", **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": eid, "type": "Manhole"}
    body.update(attrs)
    return body


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}
