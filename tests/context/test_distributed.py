"""Distributed operations between two real brokers: two apps of this platform, each on its own SQLite
database, served by uvicorn on two ports of 127.0.0.1. Broker A knows broker B as a context source
(registered through A's /csourceRegistrations); queries and retrievals on A
merge what both hold, writes reach B where the registration says so, and `local=true` keeps A alone.
A subscription on A reaches B as a copy, and B's notifications come to A's subscriber through A."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tests.core.notifications import Notifications
from wecity.core.db import Database
from wecity.core.settings import Settings

BASE = "/ngsi-ld/v1"
VEHICLE = "https://uri.etsi.org/ngsi-ld/default-context/Vehicle"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Broker:
    url: str
    app: Any

    def register(self, doc: dict[str, Any]) -> None:
        """Register a context source with this broker, as any client does (POST /csourceRegistrations)."""
        answer = httpx.post(self.url + BASE + "/csourceRegistrations", json=doc)
        assert answer.status_code == 201, answer.text


def _serve(templates: Any, tmp_path: Path, name: str, *, runner: bool = False) -> Iterator[Broker]:
    from wecity.api.app import create_app

    template_url, _ = templates.get("sqlite")
    path = tmp_path / f"{name}.db"
    shutil.copy(template_url.split("///", 1)[1], path)
    settings = Settings(database_url=f"sqlite:///{path}", media_dir=tmp_path / f"media-{name}", secret_key="x" * 40,
                        var_dir=tmp_path, run_background=runner, ngsild_auth="off",
                        outbound_allow=("127.0.0.1",))
    db = Database(settings.database_url, pool_size=4)
    app = create_app(settings, db=db)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield Broker(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.close()


@pytest.fixture
def broker_a(templates: Any, tmp_path: Path) -> Iterator[Broker]:
    yield from _serve(templates, tmp_path, "a")


@pytest.fixture
def broker_b(templates: Any, tmp_path: Path) -> Iterator[Broker]:
    yield from _serve(templates, tmp_path, "b")


def _registration(endpoint: str, **extra: Any) -> dict[str, Any]:
    return {"id": "urn:ngsi-ld:ContextSourceRegistration:b", "type": "ContextSourceRegistration",
            "information": [{"entities": [{"type": VEHICLE}]}], "endpoint": endpoint, **extra}


def _create(url: str, body: dict[str, Any], **params: str) -> httpx.Response:
    return httpx.post(url + BASE + "/entities", json=body, params=params)


def _vehicle(eid: str, **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "Vehicle", **{k: {"type": "Property", "value": v} for k, v in attrs.items()}}


def test_a_query_on_one_broker_merges_the_entities_of_both(broker_a: Broker, broker_b: Broker) -> None:
    assert _create(broker_a.url, _vehicle("urn:ngsi-ld:Vehicle:on-a", speed=30)).status_code == 201
    assert _create(broker_b.url, _vehicle("urn:ngsi-ld:Vehicle:on-b", speed=50)).status_code == 201
    broker_a.register(_registration(broker_b.url))

    found = httpx.get(broker_a.url + BASE + "/entities", params={"type": "Vehicle"}).json()
    assert sorted(e["id"] for e in found) == ["urn:ngsi-ld:Vehicle:on-a", "urn:ngsi-ld:Vehicle:on-b"]
    assert {e["id"]: e["speed"]["value"] for e in found} == {"urn:ngsi-ld:Vehicle:on-a": 30,
                                                             "urn:ngsi-ld:Vehicle:on-b": 50}
    # the filters travel with the forwarded query
    fast = httpx.get(broker_a.url + BASE + "/entities", params={"type": "Vehicle", "q": "speed>40"}).json()
    assert [e["id"] for e in fast] == ["urn:ngsi-ld:Vehicle:on-b"]
    # local=true: broker A alone
    alone = httpx.get(broker_a.url + BASE + "/entities", params={"type": "Vehicle", "local": "true"}).json()
    assert [e["id"] for e in alone] == ["urn:ngsi-ld:Vehicle:on-a"]
    # and B, asked directly, was not changed by any of this
    assert [e["id"] for e in httpx.get(broker_b.url + BASE + "/entities", params={"type": "Vehicle"}).json()] == \
        ["urn:ngsi-ld:Vehicle:on-b"]


def test_a_retrieval_merges_the_attributes_one_entity_has_on_both(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:both"
    assert _create(broker_a.url, _vehicle(eid, brandName="Mercedes", speed=10)).status_code == 201
    time.sleep(0.01)  # B's speed is the more recent one
    assert _create(broker_b.url, _vehicle(eid, isParked=True, speed=80)).status_code == 201
    broker_a.register(_registration(broker_b.url))

    got = httpx.get(broker_a.url + BASE + "/entities/" + eid)
    assert got.status_code == 200
    body = got.json()
    assert body["brandName"]["value"] == "Mercedes"  # only on A
    assert body["isParked"]["value"] is True  # only on B
    assert body["speed"]["value"] == 80  # on both: the most recently modified wins
    local = httpx.get(broker_a.url + BASE + "/entities/" + eid, params={"local": "true"}).json()
    assert "isParked" not in local and local["speed"]["value"] == 10


def test_an_entity_only_the_source_holds_is_retrieved_through_the_broker(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:only-b"
    assert _create(broker_b.url, _vehicle(eid, speed=5)).status_code == 201
    assert httpx.get(broker_a.url + BASE + "/entities/" + eid).status_code == 404
    broker_a.register(_registration(broker_b.url))
    assert httpx.get(broker_a.url + BASE + "/entities/" + eid).json()["speed"]["value"] == 5
    assert httpx.get(broker_a.url + BASE + "/entities/" + eid, params={"local": "true"}).status_code == 404


def test_writes_go_where_the_registration_says(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:written"
    # inclusive with redirectionOps: the create is done on both
    broker_a.register(_registration(broker_b.url, operations=["redirectionOps"]))
    assert _create(broker_a.url, _vehicle(eid, speed=1)).status_code == 201
    for url in (broker_a.url, broker_b.url):
        assert httpx.get(url + BASE + "/entities/" + eid, params={"local": "true"}).status_code == 200
    # an update reaches B as well
    patched = httpx.patch(broker_a.url + BASE + f"/entities/{eid}/attrs",
                          json={"speed": {"type": "Property", "value": 2}})
    assert patched.status_code == 204
    on_b = httpx.get(broker_b.url + BASE + "/entities/" + eid).json()
    assert on_b["speed"]["value"] == 2
    # deleted on both
    assert httpx.delete(broker_a.url + BASE + "/entities/" + eid).status_code == 204
    assert httpx.get(broker_b.url + BASE + "/entities/" + eid).status_code == 404


def test_exclusive_attributes_are_kept_off_the_local_store(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:exclusive"
    speed = "https://uri.etsi.org/ngsi-ld/default-context/speed"
    broker_a.register(_registration(broker_b.url, mode="exclusive", operations=["redirectionOps"],
                                    information=[{"entities": [{"id": eid, "type": VEHICLE}], "propertyNames": [speed]}]))
    assert _create(broker_a.url, _vehicle(eid, speed=7, brandName="BMW")).status_code == 201
    local = httpx.get(broker_a.url + BASE + "/entities/" + eid, params={"local": "true"}).json()
    assert "speed" not in local and local["brandName"]["value"] == "BMW"
    on_b = httpx.get(broker_b.url + BASE + "/entities/" + eid).json()
    assert on_b["speed"]["value"] == 7 and "brandName" not in on_b
    merged = httpx.get(broker_a.url + BASE + "/entities/" + eid).json()
    assert merged["speed"]["value"] == 7 and merged["brandName"]["value"] == "BMW"


def test_a_source_that_cannot_be_reached_is_a_warning_not_a_failure(broker_a: Broker) -> None:
    assert _create(broker_a.url, _vehicle("urn:ngsi-ld:Vehicle:here", speed=3)).status_code == 201
    broker_a.register(_registration(f"http://127.0.0.1:{_free_port()}"))
    answer = httpx.get(broker_a.url + BASE + "/entities", params={"type": "Vehicle"})
    assert answer.status_code == 200
    assert [e["id"] for e in answer.json()] == ["urn:ngsi-ld:Vehicle:here"]
    assert answer.headers["NGSILD-Warning"].startswith("199 urn:ngsi-ld:ContextSourceRegistration:b")


def test_a_request_that_comes_back_is_a_loop(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:loop"
    # A redirects to B and B redirects back to A: the request must stop instead of circling
    broker_a.register(_registration(broker_b.url, mode="redirect", operations=["redirectionOps"],
                                    information=[{"entities": [{"id": eid, "type": VEHICLE}]}]))
    broker_b.register(_registration(broker_a.url, mode="redirect", operations=["redirectionOps"],
                                    information=[{"entities": [{"id": eid, "type": VEHICLE}]}]))
    answer = httpx.delete(broker_a.url + BASE + "/entities/" + eid)
    assert answer.status_code == 508
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/LoopDetected"


def test_a_snapshot_holds_what_the_sources_held_when_it_was_taken(broker_a: Broker, broker_b: Broker) -> None:
    assert _create(broker_a.url, _vehicle("urn:ngsi-ld:Vehicle:snap-a", speed=60)).status_code == 201
    assert _create(broker_b.url, _vehicle("urn:ngsi-ld:Vehicle:snap-b", speed=70)).status_code == 201
    assert _create(broker_b.url, _vehicle("urn:ngsi-ld:Vehicle:snap-slow", speed=20)).status_code == 201
    broker_a.register(_registration(broker_b.url))
    made = httpx.post(broker_a.url + BASE + "/snapshots", json={"type": "Snapshot", "snapshotQueries": [
        {"type": "Query", "entities": [{"type": "Vehicle"}], "q": "speed>50"}]})
    assert made.status_code == 201, made.text
    where = broker_a.url + made.headers["Location"]
    deadline = time.monotonic() + 10
    while (snapshot := httpx.get(where).json())["snapshotStatus"] == "preparing" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert snapshot["snapshotStatus"] == "success"
    # B changes afterwards; the snapshot does not
    assert httpx.delete(broker_b.url + BASE + "/entities/urn:ngsi-ld:Vehicle:snap-b").status_code == 204
    frozen = httpx.get(broker_a.url + BASE + "/entities", params={"type": "Vehicle"},
                       headers={"NGSILD-Snapshot": snapshot["id"]}).json()
    assert sorted(e["id"] for e in frozen) == ["urn:ngsi-ld:Vehicle:snap-a", "urn:ngsi-ld:Vehicle:snap-b"]


def _batch(url: str, op: str, body: list[Any], **params: str) -> httpx.Response:
    return httpx.post(url + BASE + "/entityOperations/" + op, json=body, params=params)


def _local(url: str, eid: str) -> httpx.Response:
    return httpx.get(url + BASE + "/entities/" + eid, params={"local": "true"})


def test_a_batch_reaches_the_source_once_and_is_done_locally_too(broker_a: Broker, broker_b: Broker) -> None:
    ids = ["urn:ngsi-ld:Vehicle:batch-1", "urn:ngsi-ld:Vehicle:batch-2"]
    broker_a.register(_registration(broker_b.url, operations=["redirectionOps", "createBatch", "upsertBatch",
                                                              "deleteBatch"]))
    created = _batch(broker_a.url, "create", [_vehicle(i, speed=1) for i in ids])
    assert created.status_code == 201 and created.json() == ids
    for url in (broker_a.url, broker_b.url):
        assert all(_local(url, i).status_code == 200 for i in ids)
    # upsert with options=update: B merges the attribute in, it does not replace the entity
    upserted = _batch(broker_a.url, "upsert", [_vehicle(ids[0], brandName="BMW")], options="update")
    assert upserted.status_code == 204
    on_b = _local(broker_b.url, ids[0]).json()
    assert on_b["brandName"]["value"] == "BMW" and on_b["speed"]["value"] == 1
    assert _batch(broker_a.url, "delete", ids).status_code == 204
    for url in (broker_a.url, broker_b.url):
        assert all(_local(url, i).status_code == 404 for i in ids)


def test_a_batch_item_is_matched_with_its_own_context(broker_a: Broker, broker_b: Broker) -> None:
    # the registration names the type by an IRI that only the items' inline @context gives "Car"
    car = "https://example.org/vocab/Car"
    context = {"Car": car}
    broker_a.register(_registration(broker_b.url, mode="redirect", operations=["createBatch"],
                                    information=[{"entities": [{"type": car}]}]))
    item = {"id": "urn:ngsi-ld:Car:1", "type": "Car", "speed": {"type": "Property", "value": 3}, "@context": context}
    answer = httpx.post(broker_a.url + BASE + "/entityOperations/create", content=json.dumps([item]),
                        headers={"Content-Type": "application/ld+json"})
    assert answer.status_code == 201
    assert _local(broker_a.url, "urn:ngsi-ld:Car:1").status_code == 404  # redirect: not kept here
    on_b = httpx.get(broker_b.url + BASE + "/entities/urn:ngsi-ld:Car:1", headers={"Accept": "application/ld+json"})
    assert on_b.status_code == 200 and on_b.json()["type"] == car


def test_a_batch_a_source_fails_is_a_partial_result(broker_a: Broker, broker_b: Broker) -> None:
    eid = "urn:ngsi-ld:Vehicle:twice"
    assert _create(broker_b.url, _vehicle(eid, speed=1)).status_code == 201
    broker_a.register(_registration(broker_b.url, operations=["createBatch"]))
    answer = _batch(broker_a.url, "create", [_vehicle(eid, speed=2)])
    assert answer.status_code == 207
    body = answer.json()
    assert body["success"] == []
    assert body["errors"][0]["entityId"] == eid
    assert body["errors"][0]["registrationId"] == "urn:ngsi-ld:ContextSourceRegistration:b"
    assert body["errors"][0]["error"]["status"] == 409
    assert _local(broker_a.url, eid).status_code == 200  # the broker's own part was done


def test_a_purge_is_sent_on_to_the_sources(broker_a: Broker, broker_b: Broker) -> None:
    for url, eid in ((broker_a.url, "urn:ngsi-ld:Vehicle:purge-a"), (broker_b.url, "urn:ngsi-ld:Vehicle:purge-b")):
        assert _create(url, _vehicle(eid, speed=1)).status_code == 201
    assert _create(broker_b.url, {"id": "urn:ngsi-ld:Bus:kept", "type": "Bus"}).status_code == 201
    broker_a.register(_registration(broker_b.url, operations=["redirectionOps"]))
    assert httpx.delete(broker_a.url + BASE + "/entities", params={"type": "Bus"}).status_code == 204
    assert _local(broker_b.url, "urn:ngsi-ld:Bus:kept").status_code == 200  # not a type B is registered for
    assert httpx.delete(broker_a.url + BASE + "/entities", params={"type": "Vehicle"}).status_code == 204
    assert _local(broker_a.url, "urn:ngsi-ld:Vehicle:purge-a").status_code == 404
    assert _local(broker_b.url, "urn:ngsi-ld:Vehicle:purge-b").status_code == 404
    # local=true: this broker alone
    assert _create(broker_b.url, _vehicle("urn:ngsi-ld:Vehicle:purge-c", speed=1)).status_code == 201
    assert httpx.delete(broker_a.url + BASE + "/entities", params={"type": "Vehicle", "local": "true"}).status_code == 204
    assert _local(broker_b.url, "urn:ngsi-ld:Vehicle:purge-c").status_code == 200


@pytest.fixture
def running_pair(templates: Any, tmp_path: Path) -> Iterator[tuple[Broker, Broker]]:
    """Brokers A and B with their runners (A sends the subscription copies, B the notifications)."""
    a, b = _serve(templates, tmp_path, "a", runner=True), _serve(templates, tmp_path, "b", runner=True)
    yield next(a), next(b)
    for served in (b, a):
        next(served, None)


def test_a_subscription_reaches_the_source_and_its_notifications_come_back_through_the_broker(
        running_pair: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = running_pair
    receiver = Notifications()
    try:
        broker_a.register(_registration(broker_b.url))
        assert _create(broker_a.url, _vehicle("urn:ngsi-ld:Vehicle:split", brandName="Tesla"),
                       local="true").status_code == 201
        sub_id = "urn:ngsi-ld:Subscription:fast-teslas"
        made = httpx.post(broker_a.url + BASE + "/subscriptions", json={
            "id": sub_id, "type": "Subscription", "entities": [{"type": "Vehicle"}],
            "q": 'speed>50;brandName=="Tesla"', "splitEntities": True,
            "notification": {"endpoint": {"uri": receiver.url}}})
        assert made.status_code == 201, made.text
        # B holds a copy of its own, which notifies A, not the subscriber, and leaves q to A
        deadline = time.monotonic() + 15
        while not (copies := httpx.get(broker_b.url + BASE + "/subscriptions").json()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(copies) == 1 and copies[0]["id"] != sub_id
        assert copies[0]["notification"]["endpoint"]["uri"] == broker_a.url + "/ngsi-ld/ex/remote-notify"
        assert "q" not in copies[0] and copies[0]["splitEntities"] is True
        # and A keeps a subscription to registrations for it, to reach sources registered later
        assert len(httpx.get(broker_a.url + BASE + "/csourceSubscriptions").json()) == 1

        # B's part of the entity (the speed) merged with A's (the brand), judged by q on A: sent on
        assert _create(broker_b.url, _vehicle("urn:ngsi-ld:Vehicle:split", speed=99)).status_code == 201
        bodies = receiver.wait_for(lambda b: len(b) >= 1)
        assert bodies[0]["subscriptionId"] == sub_id
        entity = bodies[0]["data"][0]
        assert (entity["id"], entity["speed"]["value"], entity["brandName"]["value"]) == \
            ("urn:ngsi-ld:Vehicle:split", 99, "Tesla")
        # too slow once merged: B notifies A, A sends nothing on
        patched = httpx.patch(broker_b.url + BASE + "/entities/urn:ngsi-ld:Vehicle:split/attrs",
                              json={"speed": {"type": "Property", "value": 10}})
        assert patched.status_code == 204
        deadline = time.monotonic() + 15
        while httpx.get(broker_b.url + BASE + "/subscriptions").json()[0]["notification"].get("timesSent", 0) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        assert len(receiver.bodies) == 1

        # deleting the subscription on A deletes the copy on B and A's subscription to registrations
        assert httpx.delete(broker_a.url + BASE + f"/subscriptions/{sub_id}").status_code == 204
        deadline = time.monotonic() + 15
        while httpx.get(broker_b.url + BASE + "/subscriptions").json():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert httpx.get(broker_a.url + BASE + "/csourceSubscriptions").json() == []
    finally:
        receiver.close()


def test_a_notification_for_no_copy_of_this_broker_is_refused(broker_a: Broker) -> None:
    """The copy's id is what lets a source's notification in: an unknown one is a 404, and nothing is sent."""
    answer = httpx.post(broker_a.url + "/ngsi-ld/ex/remote-notify", json={
        "type": "Notification", "subscriptionId": "urn:ngsi-ld:Subscription:guessed",
        "data": [_vehicle("urn:ngsi-ld:Vehicle:x", speed=1)]})
    assert answer.status_code == 404
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    malformed = httpx.post(broker_a.url + "/ngsi-ld/ex/remote-notify", json={"subscriptionId": 3})
    assert malformed.status_code == 400


def test_a_source_registered_after_the_subscription_gets_its_copy_and_loses_it_when_it_goes(
        running_pair: tuple[Broker, Broker]) -> None:
    broker_a, broker_b = running_pair
    made = httpx.post(broker_a.url + BASE + "/subscriptions", json={
        "id": "urn:ngsi-ld:Subscription:later", "type": "Subscription", "entities": [{"type": "Vehicle"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}})
    assert made.status_code == 201
    local_only = httpx.post(broker_a.url + BASE + "/subscriptions", json={
        "id": "urn:ngsi-ld:Subscription:here", "type": "Subscription", "entities": [{"type": "Vehicle"}],
        "localOnly": True, "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}})
    assert local_only.status_code == 201
    assert httpx.get(broker_a.url + BASE + "/csourceSubscriptions").json() == []  # no source yet

    broker_a.register(_registration(broker_b.url))
    deadline = time.monotonic() + 15
    while not (copies := httpx.get(broker_b.url + BASE + "/subscriptions").json()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [c["entities"] for c in copies] == [[{"type": "Vehicle"}]]  # one copy: not the local-only one
    assert len(httpx.get(broker_a.url + BASE + "/csourceSubscriptions").json()) == 1

    # a change follows to the source: the copy is replaced by one of the subscription as it is now
    changed = httpx.patch(broker_a.url + BASE + "/subscriptions/urn:ngsi-ld:Subscription:later", json={"q": "speed>80"})
    assert changed.status_code == 204
    def queries_at_b() -> list[Any]:
        return [c.get("q") for c in httpx.get(broker_b.url + BASE + "/subscriptions").json()]

    while queries_at_b() != ["speed>80"]:
        assert time.monotonic() < deadline, queries_at_b()
        time.sleep(0.05)

    gone = httpx.delete(broker_a.url + BASE + "/csourceRegistrations/urn:ngsi-ld:ContextSourceRegistration:b")
    assert gone.status_code == 204
    while httpx.get(broker_b.url + BASE + "/subscriptions").json():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_merge_keeps_what_the_local_entity_has_beyond_its_attributes() -> None:
    """The expiry of a transient entity (and the rest of its stored form) survives the merge with a source's."""
    from datetime import UTC, datetime, timedelta

    from wecity.context.distributed import merge
    from wecity.context.env import Stored

    now = datetime(2026, 12, 5, tzinfo=UTC)
    speed = "https://uri.etsi.org/ngsi-ld/default-context/speed"
    local = Stored(7, "urn:ngsi-ld:Vehicle:t", [VEHICLE], {}, now, now, expires_at=now + timedelta(hours=1))
    remote = Stored(0, "urn:ngsi-ld:Vehicle:t", [VEHICLE], {speed: {"type": "Property", "value": 3}}, now, now)
    merged = merge([local], [remote])
    assert [(m.pk, m.expires_at, list(m.attrs)) for m in merged] == [(7, now + timedelta(hours=1), [speed])]
    assert local.attrs == {}  # the local entity itself is left as it was
