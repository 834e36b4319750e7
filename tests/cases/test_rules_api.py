"""Administrators manage the sensor rules over the staff API; others are refused; every change is audited."""

from __future__ import annotations

from typing import Any

import pytest
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


ANOMALY = TILT | {"q": "", "anomaly_attribute": "tiltAngle", "description_zh": "井盖传感器异常",
                  "description_en": "manhole sensor anomaly"}


def test_a_rule_may_watch_an_attribute_for_anomalies_instead_of_a_q_condition(city: City) -> None:
    with make_client(city) as client:
        admin = _signed_in(client, "admin")
        r = client.post(RULES, json=ANOMALY, headers=admin)
        assert r.status_code == 201, r.text
        rule = r.json()
        assert (rule["q"], rule["anomaly_attribute"], rule["anomaly_kind"], rule["anomaly_threshold"]) == (
            "", "tiltAngle", "any", None)  # any kind, the platform's threshold
        r = client.post(RULES, json=ANOMALY | {"q": "tiltAngle>10", "anomaly_kind": "drift", "anomaly_threshold": 4},
                        headers=admin)
        assert r.status_code == 201, r.text
        assert (r.json()["anomaly_kind"], r.json()["anomaly_threshold"]) == ("drift", 4.0)
        listed = client.get(RULES, headers=admin).json()
        assert [x["anomaly_kind"] for x in listed] == ["any", "drift"]
        plain = client.post(RULES, json=TILT, headers=admin).json()
        assert (plain["anomaly_attribute"], plain["anomaly_kind"]) == (None, None)
    detail = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.detail).where(
        audit_log.c.target == f"sensor_rule:{rule['id']}")).scalar_one())
    assert detail["anomaly"] == {"attribute": "tiltAngle", "kind": "any", "threshold": None}


@pytest.mark.parametrize("change, code, en, zh", [
    ({"anomaly_attribute": None}, "rule.condition", "needs a q condition, an anomaly condition", "规则需要 q 条件"),
    ({"anomaly_kind": "wobble"}, "rule.anomaly_kind", "any, spike, stuck, drift", "之一"),
    ({"anomaly_kind": "stuck", "anomaly_threshold": 5}, "rule.anomaly_threshold", "not to a stuck device", "不适用于卡滞"),
    ({"anomaly_threshold": 1}, "rule.anomaly_threshold", "between 2 and 100", "2 到 100 之间"),
    ({"anomaly_attribute": "tilt angle"}, "rule.anomaly_attribute", "not an NGSI-LD attribute name", "属性名"),
    ({"anomaly_attribute": "observedAt"}, "rule.anomaly_attribute", "not an NGSI-LD attribute name", "属性名"),
    ({"anomaly_attribute": None, "q": "tiltAngle>15", "anomaly_kind": "spike"}, "rule.anomaly_attribute",
     "need anomaly_attribute", "需要同时指定 anomaly_attribute"),
])
def test_bad_anomaly_conditions_are_refused_with_the_reason_in_both_languages(
        sqlite_city: City, change: dict[str, Any], code: str, en: str, zh: str) -> None:
    with make_client(sqlite_city) as client:
        admin = _signed_in(client, "admin")
        r = client.post(RULES, json=ANOMALY | change, headers={**admin, "Accept-Language": "en"})
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code and en in r.json()["title"]
        r = client.post(RULES, json=ANOMALY | change, headers={**admin, "Accept-Language": "zh-CN"})
        assert r.status_code == 400 and zh in r.json()["title"]
        assert client.get(RULES, headers=admin).json() == []  # nothing half-written
