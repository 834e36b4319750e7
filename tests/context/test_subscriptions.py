"""Subscriptions: CRUD, matching (watched attributes, q, geo, tenants), throttling, and notifications
delivered through the outbox with the subscription's counters kept."""

from __future__ import annotations

from typing import Any

from tests.context.conftest import BASE, CORE, Receiver, entity, point, prop
from wecity.core import outbox

SUBS = f"{BASE}/subscriptions"
E1 = "urn:ngsi-ld:Manhole:1"
URI = "http://receiver.test/notify"


def subscription(**extra: Any) -> dict[str, Any]:
    body = {"type": "Subscription", "entities": [{"type": "Manhole"}], "watchedAttributes": ["tiltAngle"],
            "notification": {"endpoint": {"uri": URI, "accept": "application/json"}, "format": "keyValues",
                             "attributes": ["tiltAngle"]}}
    body.update(extra)
    return body


def _pending(broker: Any) -> int:
    return broker.ctx.db.read_sync(outbox.counts)["pending"]


def test_subscription_crud(broker: Any) -> None:
    r = broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:tilt", q="tiltAngle>15"))
    assert r.status_code == 201
    assert r.headers["location"] == f"{SUBS}/urn:ngsi-ld:Subscription:tilt"
    assert broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:tilt")).status_code == 409
    got = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:tilt").json()
    assert got["status"] == "active" and got["q"] == "tiltAngle>15"
    assert "timesSent" not in got["notification"]  # shown once something was sent
    assert got["notificationTrigger"] == ["attributeCreated", "attributeUpdated"]  # the default, shown
    r = broker.get(SUBS, params={"count": "true"})
    assert r.headers["ngsild-results-count"] == "1" and len(r.json()) == 1
    assert broker.patch(f"{SUBS}/urn:ngsi-ld:Subscription:tilt", json={"isActive": False}).status_code == 204
    assert broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:tilt").json()["status"] == "paused"
    assert broker.delete(f"{SUBS}/urn:ngsi-ld:Subscription:tilt").status_code == 204
    assert broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:tilt").status_code == 404


def test_bad_subscriptions_are_refused(broker: Any) -> None:
    err = "https://uri.etsi.org/ngsi-ld/errors/"
    for body in ({"type": "Subscription", "notification": {"endpoint": {"uri": URI}}},
                 subscription(notification={"endpoint": {"uri": "not a uri"}}),
                 subscription(q="tiltAngle>>"), subscription(throttling=-1), subscription(type="Sub")):
        r = broker.post(SUBS, json=body)
        assert r.status_code == 400, body
        assert r.json()["type"] == err + "BadRequestData"
    r = broker.post(SUBS, json=subscription(timeInterval=60))  # with watchedAttributes
    assert r.status_code == 400 and r.json()["type"] == err + "BadRequestData"


def test_matching_change_is_notified_through_the_outbox(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:tilt", q="tiltAngle>15"))
    broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(3), depth=prop(1)))
    assert _pending(broker) == 0  # q does not hold
    broker.patch(f"{BASE}/entities/{E1}/attrs/depth", json={"value": 2})
    assert _pending(broker) == 0  # not a watched attribute
    broker.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 20})
    assert _pending(broker) == 1  # written with the change, not yet sent
    assert receiver.requests == []
    assert broker.deliver() == 1
    (body,) = receiver.bodies()
    assert body["type"] == "Notification" and body["subscriptionId"] == "urn:ngsi-ld:Subscription:tilt"
    assert body["data"] == [{"id": E1, "type": "Manhole", "tiltAngle": 20}]
    assert CORE in receiver.requests[0].headers["link"]
    sub = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:tilt").json()["notification"]
    assert sub["timesSent"] == 1 and sub["status"] == "ok"
    assert sub["lastNotification"] == sub["lastSuccess"]


def test_failed_delivery_is_recorded_and_retried_until_delivered(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:s"))
    receiver.status = 503
    broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(30)))
    broker.deliver()
    sub = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:s").json()["notification"]
    assert sub["status"] == "failed" and sub["timesFailed"] == 1 and "lastFailure" in sub
    assert _pending(broker) == 1
    receiver.status = 200
    broker.city.clock.advance(hours=2)  # past the outbox's backoff
    assert broker.deliver() == 1
    assert len(receiver.requests) == 2
    sub = broker.get(f"{SUBS}/urn:ngsi-ld:Subscription:s").json()["notification"]
    assert sub["status"] == "ok" and sub["timesSent"] == 2
    assert _pending(broker) == 0


def test_throttling_drops_notifications_inside_the_window(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=subscription(throttling=60))
    broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1)))
    broker.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 2})
    assert _pending(broker) == 1
    broker.city.clock.advance(seconds=61)
    broker.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 3})
    assert _pending(broker) == 2


def test_geo_filter_and_tenant_scope(broker: Any, receiver: Receiver) -> None:
    geo = {"geometry": "Point", "coordinates": [112.98, 28.2], "georel": "near;maxDistance==500"}
    broker.post(SUBS, json=subscription(geoQ=geo, watchedAttributes=None) | {"watchedAttributes": ["tiltAngle"]},
                headers={"NGSILD-Tenant": "changsha"})
    far = entity("urn:ngsi-ld:Manhole:far", tiltAngle=prop(1), location=point(113.1, 28.2))
    near = entity("urn:ngsi-ld:Manhole:near", tiltAngle=prop(1), location=point(112.981, 28.2))
    broker.post(f"{BASE}/entities", json=far, headers={"NGSILD-Tenant": "changsha"})
    broker.post(f"{BASE}/entities", json=near)  # default tenant: not this subscription's
    assert _pending(broker) == 0
    broker.post(f"{BASE}/entities", json=near, headers={"NGSILD-Tenant": "changsha"})
    assert broker.deliver() == 1
    assert receiver.requests[0].headers["ngsild-tenant"] == "changsha"
    assert receiver.bodies()[0]["data"][0]["id"] == "urn:ngsi-ld:Manhole:near"


def test_an_incomplete_or_malformed_geoq_is_refused(broker: Any) -> None:
    # An incomplete geoQ was taken, then failed an assertion on every write of a matching entity (a 500);
    # a geoproperty that is no string was a TypeError (a 500) in a subscription and a Query alike.
    point_near = {"geometry": "Point", "coordinates": [112.98, 28.2], "georel": "near;maxDistance==500"}
    for geo in ({"a": 1}, {"georel": "near;maxDistance==500"}, point_near | {"geoproperty": 5},
                point_near | {"geoproperty": ["location"]}, []):
        r = broker.post(SUBS, json=subscription(geoQ=geo))
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), (geo, r.text)
        query = {"type": "Query", "entities": [{"type": "Manhole"}], "geoQ": geo}
        r = broker.post(f"{BASE}/entityOperations/query", json=query)
        assert r.status_code == 400 and r.json()["type"].endswith("BadRequestData"), (geo, r.text)
    assert broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1), location=point(112.98, 28.2))).status_code == 201


def test_a_stored_geoq_that_names_no_geometry_narrows_nothing(broker: Any) -> None:
    import sqlalchemy as sa

    from wecity.context.models import subscriptions

    broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:old"))

    def incomplete(conn: sa.Connection) -> None:  # as one stored before such a geoQ was refused
        row = conn.execute(sa.select(subscriptions.c.pk, subscriptions.c.body)).one()
        conn.execute(subscriptions.update().where(subscriptions.c.pk == row.pk).values(body=row.body | {"geoQ": {"a": 1}}))

    broker.ctx.db.write_sync(incomplete)
    assert broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1))).status_code == 201
    assert _pending(broker) == 1


def test_a_failed_change_queues_nothing(broker: Any) -> None:
    broker.post(SUBS, json=subscription())
    assert broker.patch(f"{BASE}/entities/{E1}/attrs/tiltAngle", json={"value": 2}).status_code == 404
    assert broker.post(f"{BASE}/entities", json=entity(tiltAngle=prop(None))).status_code == 400
    assert _pending(broker) == 0


def test_batch_upsert_notifies_each_matching_entity(broker: Any, receiver: Receiver) -> None:
    broker.post(SUBS, json=subscription())
    items = [entity(f"urn:ngsi-ld:Manhole:{i}", tiltAngle=prop(i)) for i in range(3)]
    assert broker.post(f"{BASE}/entityOperations/upsert", json=items).status_code == 201
    assert broker.deliver() == 3
    assert sorted(b["data"][0]["tiltAngle"] for b in receiver.bodies()) == [0, 1, 2]
