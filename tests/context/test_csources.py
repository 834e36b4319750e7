"""Context source registrations (/csourceRegistrations): registered, read, found, changed and removed;
what is refused and why; which registered sources serve a request (`sources.sources_for`); and
subscriptions to registrations (/csourceSubscriptions) notifying a real HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.conftest import City
from tests.core.notifications import Notifications, delivering_client

from .conftest import BASE, entity, prop

REGS = f"{BASE}/csourceRegistrations"
CSUBS = f"{BASE}/csourceSubscriptions"
ERR = "https://uri.etsi.org/ngsi-ld/errors/"
DEFAULT = "https://uri.etsi.org/ngsi-ld/default-context/"
R1 = "urn:ngsi-ld:ContextSourceRegistration:1"
CAR = "urn:ngsi-ld:Vehicle:A1"


def reg(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": R1, "type": "ContextSourceRegistration",
                            "information": [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}],
                            "endpoint": "http://source.example.com/ngsi-ld"}
    body.update(extra)
    return body


def _problem(r: Any, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == ERR + kind and body["title"]
    return body  # type: ignore[no-any-return]


def test_a_registration_is_kept_shown_found_changed_and_removed(ngsi: Any) -> None:
    r = ngsi.post(REGS, json=reg(csourceOwner="roads department"))
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"{REGS}/{R1}"
    shown = ngsi.get(f"{REGS}/{R1}").json()
    assert shown["information"] == [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}]
    assert shown["mode"] == "inclusive" and shown["operations"] == ["federationOps"]  # the defaults
    assert shown["csourceOwner"] == "roads department"  # a context source property
    assert "createdAt" not in shown
    assert "createdAt" in ngsi.get(f"{REGS}/{R1}", params={"options": "sysAttrs"}).json()

    assert [x["id"] for x in ngsi.get(REGS, params={"type": "Vehicle"}).json()] == [R1]
    assert ngsi.get(REGS, params={"type": "Bus"}).json() == []
    assert [x["id"] for x in ngsi.get(REGS, params={"attrs": "speed"}).json()] == [R1]
    assert ngsi.get(REGS, params={"attrs": "colour"}).json() == []
    assert [x["id"] for x in ngsi.get(REGS, params={"q": 'csourceOwner=="roads department"'}).json()] == [R1]
    assert ngsi.get(REGS, params={"csf": 'endpoint=="http://elsewhere.example.com"'}).json() == []

    r = ngsi.patch(f"{REGS}/{R1}", json={"endpoint": "http://other.example.com", "csourceOwner": None})
    assert r.status_code == 204, r.text
    shown = ngsi.get(f"{REGS}/{R1}").json()
    assert shown["endpoint"] == "http://other.example.com" and "csourceOwner" not in shown

    assert ngsi.delete(f"{REGS}/{R1}").status_code == 204
    _problem(ngsi.get(f"{REGS}/{R1}"), 404, "ResourceNotFound")
    _problem(ngsi.delete(f"{REGS}/{R1}"), 404, "ResourceNotFound")


def test_names_are_kept_expanded_and_shown_in_the_readers_terms(ngsi: Any) -> None:
    ctx = {"@context": {"Car": "https://example.org/Car", "rpm": "https://example.org/rpm"}}
    body = reg(information=[{"entities": [{"type": "Car"}], "propertyNames": ["rpm"]}], **ctx)
    assert ngsi.post(REGS, json=body, headers={"Content-Type": "application/ld+json"}).status_code == 201
    info = ngsi.get(f"{REGS}/{R1}").json()["information"][0]  # the core context only
    assert info == {"entities": [{"type": "https://example.org/Car"}], "propertyNames": ["https://example.org/rpm"]}
    found = ngsi.get(REGS, params={"type": "https://example.org/Car"}).json()
    assert [x["id"] for x in found] == [R1]


@pytest.mark.parametrize(("change", "why"), [
    ({"information": None}, "needs information"),
    ({"endpoint": "not a uri"}, "endpoint must be a URI"),
    ({"type": "Registration"}, "type must be"),
    ({"information": [{}]}, "RegistrationInfo needs"),
    ({"expiresAt": "2020-01-01T00:00:00Z"}, "in the past"),
    ({"management": {"cooldown": 0}}, "cooldown"),
    ({"management": {"cacheDuration": "soon"}}, "cacheDuration"),
    ({"contextSourceInfo": [{"key": "X-Token", "value": 5}]}, "key and value pairs"),
    # a source of anyone's choosing would collect every reader's key and session
    ({"contextSourceInfo": [{"key": "Authorization", "value": "urn:ngsi-ld:request"}]}, "caller's credentials"),
    ({"contextSourceInfo": [{"key": "cookie", "value": "urn:ngsi-ld:request"}]}, "caller's credentials"),
    ({"contextSourceInfo": [{"key": "X-API-Key", "value": "urn:ngsi-ld:request"}]}, "caller's credentials"),
    ({"operations": ["teleportEntity"]}, "unknown operations"),
    ({"mode": "auxiliary", "operations": ["updateOps"]}, "auxiliary"),
    ({"mode": "exclusive"}, "by its id"),  # a type alone
    ({"mode": "exclusive", "information": [{"entities": [{"type": "Vehicle", "id": CAR}]}]}, "attributes"),
    ({"location": {"type": "Point", "coordinates": [500, 0]}}, "out of range"),
])
def test_a_malformed_registration_is_bad_request_data_and_not_kept(ngsi: Any, change: dict[str, Any],
                                                                   why: str) -> None:
    problem = _problem(ngsi.post(REGS, json=reg(**change)), 400, "BadRequestData")
    assert why in problem["detail"]
    _problem(ngsi.get(f"{REGS}/{R1}"), 404, "ResourceNotFound")


def test_requests_about_registrations_that_make_no_sense_are_refused(ngsi: Any) -> None:
    assert ngsi.post(REGS, json=reg()).status_code == 201
    _problem(ngsi.post(REGS, json=reg()), 409, "AlreadyExists")
    _problem(ngsi.get(REGS), 400, "BadRequestData")  # a query that asks nothing
    _problem(ngsi.get(REGS, params={"q": "(speed"}), 400, "BadRequestData")
    _problem(ngsi.get(REGS, params={"type": "Vehicle", "timerel": "before"}), 400, "BadRequestData")
    _problem(ngsi.get(f"{REGS}/not-a-uri"), 400, "BadRequestData")
    _problem(ngsi.patch(f"{REGS}/{R1}", json={"endpoint": None}), 400, "BadRequestData")
    r = ngsi.patch(f"{REGS}/{R1}", content=b'{"endpoint": ', headers={"Content-Type": "application/json"})
    _problem(r, 400, "InvalidRequest")
    zh = ngsi.post(REGS, json=reg(id="urn:x:2", information=None), headers={"Accept-Language": "zh-CN"}).json()
    assert "需要 information" in zh["title"]


def test_exclusive_and_redirect_registrations_do_not_take_over_what_is_held(ngsi: Any) -> None:
    speed = [{"entities": [{"type": "Vehicle", "id": CAR}], "propertyNames": ["speed"]}]
    assert ngsi.post(REGS, json=reg(mode="exclusive", information=speed)).status_code == 201
    problem = _problem(ngsi.post(REGS, json=reg(id="urn:x:2", mode="redirect", information=speed)), 409, "Conflict")
    assert R1 in problem["detail"]
    other = [{"entities": [{"type": "Vehicle", "id": CAR}], "propertyNames": ["colour"]}]
    assert ngsi.post(REGS, json=reg(id="urn:x:3", mode="exclusive", information=other)).status_code == 201

    assert ngsi.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Bus:7", type="Bus", seats=prop(40))).status_code == 201
    bus = [{"entities": [{"type": "Bus", "id": "urn:ngsi-ld:Bus:7"}]}]
    _problem(ngsi.post(REGS, json=reg(id="urn:x:4", mode="redirect", information=bus)), 409, "Conflict")
    seats = [{"entities": [{"type": "Bus", "id": "urn:ngsi-ld:Bus:7"}], "propertyNames": ["seats"]}]
    _problem(ngsi.post(REGS, json=reg(id="urn:x:5", mode="exclusive", information=seats)), 409, "Conflict")


def test_sources_for_a_request_follow_operation_entity_attributes_and_mode(city: City, ngsi: Any) -> None:
    from wecity.context.sources import SourceRequest, sources_for

    car_speed = [{"entities": [{"type": "Vehicle", "id": CAR}], "propertyNames": ["speed"]}]
    assert ngsi.post(REGS, json=reg(id="urn:x:inc", operations=["retrieveOps"])).status_code == 201
    assert ngsi.post(REGS, json=reg(id="urn:x:exc", mode="exclusive", information=car_speed,
                                    operations=["redirectionOps"], tenant="fleet",
                                    contextSourceInfo=[{"key": "X-Token", "value": "t"}])).status_code == 201
    assert ngsi.post(REGS, json=reg(id="urn:x:bus", information=[{"entities": [{"type": "Bus"}]}])).status_code == 201
    vehicle, speed = DEFAULT + "Vehicle", DEFAULT + "speed"

    def ask(operation: str, entity_id: str | None = CAR, attrs: set[str] | None = None) -> list[Any]:
        request = SourceRequest(operation, entity_id, frozenset({vehicle}),
                                frozenset(attrs) if attrs is not None else None)
        return city.db.read_sync(lambda c: sources_for(c, "", request, city.clock.now()))  # type: ignore[no-any-return]

    found = ask("retrieveEntity", attrs={speed})
    assert [(s.registration_id, s.mode) for s in found] == [("urn:x:exc", "exclusive"), ("urn:x:inc", "inclusive")]
    exclusive = found[0]
    assert exclusive.endpoint == "http://source.example.com/ngsi-ld" and exclusive.attrs == {speed}
    assert exclusive.tenant == "fleet" and exclusive.context_source_info == ({"key": "X-Token", "value": "t"},)
    assert [s.registration_id for s in ask("updateAttrs")] == ["urn:x:exc"]  # retrieveOps do not update
    assert ask("retrieveEntity", attrs={DEFAULT + "colour"}) == []
    assert [s.registration_id for s in ask("queryEntity", entity_id="urn:ngsi-ld:Vehicle:B2")] == ["urn:x:inc"]
    assert city.db.read_sync(lambda c: sources_for(c, "other", SourceRequest("retrieveEntity", CAR),
                                                   city.clock.now())) == []


@pytest.fixture
def api(city: City) -> Iterator[Any]:
    with delivering_client(city) as client:
        yield client


def test_a_csource_subscriber_hears_of_new_changed_and_gone_registrations(api: Any) -> None:
    receiver = Notifications()
    try:
        assert api.post(REGS, json=reg(id="urn:x:bus", information=[{"entities": [{"type": "Bus"}]}])).status_code == 201
        sub = {"id": "urn:ngsi-ld:Subscription:cs1", "type": "Subscription", "entities": [{"type": "Vehicle"}],
               "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}}}
        assert api.post(CSUBS, json=sub).status_code == 201
        assert api.deliver() == 0  # nothing matched yet: no first notification
        two = [{"entities": [{"type": "Vehicle"}], "propertyNames": ["speed"]}, {"entities": [{"type": "Bus"}]}]
        assert api.post(REGS, json=reg(information=two)).status_code == 201
        assert api.deliver() == 1  # one at a time, so they arrive in order
        assert api.patch(f"{REGS}/{R1}", json={"endpoint": "http://moved.example.com"}).status_code == 204
        assert api.deliver() == 1
        assert api.patch(f"{REGS}/{R1}", json={"information": [{"entities": [{"type": "Tram"}]}]}).status_code == 204
        assert api.deliver() == 1
        assert [n["triggerReason"] for n in receiver.bodies] == ["newlyMatching", "updated", "noLongerMatching"]
        first = receiver.bodies[0]
        assert first["type"] == "ContextSourceNotification" and first["subscriptionId"] == sub["id"]
        (data,) = first["data"]
        assert data["id"] == R1 and data["information"] == [two[0]]  # only the part the subscriber asked for
        assert receiver.bodies[1]["data"][0]["endpoint"] == "http://moved.example.com"

        shown = api.get(f"{CSUBS}/{sub['id']}").json()
        assert shown["status"] == "active" and "notificationTrigger" not in shown
        assert shown["notification"]["timesSent"] == 3 and shown["notification"]["status"] == "ok"
        assert [s["id"] for s in api.get(CSUBS).json()] == [sub["id"]]
        assert api.get(f"{BASE}/subscriptions").json() == []  # not a subscription to entities
        assert api.get(f"{BASE}/subscriptions/{sub['id']}").status_code == 404

        # Changing the subscription sends every registration it now matches.
        assert api.patch(f"{CSUBS}/{sub['id']}", json={"entities": [{"type": "Bus"}]}).status_code == 204
        assert api.deliver() == 1
        last = receiver.bodies[-1]
        assert last["triggerReason"] == "newlyMatching" and [d["id"] for d in last["data"]] == ["urn:x:bus"]

        assert api.delete(f"{CSUBS}/{sub['id']}").status_code == 204
        assert api.delete(f"{REGS}/urn:x:bus").status_code == 204
        assert api.deliver() == 0
    finally:
        receiver.close()


def test_a_csource_subscription_is_checked_like_a_subscription(ngsi: Any) -> None:
    sub = {"type": "Subscription", "entities": [{"type": "Vehicle"}],
           "notification": {"endpoint": {"uri": "http://receiver.example.com/n"}}}
    _problem(ngsi.post(CSUBS, json=dict(sub, type="Registration")), 400, "BadRequestData")
    _problem(ngsi.post(CSUBS, json={k: v for k, v in sub.items() if k != "notification"}), 400, "BadRequestData")
    _problem(ngsi.post(CSUBS, json=dict(sub, temporalQ={"timerel": "after"})), 400, "BadRequestData")
    _problem(ngsi.post(f"{BASE}/subscriptions", json=dict(sub, temporalQ={"timerel": "after", "timeAt":
                                                                         "2026-01-01T00:00:00Z"})),
             400, "BadRequestData")  # temporalQ is for registrations
    r = ngsi.post(CSUBS, json=dict(sub, isActive=False))
    assert r.status_code == 201
    sub_id = r.headers["Location"].rsplit("/", 1)[1]
    assert ngsi.get(f"{CSUBS}/{sub_id}").json()["status"] == "paused"
    # An expiresAt in the past ends the subscription.
    assert ngsi.patch(f"{CSUBS}/{sub_id}", json={"expiresAt": "2020-01-01T00:00:00Z"}).status_code == 204
    assert ngsi.get(f"{CSUBS}/{sub_id}").json()["status"] == "expired"
    _problem(ngsi.get(f"{CSUBS}/urn:ngsi-ld:Subscription:none"), 404, "ResourceNotFound")


def test_an_expired_registration_is_gone_for_every_reader(city: City, ngsi: Any) -> None:
    soon = (city.clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ngsi.post(REGS, json=reg(expiresAt=soon)).status_code == 201
    assert ngsi.get(f"{REGS}/{R1}").status_code == 200
    city.clock.advance(minutes=6)
    _problem(ngsi.get(f"{REGS}/{R1}"), 404, "ResourceNotFound")
    _problem(ngsi.patch(f"{REGS}/{R1}", json={"endpoint": "http://source.example.com/other"}), 404, "ResourceNotFound")
    assert [x["id"] for x in ngsi.get(REGS, params={"type": "Vehicle"}).json()] == []


def test_a_stored_registration_never_has_the_callers_credentials_copied() -> None:
    """Registrations kept before credentials were refused are still not given them."""
    import httpx

    from wecity.context.federation import Registration
    from wecity.context.forwarding import Forwarder
    from wecity.core.outbound import OutboundPolicy

    reg = Registration(id="urn:x:old", endpoint="http://source.example.com", mode="inclusive",
                       operations=frozenset(), information=(),
                       context_source_info=(("Authorization", "urn:ngsi-ld:request"),
                                            ("Cookie", "urn:ngsi-ld:request"),
                                            ("X-Trace", "urn:ngsi-ld:request"), ("X-Token", "mine")))
    forwarder = Forwarder(httpx.AsyncClient(), OutboundPolicy(), "broker-a", max_bytes=1000)
    incoming = {"authorization": "Bearer wk_secret", "cookie": "wecity_session=s", "x-trace": "t1"}
    headers, _ = forwarder.headers_for(reg, incoming, None, has_body=False)
    assert headers["X-Trace"] == "t1" and headers["X-Token"] == "mine"
    assert not {k.lower() for k in headers} & {"authorization", "cookie"}


def test_a_query_sources_take_part_in_pages_through_a_window_only(ngsi: Any) -> None:
    """Its local read takes every row before the page: a huge offset is TooManyResults, not a database
    overflow answered as a 404."""
    assert ngsi.post(REGS, json=reg()).status_code == 201
    for offset in (2**63 - 10, 9_990):
        problem = _problem(ngsi.get(f"{BASE}/entities", params={"type": "Vehicle", "offset": offset, "limit": 20}),
                           403, "TooManyResults")
        assert "10000" in problem["detail"]
    assert ngsi.get(f"{BASE}/entities", params={"type": "Vehicle", "offset": 2**63 - 10, "local": "true"}).status_code == 200
