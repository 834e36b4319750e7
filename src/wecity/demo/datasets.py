"""The demo city's data catalogue: 18 datasets of its departments (wecity/datashare/data/demo-datasets.json),
one of them a table uploaded as CSV through the real upload path (the city's own time limits per category)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import list_categories
from wecity.datashare import queries, uploads
from wecity.datashare.catalogue import packaged_demo_datasets, publish_all
from wecity.geo.service import city_timezone
from wecity.identity.models import departments
from wecity.identity.service import add_department


def _standards_csv(conn: Connection) -> bytes:
    """The categories' time limits as a spreadsheet program would save them: UTF-8 with a byte-order mark,
    the columns headed by the fields' Chinese titles."""
    codes = dict(conn.execute(sa.select(departments.c.id, departments.c.code)).all())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["问题类别代码", "问题类别", "问题类别（英文）", "责任部门", "签收时限（分钟）", "办结时限（小时）"])
    for c in list_categories(conn):
        writer.writerow([c.code, c.name_zh, c.name_en, codes.get(c.department_id, ""), c.ack_minutes, c.resolve_hours])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def seed_datasets(conn: Connection, now: datetime) -> int:
    document = packaged_demo_datasets()
    known = set(conn.execute(sa.select(departments.c.code)).scalars())
    for d in document.get("departments", []):
        if d["code"] not in known:
            add_department(conn, code=d["code"], name_zh=d["name_zh"], name_en=d["name_en"])
    count = publish_all(conn, document, now=now)
    standards = queries.dataset(conn, "service-standards")
    uploads.replace_rows(conn, standards, uploads.parse_rows(standards, uploads.read_table(
        _standards_csv(conn), "service-standards.csv"), zone=city_timezone(conn)), now=now)
    return count
