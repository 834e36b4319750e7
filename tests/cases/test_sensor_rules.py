"""The sensing loop: a reading that meets a rule opens a case through the intake; a citizen joins it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.cases.models import cases, reports
from wecity.cases.sensors import add_rule
from wecity.core.errors import ValidationFailed

from ..conftest import City, make_client

CORE = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
MANHOLE_AT = (28.1960, 112.9770)  # 五一广场, 芙蓉区


def _manhole(entity_id: str, tilt: float, at: tuple[float, float] = MANHOLE_AT) -> dict:
    return {"id": entity_id, "type": "Manhole",
            "tiltAngle": {"type": "Property", "value": tilt, "unitCode": "DD"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [at[1], at[0]]}}}


def _cases(city: City) -> list[sa.Row]:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases).order_by(cases.c.id)).all())


@pytest.fixture
def tilt_rule(city: City) -> int:
    return city.db.write_sync(lambda c: add_rule(
        c, entity_type="Manhole", q="tiltAngle>15", category_code="manhole", description_zh="井盖倾斜",
        description_en="manhole cover tilted", now=city.clock.now()))


def test_tilt_reading_opens_one_case_for_chengguan_and_a_citizen_report_joins_it(city: City, tilt_rule: int) -> None:
    headers = {"Link": CORE}
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        created = client.post("/ngsi-ld/v1/entities", json=_manhole("urn:ngsi-ld:Manhole:furong-001", 3.0),
                              headers=headers)
        assert created.status_code == 201, created.text
        assert _cases(city) == []
        for tilt in (22.5, 30.0, 4.0, 28.0):  # tilted, still tilted, back, tilted again (flapping)
            city.clock.advance(minutes=1)
            r = client.patch("/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:furong-001/attrs",
                             json={"tiltAngle": {"type": "Property", "value": tilt}}, headers=headers)
            assert r.status_code == 204, r.text
        opened = _cases(city)
        assert len(opened) == 1
        case = opened[0]
        assert case.source == "sensor" and case.category_code == "manhole"
        assert case.source_ref == f"|urn:ngsi-ld:Manhole:furong-001|{tilt_rule}"
        district = city.db.read_sync(lambda c: c.exec_driver_sql(
            "SELECT a.name_zh, d.code FROM cases c JOIN areas a ON a.id = c.area_id "
            "JOIN departments d ON d.id = c.department_id").one())
        assert tuple(district) == ("芙蓉区", "chengguan")
        # A citizen photographs the same manhole: the report joins the sensor's case (并单).
        response = client.post("/open311/v2/requests.json", data={
            "api_key": city.api_key, "service_code": "manhole", "lat": MANHOLE_AT[0] + 0.0001,
            "long": MANHOLE_AT[1], "attribute[cover_state]": "missing", "description": "井盖翘起来了"})
        assert "并单" in response.json()[0]["service_notice"]
    assert len(_cases(city)) == 1
    assert len(city.db.read_sync(lambda c: c.execute(sa.select(reports)).all())) == 2


def test_other_types_and_unmet_conditions_open_nothing(city: City, tilt_rule: int) -> None:
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        client.post("/ngsi-ld/v1/entities", json=_manhole("urn:ngsi-ld:Manhole:ok", 2.0), headers={"Link": CORE})
        light = {"id": "urn:ngsi-ld:Streetlight:1", "type": "Streetlight",
                 "tiltAngle": {"type": "Property", "value": 40},
                 "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.977, 28.196]}}}
        assert client.post("/ngsi-ld/v1/entities", json=light, headers={"Link": CORE}).status_code == 201
    assert _cases(city) == []


def test_a_sensor_outside_the_city_still_stores_its_reading(sqlite_city: City) -> None:
    city = sqlite_city
    city.db.write_sync(lambda c: add_rule(c, entity_type="Manhole", q="tiltAngle>15", category_code="manhole",
                                          description_zh="井盖倾斜", description_en="tilted", now=city.clock.now()))
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        r = client.post("/ngsi-ld/v1/entities", json=_manhole("urn:ngsi-ld:Manhole:beijing", 40, (39.9, 116.4)),
                        headers={"Link": CORE})
        assert r.status_code == 201
        assert client.get("/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:beijing", headers={"Link": CORE}).status_code == 200
    assert _cases(city) == []


def test_a_rule_with_a_bad_condition_is_refused(sqlite_city: City) -> None:
    with pytest.raises(ValidationFailed):
        sqlite_city.db.write_sync(lambda c: add_rule(
            c, entity_type="Manhole", q="tiltAngle>>", category_code="manhole", description_zh="x",
            description_en="x", now=sqlite_city.clock.now()))
