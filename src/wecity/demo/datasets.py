"""The demo city's data catalogue: 16 datasets of its departments (wecity/datashare/data/demo-datasets.json)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.datashare.catalogue import packaged_demo_datasets, publish_all
from wecity.identity.models import departments
from wecity.identity.service import add_department


def seed_datasets(conn: Connection, now: datetime) -> int:
    document = packaged_demo_datasets()
    known = set(conn.execute(sa.select(departments.c.code)).scalars())
    for d in document.get("departments", []):
        if d["code"] not in known:
            add_department(conn, code=d["code"], name_zh=d["name_zh"], name_en=d["name_en"])
    return publish_all(conn, document, now=now)
