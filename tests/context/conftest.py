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
    """A client of the broker holding the city's API key (the NGSI-LD API needs credentials)."""
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        yield client


def entity(eid: str = "urn:ngsi-ld:Manhole:1", **attrs: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": eid, "type": "Manhole"}
    body.update(attrs)
    return body


def prop(value: Any, **extra: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value, **extra}


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


class Receiver:
    """A notification receiver behind httpx's MockTransport: records requests, answers `status`."""

    def __init__(self) -> None:
        self.requests: list[Any] = []
        self.status = 200

    def __call__(self, request: Any) -> Any:
        import httpx

        self.requests.append(request)
        return httpx.Response(self.status)

    def bodies(self) -> list[Any]:
        import json

        return [json.loads(r.content) for r in self.requests]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def broker(city: City, receiver: Receiver) -> Iterator[Any]:
    """An NGSI-LD client whose notifications go to `receiver`; `broker.deliver()` runs the outbox once."""
    import asyncio

    import httpx
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app
    from wecity.core.runner import Runner

    app = create_app(city.settings, clock=city.clock, db=city.db)
    ctx = app.state.ctx
    ctx.services["ngsild_http"] = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        runner = Runner(ctx)

        def deliver() -> int:
            return asyncio.run(runner.deliver_outbox())

        client.deliver = deliver  # type: ignore[attr-defined]
        client.ctx = ctx  # type: ignore[attr-defined]
        client.city = city  # type: ignore[attr-defined]
        yield client
