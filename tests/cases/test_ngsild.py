"""Every case is an NGSI-LD ServiceRequest entity: kept in step by the case engine, queried and subscribed
to through the broker, read-only there, and without the reporters' personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.cases.conftest import WUYI_SQUARE, Staff, open_case
from tests.conftest import City
from tests.core.notifications import Notifications, delivering_client
from wecity.cases import engine
from wecity.cases.ngsild import consume, entity_id, publish_all

BASE = "/ngsi-ld/v1"
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"


@pytest.fixture
def api(city: City) -> Iterator[Any]:
    with delivering_client(city) as client:
        yield client


def _published(city: City) -> None:
    """What the runner's `cases.ngsild` job does every few seconds: the entities in step with the events."""
    while city.db.write_sync(lambda c: consume(c, now=city.clock.now())):
        pass


def _entity(api: Any, case_id: int) -> dict[str, Any]:
    r = api.get(f"{BASE}/entities/{entity_id(case_id)}", params={"options": "keyValues"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_subscriber_hears_when_a_case_is_dispatched(api: Any, city: City, staff: Staff) -> None:
    receiver = Notifications()
    r = api.post(f"{BASE}/subscriptions", json={
        "type": "Subscription", "entities": [{"type": "ServiceRequest"}], "watchedAttributes": ["status"],
        "notification": {"endpoint": {"uri": receiver.url, "accept": "application/json"}, "format": "keyValues",
                         "attributes": ["status", "service_code"]}})
    assert r.status_code == 201, r.text
    case_id = open_case(city)  # opened and dispatched at once to 城管
    city.clock.advance(minutes=5)
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.add_note(c, case_id, staff.handler, now, "路过看了一下"))  # shows nothing
    city.db.write_sync(lambda c: engine.return_case(c, case_id, "not_our_duty", staff.handler, now))
    city.clock.advance(minutes=5)
    later = city.clock.now()
    city.db.write_sync(lambda c: engine.dispatch(c, case_id, staff.handler.user.department_id,  # type: ignore[union-attr]
                                                 staff.dispatcher, later))
    _published(city)  # every step since the last run, in turn, though both happened between two runs
    api.deliver()  # the outbox also holds the department's and the reporter's messages
    seen = [(n["data"][0]["id"], n["data"][0]["status"]) for n in receiver.bodies]
    eid = entity_id(case_id)
    # Delivered concurrently, so in any order: each status once (dispatched at once by the intake, the
    # submitted of the same instant not on its own; returned; dispatched again), and nothing for the note.
    assert sorted(seen) == [(eid, "dispatched"), (eid, "dispatched"), (eid, "returned")]
    assert receiver.bodies[0]["data"][0]["service_code"] == "manhole"
    receiver.server.shutdown()
    receiver.server.server_close()


def test_cases_are_queried_by_type_status_and_place(api: Any, city: City, staff: Staff) -> None:
    case_id = open_case(city)
    _published(city)
    eid = entity_id(case_id)
    near = {"type": "ServiceRequest", "georel": "near;maxDistance==100", "geometry": "Point",
            "coordinates": f"[{WUYI_SQUARE[1]},{WUYI_SQUARE[0]}]", "limit": "1000"}
    dispatched = {"type": "ServiceRequest", "q": 'status=="dispatched"', "limit": "1000"}
    assert eid in [e["id"] for e in api.get(f"{BASE}/entities", params=dispatched).json()]
    assert eid in [e["id"] for e in api.get(f"{BASE}/entities", params=near).json()]
    far = {**near, "coordinates": "[113.1,28.3]"}
    assert eid not in [e["id"] for e in api.get(f"{BASE}/entities", params=far).json()]
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, staff.handler, now))
    _published(city)
    assert eid not in [e["id"] for e in api.get(f"{BASE}/entities", params=dispatched).json()]
    shown = _entity(api, case_id)
    assert shown["status"] == "acknowledged" and shown["service_request_id"] == str(case_id)
    assert shown["location"] == {"type": "Point", "coordinates": [WUYI_SQUARE[1], WUYI_SQUARE[0]]}
    # Its history is the temporal API's: the status it went through.
    r = api.get(f"{BASE}/temporal/entities/{eid}", params={"attrs": "status"})
    assert r.status_code == 200, r.text
    assert [i["value"] for i in r.json()["status"]] == ["dispatched", "acknowledged"]


def test_a_merged_case_points_to_the_surviving_one(api: Any, city: City, staff: Staff) -> None:
    first = open_case(city)
    second = open_case(city, lat=WUYI_SQUARE[0] + 0.01)
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.merge(c, second, first, staff.dispatcher, now))
    _published(city)
    shown = _entity(api, second)
    assert shown["status"] == "merged" and shown["mergedInto"] == entity_id(first)


def test_service_requests_are_read_only_through_ngsild(api: Any, city: City) -> None:
    case_id = open_case(city)
    _published(city)
    eid = entity_id(case_id)
    before = _entity(api, case_id)
    refused = [
        api.patch(f"{BASE}/entities/{eid}/attrs", json={"status": {"type": "Property", "value": "closed"}}),
        api.post(f"{BASE}/entities/{eid}/attrs", json={"note": {"type": "Property", "value": 1}}),
        api.patch(f"{BASE}/entities/{eid}/attrs/status", json={"value": "closed"}),
        api.put(f"{BASE}/entities/{eid}/attrs/status", json={"type": "Property", "value": "closed"}),
        api.patch(f"{BASE}/entities/{eid}", json={"status": {"type": "Property", "value": "closed"}}),
        api.put(f"{BASE}/entities/{eid}", json={"type": "ServiceRequest"}),
        api.delete(f"{BASE}/entities/{eid}/attrs/status"),
        api.delete(f"{BASE}/entities/{eid}"),
        api.post(f"{BASE}/entities", json={"id": entity_id(999999), "type": "ServiceRequest"}),
        api.post(f"{BASE}/temporal/entities", json={"id": eid, "type": "ServiceRequest",
                                                   "status": [{"type": "Property", "value": "closed"}]}),
        api.delete(f"{BASE}/temporal/entities/{eid}"),
    ]
    for r in refused:
        assert r.status_code == 422, (r.request.method, r.request.url, r.text)
        assert r.json()["type"] == ERRORS + "OperationNotSupported"
    for op, body in (("upsert", [{"id": eid, "type": "ServiceRequest", "status": {"type": "Property", "value": "x"}}]),
                     ("update", [{"id": eid, "status": {"type": "Property", "value": "x"}}]),
                     ("merge", [{"id": eid, "status": {"type": "Property", "value": "x"}}]),
                     ("delete", [eid])):
        r = api.post(f"{BASE}/entityOperations/{op}", json=body)
        assert r.status_code in (207, 400), (op, r.text)
        errors = r.json()["errors"] if r.status_code == 207 else [r.json()]
        assert any(e.get("entityId") == eid and e["error"]["type"] == ERRORS + "OperationNotSupported"
                   for e in errors), (op, r.text)
    assert _entity(api, case_id) == before


def test_no_personal_data_is_shown(api: Any, city: City) -> None:
    case_id = open_case(city, email="zhang.san@example.cn", phone="13800138000", first_name="三", last_name="张",
                        device_id="device-7f3a", account_id="acct-42")
    token = city.db.read_sync(lambda c: c.execute(sa.text("select token from reports where case_id = :c"),
                                                  {"c": case_id}).scalar())
    _published(city)
    shown = _entity(api, case_id)
    text = json.dumps(shown, ensure_ascii=False)
    for secret in ("zhang.san@example.cn", "13800138000", "张", "device-7f3a", "acct-42", token):
        assert secret not in text
    assert set(shown) == {"id", "type", "service_request_id", "service_code", "service_name", "status",
                          "description", "requested_datetime", "updated_datetime", "expected_datetime",
                          "agency_responsible", "areaServed", "location"}
    assert shown["description"] == "井盖没了，很危险"  # the public case page shows it


def test_the_backfill_writes_missing_entities(api: Any, city: City) -> None:
    case_id = open_case(city)
    _published(city)
    city.db.write_sync(lambda c: c.execute(sa.text("delete from ngsild_entities where entity_id = :e"),
                                           {"e": entity_id(case_id)}))
    assert api.get(f"{BASE}/entities/{entity_id(case_id)}").status_code == 404
    after, written = 0, 0
    while True:
        last, done = city.db.write_sync(lambda c: publish_all(c, city.clock.now(), after_id=after, limit=50))  # noqa: B023
        if last == after:
            break
        after, written = last, written + done
    assert written == 1  # only the missing one: the others were in step
    assert _entity(api, case_id)["status"] == "dispatched"


def test_entities_follow_the_events_after_the_fact_and_intake_does_not_wait(api: Any, city: City) -> None:
    """Intake writes no entity (the hot path stays the case engine's); the runner's job writes it from the
    events, and a gap in the event ids (a transaction not yet committed) is waited for, not skipped."""
    case_id = open_case(city)
    assert api.get(f"{BASE}/entities/{entity_id(case_id)}").status_code == 404
    _published(city)
    assert _entity(api, case_id)["status"] == "dispatched"
    assert city.db.write_sync(lambda c: consume(c, now=city.clock.now())) == 0  # nothing new: nothing taken


def test_an_enterprises_case_is_no_entity_and_one_kept_from_before_is_withdrawn(api: Any, city: City) -> None:
    """The ServiceRequest entities show what the public case page shows: an enterprise's 诉求 is not there."""
    from wecity.cases.categories import add_category
    from wecity.cases.choices import Channel
    from wecity.cases.ngsild import publish_many

    city.db.write_sync(lambda c: add_category(
        c, code="ent-policy", name_zh="惠企政策兑现问题", name_en="Support policy not delivered", group_zh="营商环境",
        group_en="Business environment", department_code="shichang", ack_minutes=240, resolve_hours=40,
        calendar="working", channels=[str(Channel.ENTERPRISE)]))
    hidden = open_case(city, code="ent-policy", channel=Channel.ENTERPRISE, address="湖南某某科技有限公司（芙蓉区）")
    shown = open_case(city)
    _published(city)
    assert api.get(f"{BASE}/entities/{entity_id(hidden)}").status_code == 404
    assert _entity(api, shown)["status"] == "dispatched"
    # Nor can anyone follow it by its id (the ids are sequential).
    from wecity.cases.citizen_voice import follow
    from wecity.core.errors import NotFound

    with pytest.raises(NotFound):
        city.db.write_sync(lambda c: follow(c, hidden, follower_key="ip:1", now=city.clock.now()))
    assert city.db.write_sync(lambda c: follow(c, shown, follower_key="ip:1", now=city.clock.now()))
    # One written before enterprise cases were left out: the backfill takes it away.
    city.db.write_sync(lambda c: c.execute(sa.text("update cases set channel = 'portal' where id = :i"), {"i": hidden}))
    city.db.write_sync(lambda c: publish_many(c, [hidden], city.clock.now()))
    assert _entity(api, hidden)["address_string"] == "湖南某某科技有限公司（芙蓉区）"
    city.db.write_sync(lambda c: c.execute(sa.text("update cases set channel = 'enterprise' where id = :i"), {"i": hidden}))
    assert city.db.write_sync(lambda c: publish_all(c, city.clock.now(), after_id=0, limit=50))[0] >= hidden
    assert api.get(f"{BASE}/entities/{entity_id(hidden)}").status_code == 404
    assert _entity(api, shown)["status"] == "dispatched"


def test_a_batch_of_cases_locks_all_its_entities_at_once_before_writing_any(city: City, monkeypatch: Any) -> None:
    """On PostgreSQL an entity write takes its bucket's lock; case by case the publisher took them in the
    cases' order, and deadlocked with a batch upsert taking them in its own (503 for the sensor gateway).
    The first lock the publisher takes covers every entity of the batch."""
    from wecity.cases import ngsild as module

    cases_opened = [open_case(city, lat=WUYI_SQUARE[0] + 0.01 * i) for i in range(3)]
    taken: list[list[str]] = []
    real = module.context.lock_ids
    monkeypatch.setattr(module.context, "lock_ids", lambda conn, tenant, ids: taken.append(list(ids))
                        or real(conn, tenant, ids))
    city.db.write_sync(lambda c: consume(c, now=city.clock.now()))
    assert taken and set(taken[0]) == {entity_id(i) for i in cases_opened}
