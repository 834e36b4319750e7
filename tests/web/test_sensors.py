"""The sensors page: entities per type, quiet ones, the cases their readings opened, rules and devices."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.conftest import City
from tests.web.conftest import log_in
from wecity.cases.sensors import add_rule
from wecity.iot.service import provision

CORE = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'


def _manhole(n: int, tilt: float) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Manhole:{n}", "type": "Manhole", "tiltAngle": {"type": "Property", "value": tilt},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.977 + n / 1000, 28.196]}}}


def _upsert(client: Any, city: City, items: list[dict[str, Any]]) -> None:
    r = client.post("/ngsi-ld/v1/entityOperations/upsert", json=items,
                    headers={"Link": CORE, "Authorization": f"Bearer {city.api_key}"})
    assert r.status_code in (201, 204), r.text


def test_sensors_page_shows_types_quiet_sensors_and_the_cases_they_opened(web_city: tuple[Any, City]) -> None:
    web, city = web_city
    city.db.write_sync(lambda c: add_rule(c, entity_type="Manhole", q="tiltAngle>15", category_code="manhole",
                                          description_zh="井盖倾斜", description_en="manhole cover tilted",
                                          now=city.clock.now()))
    city.db.write_sync(lambda c: provision(c, tenant="", device_id="mh-1", entity_id="urn:ngsi-ld:Manhole:1",
                                           entity_type="Manhole", now=city.clock.now()))
    _upsert(web, city, [_manhole(1, 2.0), _manhole(2, 3.0)])
    city.clock.at += timedelta(hours=30)  # both go quiet ...
    _upsert(web, city, [_manhole(3, 40.0)])  # ... and a third, tilted, opens a case

    log_in(web, "supervisor")
    html = web.get("/ops/sensors").text
    assert "井盖" in html and "2 个静默" in html  # 3 manholes, 2 quiet
    assert "urn:ngsi-ld:Manhole:3" in html and 'id="kpi-sensor-cases">1<' in html
    assert "tiltAngle&gt;15" in html and "井盖倾斜" in html  # the rule
    assert "已登记 1 台 MQTT 设备" in html
    assert 'aria-current="page">物联感知' in html

    features = {f["id"]: f["properties"] for f in web.get("/ops/sensors.geojson").json()["features"]}
    assert set(features) == {"urn:ngsi-ld:Manhole:1", "urn:ngsi-ld:Manhole:2", "urn:ngsi-ld:Manhole:3"}
    assert features["urn:ngsi-ld:Manhole:1"]["quiet"] is True and features["urn:ngsi-ld:Manhole:1"]["case_id"] is None
    assert features["urn:ngsi-ld:Manhole:3"]["quiet"] is False and isinstance(features["urn:ngsi-ld:Manhole:3"]["case_id"], int)

    english = web.get("/ops/sensors?lang=en").text
    assert "Manhole covers" in english and "2 quiet" in english


def test_sensors_page_is_for_supervisors(web: Any) -> None:
    assert web.get("/ops/sensors", follow_redirects=False).status_code == 303
    log_in(web, "dispatcher")
    assert web.get("/ops/sensors").status_code == 403


def test_a_rule_s_anomaly_condition_is_shown_in_both_languages(web_city: tuple[Any, City]) -> None:
    web, city = web_city
    city.db.write_sync(lambda c: add_rule(c, entity_type="Manhole", q="", category_code="manhole",
                                          description_zh="井盖传感器卡滞", description_en="manhole sensor stuck",
                                          now=city.clock.now(), anomaly_attribute="tiltAngle", anomaly_kind="stuck"))
    city.db.write_sync(lambda c: add_rule(c, entity_type="Manhole", q="tiltAngle>10", category_code="manhole",
                                          description_zh="井盖突变", description_en="manhole jolt", now=city.clock.now(),
                                          anomaly_attribute="tiltAngle", anomaly_kind="spike", anomaly_threshold=8))
    log_in(web, "supervisor")
    html = web.get("/ops/sensors").text
    assert "tiltAngle 读数异常：卡滞" in html
    assert "<code>tiltAngle&gt;10</code> 且 tiltAngle 读数异常：突变 (稳健 z 值超过 8.0)" in " ".join(html.split())
    english = " ".join(web.get("/ops/sensors?lang=en").text.split())
    assert "reading anomaly of tiltAngle: stuck readings" in english
    assert "<code>tiltAngle&gt;10</code> and reading anomaly of tiltAngle: a spike (robust z above 8.0)" in english
