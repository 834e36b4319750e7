"""Transient entities and attributes (expiresAt, clause 4.22): served until they expire, gone from every
read at once after, removed for good by the cleanup task; the history of an expired entity stays."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from tests.context.conftest import BASE, entity, prop
from wecity.context import tasks
from wecity.context.models import entities as t

E1 = "urn:ngsi-ld:Manhole:1"


def _later(broker: Any, seconds: int) -> str:
    return (broker.city.clock.now() + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rows(broker: Any) -> list[Any]:
    return broker.city.db.read_sync(lambda conn: list(conn.execute(sa.select(t.c.entity_id, t.c.attrs))))


def test_an_expired_entity_is_gone_from_reads_at_once_and_swept_later(broker: Any) -> None:
    expiry = _later(broker, 60)
    assert broker.post(f"{BASE}/entities", json=entity(E1, depth=prop(1), expiresAt=expiry)).status_code == 201
    assert broker.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:2", depth=prop(2))).status_code == 201
    got = broker.get(f"{BASE}/entities/{E1}", params={"options": "sysAttrs"}).json()
    assert got["expiresAt"] == expiry and got["depth"]["value"] == 1
    assert "expiresAt" not in broker.get(f"{BASE}/entities/{E1}").json()
    assert len(broker.get(f"{BASE}/entities", params={"type": "Manhole"}).json()) == 2

    broker.city.clock.advance(seconds=61)
    assert broker.get(f"{BASE}/entities/{E1}").status_code == 404
    assert [e["id"] for e in broker.get(f"{BASE}/entities", params={"type": "Manhole"}).json()] == \
        ["urn:ngsi-ld:Manhole:2"]
    assert broker.get(f"{BASE}/entities", params={"type": "Manhole", "count": "true"}).headers[
        "NGSILD-Results-Count"] == "1"
    assert broker.patch(f"{BASE}/entities/{E1}/attrs", json={"depth": prop(3)}).status_code == 404
    assert E1 in {r.entity_id for r in _rows(broker)}  # hidden, not yet removed

    assert "context.sweep_expired" in broker.ctx.registry.periodic
    asyncio.run(tasks.sweep_expired(broker.ctx))
    assert {r.entity_id for r in _rows(broker)} == {"urn:ngsi-ld:Manhole:2"}
    # the history of the expired entity is kept
    assert broker.get(f"{BASE}/temporal/entities/{E1}").status_code == 200


def test_an_expired_entity_id_can_be_created_again_before_the_sweep(broker: Any) -> None:
    assert broker.post(f"{BASE}/entities", json=entity(E1, expiresAt=_later(broker, 5), depth=prop(1))).status_code == 201
    broker.city.clock.advance(seconds=6)
    assert broker.post(f"{BASE}/entities", json=entity(E1, depth=prop(2))).status_code == 201
    assert broker.get(f"{BASE}/entities/{E1}").json()["depth"]["value"] == 2
    body = [entity("urn:ngsi-ld:Manhole:2", depth=prop(1), expiresAt=_later(broker, 5))]
    assert broker.post(f"{BASE}/entityOperations/create", json=body).status_code == 201
    broker.city.clock.advance(seconds=6)
    assert broker.post(f"{BASE}/entityOperations/upsert", json=body).status_code == 201


def test_expired_attribute_instances_vanish_and_their_siblings_stay(broker: Any) -> None:
    soon = _later(broker, 10)
    body = entity(E1, depth=prop(1, expiresAt=soon), level=prop(2),
                  speed=[prop("gps", datasetId="urn:ngsi-ld:d:gps", expiresAt=soon), prop("odometer")])
    assert broker.post(f"{BASE}/entities", json=body).status_code == 201
    assert set(broker.get(f"{BASE}/entities/{E1}").json()) == {"id", "type", "depth", "level", "speed"}
    assert broker.get(f"{BASE}/entities", params={"type": "Manhole", "q": "depth==1"}).json() != []

    broker.city.clock.advance(seconds=11)
    got = broker.get(f"{BASE}/entities/{E1}").json()
    assert set(got) == {"id", "type", "level", "speed"} and got["speed"]["value"] == "odometer"
    assert broker.get(f"{BASE}/entities", params={"type": "Manhole", "q": "depth==1"}).json() == []
    asyncio.run(tasks.sweep_expired(broker.ctx))
    [row] = _rows(broker)
    assert not any(k.endswith("depth") for k in row.attrs)


def test_merge_sets_the_expiry_a_replace_clears_it_and_bad_ones_are_refused(broker: Any) -> None:
    assert broker.post(f"{BASE}/entities", json=entity(E1, depth=prop(1))).status_code == 201
    assert broker.patch(f"{BASE}/entities/{E1}", json={"expiresAt": _later(broker, 30)}).status_code == 204
    assert broker.put(f"{BASE}/entities/{E1}", json={"type": "Manhole", "depth": prop(2)}).status_code == 204
    broker.city.clock.advance(seconds=31)
    assert broker.get(f"{BASE}/entities/{E1}").status_code == 200  # the replace made it durable again
    assert broker.patch(f"{BASE}/entities/{E1}", json={"expiresAt": "2020-01-01T00:00:00Z"}).status_code == 204
    assert broker.get(f"{BASE}/entities/{E1}").status_code == 404
    for bad in ("not-a-date", "2026-13-45T00:00:00Z"):
        r = broker.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:9", expiresAt=bad))
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData")
        r = broker.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:9", depth=prop(1, expiresAt=bad)))
        assert r.status_code == 400
    assert broker.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:9").status_code == 404


def test_an_expired_attribute_instance_leaves_the_temporal_representation(broker: Any) -> None:
    body = entity(E1, gone=prop(1, expiresAt="2000-01-01T00:00:00Z"), later=prop(2, expiresAt="2999-01-01T00:00:00Z"),
                  steady=prop(3))
    assert broker.post(f"{BASE}/entities", json=body).status_code == 201
    got = broker.get(f"{BASE}/temporal/entities/{E1}").json()
    assert "gone" not in got and {"later", "steady"} <= set(got)
