"""Every table of the operations centre as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read
the Chinese) or XLSX (openpyxl), in the reader's language."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from wecity.core.tables import spreadsheet_text

TABLES = ("kpis", "breakdown", "cases")

_HEADERS = {
    "kpis": [("code", "指标代码", "code"), ("name", "指标", "KPI"), ("value", "本期", "this period"),
             ("previous", "上期", "previous period"), ("change", "变化", "change"), ("unit", "单位", "unit"),
             ("definition", "口径", "definition")],
    "breakdown": [("code", "代码", "code"), ("name", "名称", "name"), ("received", "受理量", "received"),
                  ("resolved", "办结量", "resolved"), ("on_time_rate", "按期办结率 %", "resolved on time %"),
                  ("solved_rate", "解决率 %", "solved rate %"), ("returned", "退回", "returned"),
                  ("recategorised", "改类", "re-filed"), ("reopened", "重办", "reopened"),
                  ("urged", "市民催办", "urged"), ("open", "在办", "open"), ("overdue", "超期", "overdue")],
    "cases": [("id", "案件编号", "case"), ("status", "状态", "status"), ("category", "类别", "category"),
              ("area", "区域", "district"), ("department", "承办部门", "department"),
              ("created_at", "受理时间", "received at"), ("due_at", "时限", "due"), ("overdue", "超期", "overdue"),
              ("description", "描述", "description")],
}


def rows_of(table: str, data: list[dict[str, Any]], locale: str, zone: ZoneInfo) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of `table` in `locale` (zh_CN or en), times as the city's clocks (`zone`) read."""
    zh = locale == "zh_CN"
    columns = _HEADERS[table]
    header = [zh_name if zh else en_name for _, zh_name, en_name in columns]

    def value(item: dict[str, Any], key: str) -> Any:
        if key in ("name", "category", "area", "department", "definition"):
            base = {"category": "category", "area": "area", "department": "department"}.get(key, key)
            return item.get(f"{base}_zh" if zh else f"{base}_en")
        found = item.get(key)
        if isinstance(found, datetime):
            return found.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        if isinstance(found, bool):
            return ("是" if found else "否") if zh else ("yes" if found else "no")
        return found

    return header, [[value(item, key) for key, _, _ in columns] for item in data]


def to_csv(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else spreadsheet_text(v) for v in row] for row in rows)
    return out.getvalue().encode("utf-8")


def to_xlsx(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # a citizen's text, kept as text: openpyxl would write it as a formula
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
