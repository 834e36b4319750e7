"""Seed the demo city: Changsha's model, an API key, and about 30 days of lived-in history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.demo.changsha import seed_city
from wecity.identity.service import add_api_key

# One key per purpose, as a city would hand them out: each can do its one job and nothing else.
DEMO_KEYS = {
    "open311": ("Open311 clients (citizen apps) / Open311 客户端", ["open311:write"]),
    "sensors": ("sensor gateways / 传感器网关", ["ngsild:read", "ngsild:write"]),
    "dashboards": ("dashboards (read only) / 大屏（只读）", ["ngsild:read"]),
}


def seed_demo(conn: Connection, now: datetime, settings: Any = None, *, history: bool = True) -> dict[str, str]:
    """Seed the city (and, by default, 30 days of history); return the demo API keys by purpose."""
    seed_city(conn, now)
    keys = {purpose: add_api_key(conn, name=name, scopes=scopes, now=now)
            for purpose, (name, scopes) in DEMO_KEYS.items()}
    from wecity.demo.services import seed_services

    seed_services(conn, now, settings, history=history)
    from wecity.demo.datasets import seed_datasets

    seed_datasets(conn, now)
    if history:
        from wecity.demo.history import seed_history
        from wecity.demo.sensors import seed_sensors

        seed_history(conn, now, settings)
        seed_sensors(conn, now)
        from wecity.demo.sharing import seed_sharing

        seed_sharing(conn, now, settings)
        from wecity.demo.enterprises import seed_enterprises

        seed_enterprises(conn, now)
        from wecity.insight.rollup import rebuild

        rebuild(conn, now=now)  # the KPI pages show the month at once; the runner keeps them from here
        if settings is not None:
            # A first category model from the 30 days of history, so that the report form suggests at once
            # (the runner retrains it daily).
            from pathlib import Path

            from wecity.ai.training import collect, decide, fit

            var_dir = Path(settings.var_dir)
            decide(conn, fit(collect(conn), var_dir), var_dir=var_dir, now=now, by="demo")
    return keys
