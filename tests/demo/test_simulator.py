"""The sensing loop end to end: simulated devices publish over a real Mosquitto; faults open cases."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import pytest
import sqlalchemy as sa

from wecity.cases.models import cases
from wecity.demo import simulator
from wecity.demo.sensors import seed_sensors

from ..conftest import City, make_client

MQTT_URL = os.environ.get("WECITY_TEST_MQTT_URL")


@pytest.mark.skipif(not MQTT_URL, reason="needs Mosquitto: set WECITY_TEST_MQTT_URL (make test starts it)")
def test_simulated_faults_over_mqtt_open_cases(sqlite_city: City) -> None:
    city = sqlite_city
    city.db.write_sync(lambda c: seed_sensors(c, city.clock.now()))
    assert MQTT_URL
    with make_client(city, mqtt_url=MQTT_URL):
        time.sleep(1.0)  # the listener subscribes
        stop = threading.Event()
        stopper = threading.Timer(4.0, stop.set)
        stopper.start()
        published = simulator.run(MQTT_URL, stop, every_seconds=0.2, per_tick=5, fault_every=2, seed=7)
        assert published >= 50
        deadline = time.monotonic() + 15
        opened: list[sa.Row] = []
        while time.monotonic() < deadline:
            opened = city.db.read_sync(lambda c: c.execute(
                sa.select(cases.c.category_code, cases.c.source, cases.c.area_id)).all())
            if opened:
                break
            time.sleep(0.3)
    assert opened, "no fault reading opened a case"
    assert {row.source for row in opened} == {"sensor"}
    assert {row.category_code for row in opened} <= {"manhole", "garbage", "streetlight"}
    assert all(row.area_id is not None for row in opened)


def test_make_client_accepts_settings_overrides(sqlite_city: City) -> None:
    """(The helper above relies on it.)"""
    assert replace(sqlite_city.settings, mqtt_url="mqtt://x:1").mqtt_url == "mqtt://x:1"
