"""Sensor rules with an anomaly condition, end to end: manhole tilt readings through the NGSI-LD API; a spike
and a stuck device each open a case that says what was found, a device with normal noise opens none, and a
rule that watches for one kind ignores the others. Supervisors see a sensor's readings judged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from wecity.cases.models import cases
from wecity.cases.sensors import add_rule
from wecity.demo.changsha import DEMO_PASSWORD

from ..conftest import City, make_client

CORE = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
START = datetime(2026, 11, 1, 8, 0)
NORMAL = 30  # readings of normal noise before anything happens


def _rule(city: City, kind: str | None = None, q: str = "") -> int:
    return city.db.write_sync(lambda c: add_rule(
        c, entity_type="Manhole", q=q, category_code="manhole", description_zh="井盖传感器异常",
        description_en="manhole sensor anomaly", now=city.clock.now(), anomaly_attribute="tiltAngle",
        anomaly_kind=kind))


class Device:
    """A manhole tilt sensor that reports through the NGSI-LD API, one reading every ten minutes."""

    def __init__(self, client: Any, name: str, seed: int) -> None:
        self.client, self.id, self.n = client, f"urn:ngsi-ld:Manhole:{name}", 0
        self.noise = np.round(2.0 + np.random.default_rng(seed).normal(0, 0.3, 200), 2)
        body = {"id": self.id, "type": "Manhole", "tiltAngle": self._reading(float(self.noise[0])),
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.9770, 28.1960]}}}
        assert client.post("/ngsi-ld/v1/entities", json=body, headers={"Link": CORE}).status_code == 201

    def _reading(self, value: float) -> dict[str, Any]:
        self.n += 1
        at = START + timedelta(minutes=10 * self.n)
        return {"type": "Property", "value": value, "observedAt": at.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def send(self, value: float) -> None:
        r = self.client.patch(f"/ngsi-ld/v1/entities/{self.id}/attrs", json={"tiltAngle": self._reading(value)},
                              headers={"Link": CORE})
        assert r.status_code == 204, r.text

    def normal(self, n: int) -> None:
        for _ in range(n):
            self.send(float(self.noise[self.n]))


def _cases_of(city: City, entity_id: str) -> list[sa.Row]:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases).where(
        cases.c.source_ref.like(f"%|{entity_id}|%")).order_by(cases.c.id)).all())


def _sensor(client: Any, city: City, name: str, seed: int) -> Device:
    client.headers["Authorization"] = f"Bearer {city.api_key}"
    device = Device(client, name, seed)
    device.normal(NORMAL)
    return device


def test_a_spike_opens_a_case_that_says_what_was_found(city: City) -> None:
    rule_id = _rule(city)
    with make_client(city) as client:
        device = _sensor(client, city, "spike", seed=1)
        assert _cases_of(city, device.id) == []  # thirty normal readings open nothing
        device.send(31.5)  # the cover is knocked askew
        device.send(31.4)
    opened = _cases_of(city, device.id)
    assert len(opened) == 1  # one open case per entity and rule
    case = opened[0]
    assert case.source == "sensor" and case.category_code == "manhole"
    assert case.source_ref == f"|{device.id}|{rule_id}"
    assert "读数异常：tiltAngle 突变（读数 31.5" in case.description
    assert "reading anomaly: tiltAngle spike (reading 31.5" in case.description


def test_a_device_stuck_at_one_value_opens_a_case_and_a_spike_rule_ignores_it(city: City) -> None:
    any_rule = _rule(city)
    _rule(city, "spike")  # watches for spikes only: a stuck device is not its business
    with make_client(city) as client:
        device = _sensor(client, city, "stuck", seed=2)
        stuck = float(device.noise[device.n - 1])  # it keeps sending its last reading
        for _ in range(10):
            device.send(stuck)
        assert _cases_of(city, device.id) == []  # eleven equal readings: not yet
        device.send(stuck)
    opened = _cases_of(city, device.id)
    assert [c.source_ref for c in opened] == [f"|{device.id}|{any_rule}"]
    assert f"读数异常：tiltAngle 卡滞（连续 12 个相同读数 {stuck:g}）" in opened[0].description
    assert f"reading anomaly: tiltAngle stuck (12 equal readings of {stuck:g} in a row)" in opened[0].description


def test_a_device_with_normal_noise_opens_no_case(city: City) -> None:
    _rule(city)
    with make_client(city) as client:
        device = _sensor(client, city, "calm", seed=3)
        device.normal(60)
    assert _cases_of(city, device.id) == []


def test_q_and_the_anomaly_must_both_hold(sqlite_city: City) -> None:
    city = sqlite_city
    _rule(city, "spike", q="tiltAngle>40")
    with make_client(city) as client:
        device = _sensor(client, city, "both", seed=4)
        device.send(31.5)  # a spike, but the cover is not tilted past 40°
        assert _cases_of(city, device.id) == []
        device.send(45.0)  # a spike against a past that holds one outlier, and past 40°
    assert len(_cases_of(city, device.id)) == 1


def _signed_in(client: Any, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize("username, status", [("supervisor", 200), ("admin", 200), ("dispatcher", 403),
                                              ("chengguan", 403)])
def test_supervisors_see_a_sensor_s_readings_judged_and_others_are_refused(sqlite_city: City, username: str,
                                                                            status: int) -> None:
    city = sqlite_city
    with make_client(city) as client:
        device = _sensor(client, city, "judged", seed=5)
        device.send(31.5)
        client.headers.pop("Authorization")
        r = client.get("/api/v1/ai/anomalies", params={"entity": device.id, "attr": "tiltAngle", "last": 5},
                       headers=_signed_in(client, username))
    assert r.status_code == status, r.text
    if status == 403:
        assert r.json()["code"] == "ai.not_allowed"
        return
    body = r.json()
    assert [x["value"] for x in body["readings"]][-1] == 31.5 and len(body["readings"]) == 5
    assert body["readings"][-1]["kinds"] == ["spike"] and body["readings"][-1]["z"] > 50
    assert body["flagged"] == 1 and body["limits"]["threshold"] == 5.0
    assert body["readings"][-1]["observedAt"] == "2026-11-01T13:20:00.000Z"  # the 32nd reading, 10 min apart


def test_the_readings_need_a_signed_in_staff_member(sqlite_city: City) -> None:
    with make_client(sqlite_city) as client:
        r = client.get("/api/v1/ai/anomalies", params={"entity": "urn:ngsi-ld:Manhole:x", "attr": "tiltAngle"})
    assert r.status_code == 401


def test_the_history_read_is_the_default_instance_s_numbers_oldest_first(city: City) -> None:
    from wecity.context.history import recent_readings

    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        device = Device(client, "datasets", seed=6)  # its first reading, at 08:10
        device.send(2.5)
        other = device._reading(80.0) | {"datasetId": "urn:ngsi-ld:Dataset:second-sensor"}
        r = client.post(f"/ngsi-ld/v1/entities/{device.id}/attrs", json={"tiltAngle": other}, headers={"Link": CORE})
        assert r.status_code == 204, r.text
        device.send(2.7)
    iri = "https://uri.etsi.org/ngsi-ld/default-context/tiltAngle"
    readings = city.db.read_sync(lambda c: recent_readings(c, "", device.id, iri, 10))
    assert [v for _, v in readings] == [float(device.noise[0]), 2.5, 2.7]  # the second sensor's 80 is not in
    assert [v for _, v in city.db.read_sync(lambda c: recent_readings(c, "", device.id, iri, 2))] == [2.5, 2.7]


def test_a_control_character_in_the_query_is_refused_in_the_platform_s_format(city: City) -> None:
    with make_client(city) as client:
        r = client.get("/api/v1/ai/anomalies", params={"entity": "urn:ngsi-ld:Manhole:\x00", "attr": "tiltAngle"},
                       headers=_signed_in(client, "supervisor"))
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
