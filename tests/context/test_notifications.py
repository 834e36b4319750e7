"""Notification content and timing: triggers, showChanges, deletions, sysAttrs, JSON-LD, periodic
subscriptions run by the background runner, and the subscription's own representation and validation."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.context.conftest import BASE, Receiver, entity, prop
from wecity.context import periodic
from wecity.context.protocol import preferences
from wecity.core import outbox

SUBS = f"{BASE}/subscriptions"
E1 = "urn:ngsi-ld:Manhole:1"
URI = "http://receiver.test/notify"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"


def sub(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "Subscription", "entities": [{"type": "Manhole"}],
                            "notification": {"endpoint": {"uri": URI}}}
    body.update(extra)
    return body


def _pending(broker: Any) -> int:
    return broker.ctx.db.read_sync(outbox.counts)["pending"]


def test_default_triggers_notify_attribute_creation_and_update_not_deletion(broker: Any,
                                                                             receiver: Receiver) -> None:
    broker.post(SUBS, json=sub())
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    broker.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 2})
    assert _pending(broker) == 2
    broker.delete(f"{BASE}/entities/{E1}/attrs/depth")
    broker.delete(f"{BASE}/entities/{E1}")
    assert _pending(broker) == 2


def test_entity_deleted_notification_carries_deleted_at_only(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=sub(notificationTrigger=["entityDeleted"]))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    assert _pending(broker) == 0
    broker.delete(f"{BASE}/entities/{E1}")
    assert broker.deliver() == 1
    (data,) = receiver.bodies()[0]["data"]
    assert set(data) == {"id", "type", "deletedAt"} and data["id"] == E1


def test_show_changes_gives_previous_values_and_null_for_deleted(broker: Any, receiver: Receiver) -> None:
    trig = ["attributeUpdated", "attributeDeleted", "entityDeleted"]
    broker.post(SUBS, json=sub(notificationTrigger=trig, notification={"endpoint": {"uri": URI}, "showChanges": True}))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1), owner={"type": "Relationship",
                                                                      "object": "urn:ngsi-ld:Dept:1"}))
    broker.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 2})
    assert broker.deliver() == 1  # one at a time: deliveries of a batch may arrive in any order
    broker.delete(f"{BASE}/entities/{E1}/attrs/owner")
    assert broker.deliver() == 1
    broker.delete(f"{BASE}/entities/{E1}")
    assert broker.deliver() == 1
    updated, deleted_attr, deleted_entity = (b["data"][0] for b in receiver.bodies())
    assert updated["depth"] == {"type": "Property", "value": 2, "previousValue": 1}
    assert deleted_attr["owner"] == {"type": "Relationship", "object": "urn:ngsi-ld:null",
                                     "previousObject": "urn:ngsi-ld:Dept:1"}
    assert deleted_entity["depth"] == {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": 2}
    assert "deletedAt" in deleted_entity


def test_json_ld_notification_has_context_in_each_entity_and_no_link(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=sub(notification={"endpoint": {"uri": URI, "accept": "application/ld+json"},
                                             "format": "keyValues", "sysAttrs": True}))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    assert broker.deliver() == 1
    body = receiver.bodies()[0]
    assert "link" not in receiver.requests[0].headers
    assert "@context" in body and "@context" in body["data"][0]
    assert {"createdAt", "modifiedAt"} <= set(body["data"][0])  # sysAttrs, even in keyValues


def test_times_sent_is_counted_when_the_notification_leaves(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=sub(id="urn:ngsi-ld:Subscription:c"))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    seen: list[Any] = []
    original = receiver.__call__

    def call(request: Any) -> Any:
        seen.append(broker.ctx.db.read_sync(
            lambda conn: conn.exec_driver_sql("SELECT times_sent FROM ngsild_subscriptions").scalar_one()))
        return original(request)

    broker.ctx.services["ngsild_http"]._transport.handler = call
    assert broker.deliver() == 1
    assert seen == [1]


def test_periodic_subscription_notifies_every_interval_with_all_matching_entities(broker: Any,
                                                                                 receiver: Receiver) -> None:
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    broker.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:2", depth=prop(2)))
    broker.post(f"{BASE}/entities", json={"id": "urn:ngsi-ld:Pump:1", "type": "Pump", "depth": prop(3)})
    assert broker.post(SUBS, json=sub(timeInterval=10, q="depth>=1")).status_code == 201
    assert _pending(broker) == 0
    store = broker.ctx.services["ngsild_contexts"]

    def due() -> int:
        return int(broker.ctx.db.write_sync(periodic.run_due, store, broker.city.clock.now(),
                                            broker.ctx.registry.events))

    assert due() == 1
    assert due() == 0  # not again before the interval
    assert broker.deliver() == 1
    broker.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 5})
    assert _pending(broker) == 0  # a change does not notify a periodic subscription
    broker.city.clock.advance(seconds=10)
    assert due() == 1
    assert broker.deliver() == 1
    first, second = receiver.bodies()
    assert sorted(e["id"] for e in first["data"]) == [E1, "urn:ngsi-ld:Manhole:2"]
    assert [e["depth"]["value"] for e in second["data"]] == [5, 2]


def test_periodic_task_is_registered_with_the_runner(broker: Any, receiver: Receiver) -> None:
    from wecity.core.runner import Runner

    assert "context.periodic_notifications" in broker.ctx.registry.periodic
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    broker.post(SUBS, json=sub(timeInterval=5))
    asyncio.run(Runner(broker.ctx).run_until_idle())
    assert len(receiver.requests) == 1


def test_representation_shows_status_and_default_trigger_but_not_isactive(broker: Any) -> None:
    broker.post(SUBS, json=sub(id="urn:ngsi-ld:Subscription:r", timeInterval=5,
                               status="expired", _entities=[{"type": "X"}]))
    got = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:r").json()
    assert got["status"] == "active" and "isActive" not in got and "_entities" not in got
    assert got["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]
    assert "timesSent" not in got["notification"]


def test_invalid_subscriptions_are_bad_request_data(broker: Any) -> None:
    note = {"endpoint": {"uri": URI}}
    bad = [
        sub(notificationTrigger=["entityChanged"]), sub(csf="(("), sub(expiresAt="2000-01-01T00:00:00Z"),
        sub(jsonldContext="unknownContext"), sub(timeInterval=5, watchedAttributes=["depth"]),
        sub(notification={**note, "attributes": []}), sub(notification={**note, "pick": []}),
        sub(notification={**note, "pick": ["depth"], "omit": ["depth"]}),
        sub(notification={**note, "attributes": ["depth"], "omit": ["id"]}),
        sub(notification={**note, "format": "keyValues", "showChanges": True}),
        sub(notification={"endpoint": {"uri": URI, "receiverInfo": [{"key": "K", "value": 42}]}}),
        sub(notification={"endpoint": {"uri": URI, "receiverInfo": [{"key": "K"}]}}),
    ]
    for body in bad:
        r = broker.post(SUBS, json=body)
        assert r.status_code == 400, body
        assert r.json()["type"] == ERR + "BadRequestData"


def test_unreachable_jsonld_context_is_504(broker: Any) -> None:
    r = broker.post(SUBS, json=sub(jsonldContext="http://127.0.0.1:9/nowhere.jsonld"))
    assert r.status_code == 504 and r.json()["type"] == ERR + "LdContextNotAvailable"


def test_update_needs_whole_notification_and_keeps_mandatory_members(broker: Any) -> None:
    broker.post(SUBS, json=sub(id="urn:ngsi-ld:Subscription:u"))
    url = f"{SUBS}/urn:ngsi-ld:Subscription:u"
    assert broker.patch(url, json={"notification": {"format": "keyValues"}}).status_code == 400
    assert broker.patch(url, json={"notification": None}).status_code == 400
    new = {"endpoint": {"uri": "http://other.test/n"}, "format": "keyValues"}
    assert broker.patch(url, json={"notification": new}).status_code == 204
    assert broker.get(url).json()["notification"]["endpoint"]["uri"] == "http://other.test/n"


def test_prefer_header_is_parsed_per_rfc_7240(broker: Any) -> None:
    assert preferences('respond-async, NGSI-LD="1.0";q=0.1') == {"respond-async": None, "ngsi-ld": "1.0"}
    broker.post(SUBS, json=sub(id="urn:ngsi-ld:Subscription:p"))
    r = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:p", headers={"Prefer": "Ngsi-Ld=1.0"})
    assert r.status_code == 200 and r.headers["preference-applied"] == "ngsi-ld=1.0"
    assert "preference-applied" not in broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:p").headers


def test_list_has_prev_and_next_links(broker: Any) -> None:
    for i in range(3):
        broker.post(SUBS, json=sub(id=f"urn:ngsi-ld:Subscription:{i}"))
    links = broker.get(SUBS, params={"limit": 1, "offset": 1}).headers["link"]
    assert "offset=0>;rel=\"prev\"" in links and "offset=2>;rel=\"next\"" in links


def test_deleting_an_entity_is_an_attribute_deletion_of_the_watched_attributes(broker: Any,
                                                                                receiver: Receiver) -> None:
    broker.post(SUBS, json=sub(watchedAttributes=["depth"], notificationTrigger=["attributeDeleted"]))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1), owner=prop("x")))
    broker.delete(f"{BASE}/entities/{E1}")
    assert broker.deliver() == 1
    (data,) = receiver.bodies()[0]["data"]
    assert data["depth"] == {"type": "Property", "value": "urn:ngsi-ld:null"}
    assert "owner" not in data and "deletedAt" in data


def test_entity_type_selection_in_a_subscription(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=sub(entities=[{"type": "(Pump|Manhole)"}]))
    broker.post(SUBS, json=sub(entities=[{"type": "Manhole;Pump"}]))
    broker.post(f"{BASE}/entities", json=entity(depth=prop(1)))
    assert _pending(broker) == 1  # the first only: a Manhole is not also a Pump
    broker.post(f"{BASE}/entities", json={"id": "urn:ngsi-ld:X:1", "type": ["Manhole", "Pump"], "depth": prop(1)})
    assert _pending(broker) == 3
    assert broker.post(SUBS, json=sub(entities=[{"type": "(Pump|"}])).status_code == 400


def test_an_entity_in_an_earlier_preferred_version(broker: Any) -> None:
    vocab = {"type": "VocabProperty", "vocab": "green"}
    broker.post(f"{BASE}/entities", json=entity(colour=vocab, depth=prop(1)))
    r = broker.get(f"{BASE}/entities/{E1}", headers={"Prefer": "ngsi-ld=1.5"})
    assert r.status_code == 203 and r.headers["preference-applied"] == "ngsi-ld=1.5"
    assert r.json()["colour"] == {"type": "Property", "value": "green"}
    r = broker.get(f"{BASE}/entities/{E1}", headers={"Prefer": "ngsi-ld=1.9"})
    assert r.status_code == 200 and r.json()["colour"]["type"] == "VocabProperty"
    assert "preference-applied" not in broker.get(f"{BASE}/entities/{E1}").headers
    # A "version" of thousands of digits is no version: ignored, as any preference the broker does not know.
    for silly in ("ngsi-ld=1." + "1" * 5000, "ngsi-ld=" + "9" * 5000, "ngsi-ld=" + ".1" * 50):
        for url in (f"{BASE}/entities/{E1}", SUBS):
            r = broker.get(url, headers={"Prefer": silly})
            assert r.status_code == 200 and "preference-applied" not in r.headers, (silly[:20], url)


def test_datasetid_limits_the_instances_notified(broker: Any, receiver: Receiver) -> None:
    gps = "urn:ngsi-ld:Dataset:gps"
    broker.post(SUBS, json=sub(datasetId=[gps]))
    broker.post(f"{BASE}/entities", json=entity(depth=[prop(1), prop(2, datasetId=gps)]))
    assert broker.deliver() == 1
    (data,) = receiver.bodies()[0]["data"]
    assert data["depth"] == {"type": "Property", "value": 2, "datasetId": gps}


def test_linked_entity_terms_in_q_read_the_target(broker: Any, receiver: Receiver) -> None:
    for n, level in ((1, 0.3), (2, 0.95)):
        broker.post(f"{BASE}/entities", json={"id": f"urn:ngsi-ld:Device:{n}", "type": "Device",
                                              "batteryLevel": prop(level)})
    broker.post(SUBS, json=sub(q="connectedTo{batteryLevel}<0.5"))
    for n in (2, 1):
        rel = {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{n}"}
        broker.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{n}", connectedTo=rel))
    assert broker.deliver() == 1
    assert receiver.bodies()[0]["data"][0]["id"] == "urn:ngsi-ld:Manhole:1"
