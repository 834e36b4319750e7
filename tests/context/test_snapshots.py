"""Snapshots (clause 5.16): query results frozen at creation and served by the NGSILD-Snapshot header;
priority updates, clones, deletion and purge."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, entity, prop

FAST, SLOW = "urn:ngsi-ld:Manhole:fast", "urn:ngsi-ld:Manhole:slow"
QUERY = {"type": "Query", "entities": [{"type": "Manhole"}], "q": "depth>50"}


def _setup(ngsi: Any) -> str:
    for eid, depth in ((FAST, 80), (SLOW, 30)):
        assert ngsi.post(f"{BASE}/entities", json=entity(eid, depth=prop(depth))).status_code == 201
    r = ngsi.post(f"{BASE}/snapshots", json={"type": "Snapshot", "snapshotQueries": [QUERY]})
    assert r.status_code == 201
    return str(r.headers["location"])


def test_a_snapshot_freezes_what_its_queries_matched(ngsi: Any) -> None:
    where = _setup(ngsi)
    snap = ngsi.get(where).json()
    assert snap["snapshotStatus"] == "success" and snap["snapshotPriority"] == 5 and snap["lastUsedAt"]
    assert snap["snapshotQueriesDetails"][0]["resultStatus"] == "success"
    headers = {"NGSILD-Snapshot": snap["id"]}
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=headers)
    assert r.headers["NGSILD-Snapshot"] == snap["id"] and [e["id"] for e in r.json()] == [FAST]
    assert ngsi.patch(f"{BASE}/entities/{FAST}/attrs", json={"depth": prop(10)}).status_code == 204
    assert ngsi.get(f"{BASE}/entities/{FAST}", headers=headers).json()["depth"]["value"] == 80
    assert ngsi.get(f"{BASE}/entities/{FAST}").json()["depth"]["value"] == 10
    assert ngsi.get(f"{BASE}/entities/{SLOW}", headers=headers).status_code == 404
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"NGSILD-Snapshot": "urn:ngsi-ld:Snapshot:x"})
    assert r.status_code == 404


def test_bad_snapshots_are_refused(ngsi: Any) -> None:
    for body in ({"type": "Snapshot"}, {"type": "Snapshot", "snapshotQueries": []},
                 {"type": "Snapshot", "snapshotQueries": [dict(QUERY, temporalQ={"timerel": "after"})]},
                 {"type": "Snapshot", "snapshotQueries": [QUERY], "snapshotPriority": 0}):
        r = ngsi.post(f"{BASE}/snapshots", json=body)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), body


def test_update_clone_delete_and_purge(ngsi: Any) -> None:
    where = _setup(ngsi)
    r = ngsi.patch(where, json={"snapshotPriority": 2})
    assert r.status_code == 200 and r.json()["snapshotPriority"] == 2
    assert ngsi.patch(where, json={"snapshotQueries": []}).status_code == 400
    r = ngsi.post(f"{where}/clone", json={"type": "Snapshot", "snapshotPriority": 9})
    assert r.status_code == 201
    clone = r.headers["location"]
    assert ngsi.delete(f"{BASE}/snapshots", params={"q": "depth>50"}).status_code == 400  # not a snapshot member
    assert ngsi.delete(f"{BASE}/snapshots", params={"q": "snapshotPriority<5"}).status_code == 204
    assert ngsi.get(where).status_code == 404
    snap = ngsi.get(clone).json()
    assert snap["snapshotPriority"] == 9
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers={"NGSILD-Snapshot": snap["id"]})
    assert [e["id"] for e in r.json()] == [FAST]
    assert ngsi.delete(clone).status_code == 204
    assert ngsi.get(clone).status_code == 404 and ngsi.delete(clone).status_code == 404


def test_a_snapshot_whose_fill_was_lost_fails_instead_of_preparing_for_ever(broker: Any) -> None:
    """A fill with context sources runs after the answer, in the process that gave it; if that process
    stops, the runner's sweep marks the snapshot failed once it has been preparing for ten minutes."""
    import asyncio

    from wecity.context import snapshots, tasks

    city = broker.city
    lost = city.db.write_sync(lambda c: snapshots.begin(c, "", {"snapshotQueries": []}, 5, city.clock.now()))
    city.clock.advance(seconds=9 * 60)
    fresh = city.db.write_sync(lambda c: snapshots.begin(c, "", {"snapshotQueries": []}, 5, city.clock.now()))
    asyncio.run(tasks.sweep_expired(broker.ctx))
    assert broker.get(f"{BASE}/snapshots/{lost.snapshot_id}").json()["snapshotStatus"] == "preparing"
    city.clock.advance(seconds=61)
    asyncio.run(tasks.sweep_expired(broker.ctx))
    got = broker.get(f"{BASE}/snapshots/{lost.snapshot_id}").json()
    assert got["snapshotStatus"] == "failed" and got["snapshotQueriesDetails"] == [
        {"resultStatus": "failed", "entityCount": 0}]
    assert broker.get(f"{BASE}/snapshots/{fresh.snapshot_id}").json()["snapshotStatus"] == "preparing"


def test_a_snapshot_query_that_matches_too_much_is_refused_not_cut(ngsi: Any, monkeypatch: Any) -> None:
    from wecity.context import snapshots

    monkeypatch.setattr(snapshots, "MAX_ENTITIES", 2)
    for n in range(3):
        assert ngsi.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{n}", depth=prop(n))).status_code == 201
    every = {"type": "Query", "entities": [{"type": "Manhole"}]}
    r = ngsi.post(f"{BASE}/snapshots", json={"type": "Snapshot", "snapshotQueries": [every]})
    assert r.status_code == 403 and r.json()["type"].endswith("/TooManyResults"), r.text
    assert ngsi.get(f"{BASE}/snapshots").json() == []  # nothing half-made
    two = {"type": "Query", "entities": [{"type": "Manhole"}], "q": "depth>0"}
    assert ngsi.post(f"{BASE}/snapshots", json={"type": "Snapshot", "snapshotQueries": [two]}).status_code == 201
    many = ngsi.post(f"{BASE}/snapshots", json={"type": "Snapshot", "snapshotQueries": [two] * 11})
    assert many.status_code == 400 and "at most 10" in many.json()["detail"]
