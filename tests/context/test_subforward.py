"""Subscriptions forwarded to context sources, inside one app (the sources and the subscriber behind a
mock transport): the copy a source is sent, the notifications it sends back, a paused subscription and a
withdrawn copy. Two real brokers do the same in test_distributed.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa

from wecity.context.models import forwarded_subscriptions
from wecity.core.runner import Runner

from .conftest import BASE

URI = "http://receiver.test/notify"
SOURCE = "http://source.test"
SUB = "urn:ngsi-ld:Subscription:cars"


def _run_jobs(broker: Any) -> None:
    asyncio.run(Runner(broker.ctx).run_jobs())


def _copies(broker: Any) -> list[str]:
    t = forwarded_subscriptions
    return broker.city.db.read_sync(lambda c: [r.remote_id for r in c.execute(sa.select(t.c.remote_id))])


def _sent_to_source(receiver: Any) -> list[tuple[str, str, Any]]:
    return [(r.method, str(r.url), json.loads(r.content) if r.content else None) for r in receiver.requests
            if str(r.url).startswith(SOURCE)]


def _notify(broker: Any, remote_id: str, speed: int) -> Any:
    return broker.post("/ngsi-ld/ex/remote-notify", headers={"Authorization": ""}, json={
        "id": "urn:ngsi-ld:Notification:1", "type": "Notification", "subscriptionId": remote_id,
        "notifiedAt": "2026-12-05T00:00:00Z",
        "data": [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": {"type": "Property", "value": speed}}]})


def test_a_source_gets_a_copy_and_its_notifications_reach_the_subscriber_under_the_subscription(
        broker: Any, receiver: Any) -> None:
    assert broker.post(f"{BASE}/csourceRegistrations", json={
        "id": "urn:ngsi-ld:ContextSourceRegistration:s", "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}]}], "endpoint": SOURCE}).status_code == 201
    made = broker.post(f"{BASE}/subscriptions", json={
        "id": SUB, "type": "Subscription", "entities": [{"type": "Vehicle"}], "q": "speed>50",
        "notification": {"endpoint": {"uri": URI}, "format": "keyValues"}})
    assert made.status_code == 201
    _run_jobs(broker)
    [(method, url, copy)] = _sent_to_source(receiver)
    assert (method, url) == ("POST", SOURCE + "/ngsi-ld/v1/subscriptions")
    assert copy["id"] != SUB and copy["q"] == "speed>50" and URI not in json.dumps(copy)
    assert copy["notification"] == {"endpoint": {"uri": "http://testserver/ngsi-ld/ex/remote-notify",
                                                 "accept": "application/json"}, "format": "normalized"}
    assert _copies(broker) == [copy["id"]]

    # the source's notification, let in by the copy's id alone, goes on under the subscription's own id
    assert _notify(broker, copy["id"], 70).status_code == 200
    broker.deliver()
    [note] = [json.loads(r.content) for r in receiver.requests if str(r.url) == URI]
    assert note["subscriptionId"] == SUB
    assert note["data"] == [{"id": "urn:ngsi-ld:Vehicle:1", "type": "Vehicle", "speed": 70}]

    # paused: the copy is replaced (a new id, the old one withdrawn) and a notification goes no further
    assert broker.patch(f"{BASE}/subscriptions/{SUB}", json={"isActive": False}).status_code == 204
    _run_jobs(broker)
    [renewed] = _copies(broker)
    assert renewed != copy["id"]
    assert sorted((m, u) for m, u, _ in _sent_to_source(receiver)[1:]) == [
        ("DELETE", SOURCE + "/ngsi-ld/v1/subscriptions/" + copy["id"].replace(":", "%3A")),
        ("POST", SOURCE + "/ngsi-ld/v1/subscriptions")]  # the two jobs run side by side
    assert _notify(broker, renewed, 80).status_code == 200
    broker.deliver()
    assert len([r for r in receiver.requests if str(r.url) == URI]) == 1
    # the withdrawn copy's id lets nothing in any more
    gone = _notify(broker, copy["id"], 90)
    assert gone.status_code == 404 and gone.json()["type"].endswith("/ResourceNotFound")

    # deleted: the copy is withdrawn at the source, and the internal subscription to registrations goes
    assert broker.delete(f"{BASE}/subscriptions/{SUB}").status_code == 204
    _run_jobs(broker)
    assert _copies(broker) == []
    assert _sent_to_source(receiver)[-1][:2] == ("DELETE", SOURCE + "/ngsi-ld/v1/subscriptions/" +
                                                  renewed.replace(":", "%3A"))
    assert broker.get(f"{BASE}/csourceSubscriptions").json() == []


def test_a_local_only_subscription_goes_to_no_source(broker: Any, receiver: Any) -> None:
    assert broker.post(f"{BASE}/csourceRegistrations", json={
        "id": "urn:ngsi-ld:ContextSourceRegistration:s", "type": "ContextSourceRegistration",
        "information": [{"entities": [{"type": "Vehicle"}]}], "endpoint": SOURCE}).status_code == 201
    assert broker.post(f"{BASE}/subscriptions", json={
        "id": SUB, "type": "Subscription", "entities": [{"type": "Vehicle"}], "localOnly": True,
        "notification": {"endpoint": {"uri": URI}}}).status_code == 201
    _run_jobs(broker)
    assert _sent_to_source(receiver) == [] and _copies(broker) == []
    assert broker.get(f"{BASE}/csourceSubscriptions").json() == []


def test_an_unknown_copy_is_refused_before_any_context_it_names_is_fetched(ngsi: Any, monkeypatch: Any) -> None:
    """The route is open to anyone: a made-up id must not make the broker fetch (and keep) a remote @context."""
    from wecity.context import protocol

    asked: list[Any] = []

    async def resolving(ctx: Any, context: Any) -> Any:
        asked.append(context)
        raise AssertionError("resolved a @context for an unknown copy")

    monkeypatch.setattr(protocol, "resolve", resolving)
    answer = ngsi.post("/ngsi-ld/ex/remote-notify", headers={
        "Authorization": "", "Link": '<https://attacker.example/ctx.jsonld>; rel="http://www.w3.org/ns/json-ld#context"'},
        json={"subscriptionId": "urn:ngsi-ld:Subscription:guessed", "data": []})
    assert answer.status_code == 404 and answer.json()["type"].endswith("/ResourceNotFound")
    assert asked == []
    assert ngsi.post("/ngsi-ld/ex/remote-notify", headers={"Authorization": ""},
                     json={"data": []}).status_code == 400
