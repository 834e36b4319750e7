"""The demo city's sensors as NGSI-LD entities, and the rules that turn their faults into cases.

Types: `Manhole` (Smart Data Models has none: tiltAngle in degrees, a cover sensor's usual reading),
`Streetlight`, `WasteContainer` and `AirQualityObserved` (FIWARE Smart Data Models).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.cases.sensors import add_rule
from wecity.core.registry import Events
from wecity.geo.index import AreaIndex
from wecity.geo.service import load_area_index

COUNTS = {"Manhole": 40, "Streetlight": 30, "WasteContainer": 24, "AirQualityObserved": 6}

RULES = [
    ("Manhole", "tiltAngle>15", "manhole", "井盖倾斜或移位（传感器）", "Manhole cover tilted or moved (sensor)"),
    ("WasteContainer", "fillingLevel>0.9", "garbage", "垃圾桶已满（传感器）", "Waste container full (sensor)"),
    ("Streetlight", 'status=="defectiveLamp"', "streetlight", "路灯灯具故障（传感器）", "Streetlight lamp fault (sensor)"),
]


def entity_id(kind: str, n: int) -> str:
    return f"urn:ngsi-ld:{kind}:changsha-{n:03d}"


def device_id(kind: str, n: int) -> str:
    """The MQTT device that feeds entity `entity_id(kind, n)`."""
    return f"{kind.lower()}-{n:03d}"


def _point(rng: random.Random, index: AreaIndex) -> tuple[float, float]:
    while True:
        lat, lon = rng.gauss(28.195, 0.04), rng.gauss(112.975, 0.05)
        if index.locate(lat, lon) is not None:
            return lat, lon


def reading(kind: str, rng: random.Random, *, fault: bool = False) -> dict[str, Any]:
    """One reading's attributes, in NGSI-LD's concise form (also the MQTT payload of a device)."""
    if kind == "Manhole":
        return {"tiltAngle": round(rng.uniform(18, 60) if fault else rng.uniform(0, 4), 1),
                "batteryLevel": round(rng.uniform(0.5, 1), 2)}
    if kind == "Streetlight":
        return {"status": "defectiveLamp" if fault else "ok", "powerState": "on"}
    if kind == "WasteContainer":
        return {"fillingLevel": round(rng.uniform(0.92, 1) if fault else rng.uniform(0.05, 0.8), 2)}
    return {"pm25": round(rng.uniform(8, 75), 1), "pm10": round(rng.uniform(15, 110), 1),
            "no2": round(rng.uniform(10, 60), 1), "temperature": round(rng.uniform(5, 18), 1)}


def seed_sensors(conn: Connection, now: datetime, *, seed: int = 311) -> int:
    """Create the demo entities (all healthy) and the rules; returns how many entities."""
    from wecity.context import service as context
    from wecity.context.entity import normalize_entity
    from wecity.context.ldcontext import ContextStore
    from wecity.iot.service import provision

    rng = random.Random(seed)
    index = load_area_index(conn)
    store = ContextStore()
    # Healthy first readings, before any rule exists: nobody needs to hear of them.
    env = context.Env(tenant="", now=now, store=store, events=Events())
    made = 0
    for kind, count in COUNTS.items():
        for n in range(1, count + 1):
            lat, lon = _point(rng, index)
            body: dict[str, Any] = {"id": entity_id(kind, n), "type": kind,
                                    "location": {"type": "GeoProperty",
                                                 "value": {"type": "Point", "coordinates": [round(lon, 6),
                                                                                            round(lat, 6)]}}}
            for name, value in reading(kind, rng).items():
                body[name] = {"type": "Property", "value": value}
            context.create(conn, env, normalize_entity(body, store.core, now))
            provision(conn, tenant="", device_id=device_id(kind, n), entity_id=entity_id(kind, n), entity_type=kind,
                      now=now)
            made += 1
    for entity_type, q, category, zh, en in RULES:
        add_rule(conn, entity_type=entity_type, q=q, category_code=category, description_zh=zh,
                 description_en=en, now=now)
    return made
