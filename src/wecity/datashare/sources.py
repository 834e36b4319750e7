"""Where a dataset's rows come from: each source kind reads the read model of the domain that holds the
data, and answers rows keyed by the dataset's field names.

Served so far: `certificates` (the valid certificates of the type `source_ref` names: their number, dates
and fields) and `table` with `source_ref` "areas" (the city's districts and their boundaries). The other
kinds (cases, NGSI-LD entity types, applications) are listed in the catalogue but not served yet: asking
for them is answered as such, not with an empty table.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.core.errors import NotFound
from wecity.geo.service import list_areas
from wecity.govservice.queries import certificates_of_type

# (conn, dataset, now) -> every row of the dataset (the data API filters, selects and pages them).
Reader = Callable[[Connection, dict[str, Any], datetime], list[dict[str, Any]]]
MAX_ROWS_READ = 100_000


def _certificates(conn: Connection, d: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    _, rows = certificates_of_type(conn, d["source_ref"], now=now, limit=MAX_ROWS_READ, offset=0)
    return rows


def _areas(conn: Connection, d: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    return list_areas(conn, with_geometry=True)


def reader(d: dict[str, Any]) -> Reader:
    if d["source"] == "certificates":
        return _certificates
    if d["source"] == "table" and d["source_ref"] == "areas":
        return _areas
    raise NotFound(f"dataset {d['name']}: its data ({d['source']}) is catalogued but not served through the "
                   "data API yet", message_zh=f"数据集 {d['name']} 已编目，但其数据（{d['source']}）尚未通过数据接口提供",
                   code="datashare.not_served")


def cell(value: Any, kind: str) -> Any:
    """A value as the dataset's field type says: dates as YYYY-MM-DD, times as ISO 8601."""
    if isinstance(value, datetime):
        return value.date().isoformat() if kind == "date" else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return value
