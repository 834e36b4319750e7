"""Administrators manage the sensor rules over the staff API; others are refused; every change is audited."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wecity.cases.models import cases
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.models import audit_log

from ..conftest import City, make_client

RULES = "/api/v1/sensor-rules"
CORE = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
TILT = {"entity_type": "Manhole", "q": "tiltAngle>15", "category_code": "manhole",
        "description_zh": "井盖倾斜", "description_en": "manhole cover tilted"}


def _signed_in(client: Any, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _tilt(client: Any, city: City, entity_id: str, tilt: float) -> None:
    body = {"id": entity_id, "type": "Manhole", "tiltAngle": {"type": "Property", "value": tilt},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.9770, 28.1960]}}}
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", json=[body],
                    headers={"Link": CORE, "Authorization": f"Bearer {city.api_key}"})
    assert r.status_code in (201, 204), r.text


def _sensor_cases(city: City) -> int:
    return city.db.read_sync(lambda c: c.execute(
        sa.select(sa.func.count()).select_from(cases).where(cases.c.source == "sensor")).scalar_one())


def test_an_administrator_adds_pauses_resumes_and_removes_a_rule(city: City) -> None:
    with make_client(city) as client:
        admin = _signed_in(client, "admin")
        r = client.post(RULES, json=TILT, headers=admin)
        assert r.status_code == 201, r.text
        rule = r.json()
        assert rule["q"] == "tiltAngle>15" and rule["active"] is True
        assert [x["id"] for x in client.get(RULES, headers=admin).json()].count(rule["id"]) == 1

        assert client.patch(f"{RULES}/{rule['id']}", json={"active": False}, headers=admin).json()["active"] is False
        _tilt(client, city, "urn:ngsi-ld:Manhole:paused", 40)
        assert _sensor_cases(city) == 0  # a paused rule opens nothing

        assert client.patch(f"{RULES}/{rule['id']}", json={"active": True}, headers=admin).status_code == 200
        _tilt(client, city, "urn:ngsi-ld:Manhole:paused", 41)
        assert _sensor_cases(city) == 1

        assert client.delete(f"{RULES}/{rule['id']}", headers=admin).status_code == 204
        assert client.delete(f"{RULES}/{rule['id']}", headers=admin).status_code == 404
        assert client.patch(f"{RULES}/{rule['id']}", json={"active": True}, headers=admin).status_code == 404
    actions = city.db.read_sync(lambda c: [r.action for r in c.execute(
        sa.select(audit_log.c.action).where(audit_log.c.target == f"sensor_rule:{rule['id']}").order_by(audit_log.c.id))])
    assert actions == ["sensor_rule.add", "sensor_rule.pause", "sensor_rule.resume", "sensor_rule.remove"]


def test_bad_rules_are_refused_with_the_reason(city: City) -> None:
    with make_client(city) as client:
        admin = _signed_in(client, "admin")
        r = client.post(RULES, json=TILT | {"q": "tiltAngle>>"}, headers={**admin, "Accept-Language": "en"})
        assert r.status_code == 400, r.text
        assert client.post(RULES, json=TILT | {"category_code": "no-such"}, headers=admin).status_code == 404
        assert client.post(RULES, json=TILT | {"entity_type": ""}, headers=admin).status_code in (400, 422)
        assert client.get(RULES, headers=admin).json() == []  # nothing half-written


def test_only_administrators_manage_rules(city: City) -> None:
    with make_client(city) as client:
        assert client.get(RULES).status_code == 401
        dispatcher = _signed_in(client, "dispatcher")
        assert client.get(RULES, headers=dispatcher).status_code == 403
        assert client.post(RULES, json=TILT, headers=dispatcher).status_code == 403
        assert client.delete(f"{RULES}/1", headers=dispatcher).status_code == 403
