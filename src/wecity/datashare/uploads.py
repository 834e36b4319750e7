"""Tables a department uploads (CSV or XLSX) as the rows of one of its datasets (source "table",
source_ref "upload").

The first row names the columns: each a field of the dataset, by its name or its Chinese or English
title. Every value is converted to its field's type (integer, number, yes/no, date, date and time, text,
GeoJSON geometry); an empty cell is null. A date and time without an offset is the city's local time,
kept as ISO 8601 in UTC, as the data API serves every instant. The whole file is checked before anything is written, and the
errors are reported together with their row and column (the first 20): an upload replaces the dataset's
rows entirely, or changes nothing.

CSV is read as UTF-8 (with or without a byte-order mark), else as GB18030, which is how spreadsheet
programs set to Chinese save it. XLSX: the first sheet (openpyxl, read-only, values not formulas).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import cache, tables
from wecity.core.errors import ValidationFailed
from wecity.datashare.catalogue import CATALOGUE_CACHE
from wecity.datashare.models import dataset_rows, datasets
from wecity.datashare.sources import cell

MAX_ROWS = 100_000
MAX_ERRORS = 20
_TRUE, _FALSE = {"true", "yes", "1", "是", "y"}, {"false", "no", "0", "否", "n"}


# A field type as the row errors name it: English (with its article), Chinese.
TYPE_NAMES = {"integer": ("an integer", "整数"), "number": ("a number", "数字"), "boolean": ("yes or no", "是或否"),
              "date": ("a date", "日期"), "datetime": ("a date and time", "日期时间"),
              "geometry": ("a GeoJSON geometry", "GeoJSON 几何"), "string": ("text", "文本")}


def _invalid(name: str, message: str, message_zh: str, errors: list[str] | None = None,
             errors_zh: list[str] | None = None) -> ValidationFailed:
    return ValidationFailed(f"table for {name}: {message}", message_zh=f"数据集 {name} 的表格：{message_zh}",
                            code="datashare.upload_invalid",
                            details={"errors": errors or [], "errors_zh": errors_zh or errors or []})


def read_table(content: bytes, filename: str) -> list[list[Any]]:
    """The cells of a CSV or XLSX file, header row first."""
    return tables.read_table(content, filename, max_rows=MAX_ROWS, code="datashare.upload_invalid")


def _convert(value: Any, kind: str, zone: ZoneInfo) -> Any:
    """A cell as its field's type; ValueError when it is not one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = value.strip() if isinstance(value, str) else value
    if kind == "integer":
        if isinstance(text, float) and text.is_integer():
            return int(text)
        return int(str(text).replace(",", ""))
    if kind == "number":
        return float(str(text).replace(",", ""))
    if kind == "boolean":
        if isinstance(text, bool):
            return text
        lowered = str(text).lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError(text)
    if kind == "date":
        if isinstance(text, datetime):
            return text.date().isoformat()
        if isinstance(text, date):
            return text.isoformat()
        return date.fromisoformat(str(text).replace("/", "-")).isoformat()
    if kind == "datetime":
        moment = text if isinstance(text, datetime) else datetime.fromisoformat(str(text))
        return cell(moment if moment.tzinfo else moment.replace(tzinfo=zone), "datetime")
    if kind == "geometry":
        geometry = json.loads(text) if isinstance(text, str) else text
        if not isinstance(geometry, dict) or "type" not in geometry:
            raise ValueError(text)
        return geometry
    return str(text)


def parse_rows(d: dict[str, Any], cells: list[list[Any]], *, zone: ZoneInfo) -> list[dict[str, Any]]:
    """The file's rows keyed by field name and typed (a date and time without offset in the city's `zone`);
    ValidationFailed listing what is wrong."""
    name = d["name"]
    if not cells:
        raise _invalid(name, "the file is empty", "文件为空")
    if len(cells) > MAX_ROWS + 1:
        raise _invalid(name, f"more than {MAX_ROWS:,} rows", f"超过 {MAX_ROWS:,} 行")
    by_label: dict[str, dict[str, Any]] = {}
    for f in d["fields"]:
        for label in (f["name"], f["title_zh"], f["title_en"]):
            by_label.setdefault(str(label).strip().casefold(), f)
    header = [str(h or "").strip() for h in cells[0]]
    columns = [by_label.get(h.casefold()) for h in header]
    unknown = [h for h, f in zip(header, columns, strict=True) if f is None and h]
    if unknown:
        raise _invalid(name, f"columns {', '.join(unknown)} are not fields of the dataset "
                       f"({', '.join(f['name'] for f in d['fields'])})",
                       f"列 {'、'.join(unknown)} 不是该数据集的字段（{'、'.join(f['title_zh'] for f in d['fields'])}）")
    named = [f["name"] for f in columns if f is not None]
    twice = sorted({n for n in named if named.count(n) > 1})
    if twice:
        raise _invalid(name, f"columns name {', '.join(twice)} more than once", f"字段 {'、'.join(twice)} 重复出现")
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    errors_zh: list[str] = []
    for number, cells_of_row in enumerate(cells[1:], start=2):
        if not any(c not in (None, "") for c in cells_of_row):
            continue  # blank lines, as spreadsheets leave at the end
        row: dict[str, Any] = {f["name"]: None for f in d["fields"]}
        for position, f in enumerate(columns):
            if f is None:
                continue
            value = cells_of_row[position] if position < len(cells_of_row) else None
            try:
                row[f["name"]] = _convert(value, f["type"], zone)
            except (ValueError, TypeError):
                if len(errors) < MAX_ERRORS:
                    en, zh = TYPE_NAMES.get(f["type"], (f["type"], f["type"]))
                    errors.append(f"row {number}, {f['name']}: {str(value)[:50]!r} is not {en}")
                    errors_zh.append(f"第 {number} 行，{f['title_zh']}：{str(value)[:50]!r} 不是{zh}")
        rows.append(row)
    if errors:
        raise _invalid(name, f"{len(errors)} values do not fit their fields: " + "; ".join(errors[:3]),
                       f"{len(errors)} 个值与字段类型不符：" + "；".join(errors_zh[:3]), errors, errors_zh)
    return rows


def replace_rows(conn: Connection, d: dict[str, Any], rows: list[dict[str, Any]], *, now: datetime) -> int:
    """The dataset's rows become `rows`, in one transaction; how many. The dataset's row is locked first
    (FOR UPDATE; SQLite has one writer anyway): two uploads at once replace the rows one after the other,
    where both deleting and then inserting the same positions was a primary-key violation."""
    conn.execute(sa.select(datasets.c.id).where(datasets.c.id == d["id"]).with_for_update())
    conn.execute(dataset_rows.delete().where(dataset_rows.c.dataset_id == d["id"]))
    if rows:
        conn.execute(dataset_rows.insert(), [{"dataset_id": d["id"], "position": i, "row": r}
                                             for i, r in enumerate(rows)])
    conn.execute(datasets.update().where(datasets.c.id == d["id"]).values(modified_at=now))
    cache.invalidate(conn, CATALOGUE_CACHE)
    return len(rows)


def uploaded_rows(conn: Connection, dataset_id: int, name: str = "") -> list[dict[str, Any]]:
    """The rows of a dataset's uploaded table, in the file's order; each names itself for the audit log as
    `_record` "table:<dataset>:<position>" (position 0 the first row under the header)."""
    return [{**r.row, "_record": f"table:{name}:{r.position}"} for r in conn.execute(
        sa.select(dataset_rows.c.position, dataset_rows.c.row).where(dataset_rows.c.dataset_id == dataset_id)
        .order_by(dataset_rows.c.position))]
