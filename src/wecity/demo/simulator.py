"""`wecity demo --simulate-sensors`: the demo city's devices publish readings over MQTT, now and then a fault.

Each provisioned demo device publishes its reading as JSON to `wecity/default/devices/{device}/attrs`
(QoS 1), like a vendor's gateway would; the platform's MQTT listener stores it and the sensor rules
open a case when a reading is a fault. Runs in a thread until stopped; bounded in rate.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from urllib.parse import urlparse

from wecity.demo.sensors import COUNTS, device_id, reading

log = logging.getLogger(__name__)


def run(url: str, stop: threading.Event, *, every_seconds: float = 1.0, per_tick: int = 5,
        fault_every: int = 30, seed: int | None = None) -> int:
    """Publish until `stop` is set; returns how many readings were published."""
    import paho.mqtt.client as mqtt

    parsed = urlparse(url)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"wecity-demo-sim-{random.randrange(10**6)}")
    if parsed.username:
        client.username_pw_set(parsed.username, parsed.password)
    client.connect(parsed.hostname or "127.0.0.1", parsed.port or 1883)
    client.loop_start()
    rng = random.Random(seed)
    kinds = [k for k, n in COUNTS.items() for _ in range(n)]
    published = 0
    tick = 0
    try:
        while not stop.wait(every_seconds):
            tick += 1
            for _ in range(per_tick):
                kind = rng.choice(kinds)
                n = rng.randint(1, COUNTS[kind])
                fault = kind != "AirQualityObserved" and tick % fault_every == 0 and published % per_tick == 0
                topic = f"wecity/default/devices/{device_id(kind, n)}/attrs"
                client.publish(topic, json.dumps(reading(kind, rng, fault=fault)), qos=1)
                published += 1
                if fault:
                    log.info("simulated fault", extra={"fields": {"device": device_id(kind, n), "kind": kind}})
    finally:
        client.loop_stop()
        client.disconnect()
    return published


def start(url: str) -> threading.Event:
    """Run the simulator in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run, args=(url, stop), name="wecity-sensor-simulator", daemon=True).start()
    return stop
