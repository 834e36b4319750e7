"""Tables people upload: the cells of a CSV or XLSX file.

CSV is read as UTF-8 (with or without a byte-order mark), else as GB18030, which is how spreadsheet
programs set to Chinese save it. XLSX: the first sheet (openpyxl, read-only, values not formulas).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from wecity.core.errors import ValidationFailed


def read_table(content: bytes, filename: str, *, max_rows: int, code: str) -> list[list[Any]]:
    """The cells of a CSV or XLSX file, header row first: at most `max_rows` + 2 rows are read (the header,
    and one row more than allowed, so that the caller can tell the file is too long). `code` is the
    error code of the caller's domain."""
    if filename.lower().endswith(".xlsx") or content[:2] == b"PK":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception:  # openpyxl raises many kinds for a damaged file
            raise ValidationFailed("the file is not a readable XLSX workbook", message_zh="文件不是可读取的 XLSX 工作簿",
                                   code=code) from None
        try:
            sheet = book.worksheets[0]
            return [list(row) for _, row in zip(range(max_rows + 2), sheet.iter_rows(values_only=True), strict=False)]
        finally:
            book.close()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValidationFailed("the CSV file is neither UTF-8 nor GB18030 text", message_zh="CSV 文件编码无法识别（应为 UTF-8 或 GB18030）",
                               code=code)
    return [row for _, row in zip(range(max_rows + 2), csv.reader(io.StringIO(text)), strict=False)]
