"""Seed the demo city: Changsha's model, an API key, and about 30 days of lived-in history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.demo.changsha import seed_city
from wecity.identity.service import add_api_key


def seed_demo(conn: Connection, now: datetime, settings: Any = None, *, history: bool = True) -> str:
    """Seed the city (and, by default, 30 days of history); return the demo API key."""
    seed_city(conn, now)
    key = add_api_key(conn, name="demo portal and Open311 clients", now=now)
    if history:
        from wecity.demo.history import seed_history
        from wecity.demo.sensors import seed_sensors

        seed_history(conn, now, settings)
        seed_sensors(conn, now)
    return key
