"""Seed the demo city: Changsha's model, then (when the case engine has them) lived-in history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.demo.changsha import seed_city
from wecity.identity.service import add_api_key


def seed_demo(conn: Connection, now: datetime, settings: Any = None) -> None:
    seed_city(conn, now)
    add_api_key(conn, name="demo portal and Open311 clients", now=now)
