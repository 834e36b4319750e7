"""Nothing acknowledged is lost over MQTT: kill -9 `wecity serve` while devices publish QoS 1 readings.

The listener acknowledges (PUBACK) a reading only after the transaction holding it committed, and keeps a
persistent session; so readings it had not acknowledged when it died stay with the broker and come again
when it restarts. After the restart every published reading must be stored (at least once: one committed
but not yet acknowledged may come twice, which is MQTT's QoS 1 contract), none lost.
The test runs its own Mosquitto on a free port, with no limit on queued messages, so that nothing is
dropped by the broker while the platform is down.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .test_kill9 import Server, _free_port

READINGS = 3000
KILL_AFTER = 600  # readings published before the kill (the publisher keeps going meanwhile)

pytestmark = [pytest.mark.crash, pytest.mark.timeout(180)]


def _mosquitto(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    if not shutil.which("mosquitto"):
        pytest.skip("needs the mosquitto broker (scripts/test-services.sh installs it)")
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n"
                    "max_inflight_messages 0\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("mosquitto did not start")


def test_every_published_reading_survives_kill_9(tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.core.settings import Settings
    from wecity.demo.database import create_demo_database
    from wecity.iot.service import provision

    url = f"sqlite:///{tmp_path / 'city.db'}"
    settings = Settings(database_url=url, media_dir=tmp_path / "media", secret_key="m" * 40, var_dir=tmp_path)
    create_demo_database(settings, history=False)
    db = Database(url, pool_size=1)
    db.write_sync(lambda c: provision(c, tenant="", device_id="meter-1", entity_id="urn:ngsi-ld:Meter:1",
                                      entity_type="Meter", now=Clock().now()))
    db.close()

    broker, port = _mosquitto(tmp_path)
    # A fixed client id and a persistent session: the restarted listener gets what the dead one left.
    env = {"PATH": "/usr/bin:/bin", "WECITY_DATABASE_URL": url, "WECITY_SECRET_KEY": "m" * 40,
           "WECITY_VAR_DIR": str(tmp_path), "WECITY_MEDIA_DIR": str(tmp_path / "media"),
           "WECITY_MQTT_URL": f"mqtt://127.0.0.1:{port}?client_id=crash-listener&clean=0"}
    server = Server(env, tmp_path / "server.log")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="crash-meter")
    try:
        server.start()
        time.sleep(1.0)  # the listener subscribes
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()
        published = []
        for seq in range(READINGS):
            published.append(publisher.publish("wecity/default/devices/meter-1/attrs", json.dumps({"seq": seq}),
                                               qos=1))
            if seq == KILL_AFTER:
                server.kill9()
            if seq % 200 == 0:
                time.sleep(0.02)  # a device's pace, not a flood
        for info in published:
            info.wait_for_publish(timeout=30)
        assert all(info.is_published() for info in published), "the broker did not take every reading"
        server.start()  # the restarted listener resumes the session

        def stored() -> set[int]:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(
                    "SELECT number FROM ngsild_attribute_history WHERE entity_id = 'urn:ngsi-ld:Meter:1'").all()
            engine.dispose()
            return {int(r[0]) for r in rows if r[0] is not None}

        deadline = time.monotonic() + 60
        got: set[int] = set()
        while time.monotonic() < deadline:
            got = stored()
            if len(got) == READINGS:
                break
            time.sleep(0.5)
        missing = sorted(set(range(READINGS)) - got)
        assert not missing, f"{len(missing)} readings lost, e.g. {missing[:10]}"
    finally:
        publisher.loop_stop()
        server.stop()
        broker.terminate()
        broker.wait(timeout=10)
