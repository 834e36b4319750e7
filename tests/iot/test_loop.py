"""The sensing loop over MQTT: a manhole's tilt reading published to the broker opens a case for 城管 in the
district where the manhole is."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from tests.conftest import City
from tests.iot.test_listener import URL, _publish, _until, pytestmark  # noqa: F401 - skips without a broker
from wecity.cases.models import cases
from wecity.cases.sensors import add_rule
from wecity.core.assemble import build_context
from wecity.iot import service
from wecity.iot.listener import MqttListener


def test_a_tilt_reading_over_mqtt_opens_a_case_in_the_right_district(city: City) -> None:
    device = "furong-" + uuid.uuid4().hex[:8]
    entity_id = f"urn:ngsi-ld:Manhole:{device}"
    rule = city.db.write_sync(lambda c: add_rule(c, entity_type="Manhole", q="tiltAngle>15", category_code="manhole",
                                                 description_zh="井盖倾斜", description_en="manhole cover tilted",
                                                 now=city.clock.now()))
    city.db.write_sync(lambda c: service.provision(c, tenant="", device_id=device, entity_id=entity_id,
                                                   entity_type="Manhole", now=city.clock.now()))
    topic = f"wecity/default/devices/{device}/attrs"

    def opened() -> list[sa.Row]:
        return city.db.read_sync(lambda c: c.execute(sa.select(cases).where(
            cases.c.source_ref == f"|{entity_id}|{rule}")).all())

    async def main() -> None:
        ctx = build_context(city.settings, db=city.db, clock=city.clock)
        listener = MqttListener(ctx, URL, share_group=None, client_id=f"test-{uuid.uuid4().hex[:8]}",
                                clean_session=True)
        await listener.start()
        try:
            await asyncio.wait_for(listener.connected.wait(), 10)
            # 五一广场, 芙蓉区: upright first, then tilted.
            await asyncio.to_thread(_publish, [(topic, b'{"tiltAngle": 2.0, "location": [112.9770, 28.1960]}')])
            await _until(lambda: listener.counts["stored"] >= 1)
            assert opened() == []
            await asyncio.to_thread(_publish, [(topic, b'{"tiltAngle": 31.5}')])
            await _until(lambda: listener.counts["stored"] >= 2)
        finally:
            await listener.stop()

    asyncio.run(main())
    (case,) = opened()
    assert case.source == "sensor" and case.category_code == "manhole"
    district = city.db.read_sync(lambda c: c.exec_driver_sql(
        "SELECT a.name_zh, d.code FROM cases c JOIN areas a ON a.id = c.area_id "
        f"JOIN departments d ON d.id = c.department_id WHERE c.id = {int(case.id)}").one())
    assert tuple(district) == ("芙蓉区", "chengguan")
