"""Devices in bulk: a vendor's CSV of device ids and the entities they feed, imported all or nothing.

Columns (a header row names them, in any order): `device_id`, `entity_id`, `entity_type`, and optionally
`tenant` and `attribute_map` (`payloadKey=attributeName` pairs separated by `;`, for firmware that names
its readings its own way). One bad line refuses the whole file, with every bad line named, so an import
never leaves half a batch of sensors provisioned.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from sqlalchemy.engine import Connection

from wecity.core.errors import ValidationFailed, WeCityError
from wecity.iot.service import Device, provision

REQUIRED = ("device_id", "entity_id", "entity_type")


def _attribute_map(text: str) -> dict[str, str] | None:
    pairs = [p.strip() for p in text.split(";") if p.strip()]
    if not pairs:
        return None
    mapping = {}
    for pair in pairs:
        key, sep, name = pair.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise ValidationFailed(f"attribute_map entry {pair!r} is not key=attribute",
                                   message_zh=f"attribute_map 项 {pair!r} 应为 键=属性名")
        mapping[key.strip()] = name.strip()
    return mapping


def import_devices(conn: Connection, text: str, now: datetime) -> list[Device]:
    """Provision every device of the CSV `text` in the caller's transaction, or raise naming each bad line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # spreadsheets often save a BOM
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(f"the header row lacks {', '.join(missing)}",
                               message_zh=f"表头缺少 {'、'.join(missing)}", code="iot.import")
    done: list[Device] = []
    problems: list[tuple[int, str, str]] = []
    for line, row in enumerate(reader, start=2):
        try:
            done.append(provision(
                conn, tenant=(row.get("tenant") or "").strip(), device_id=(row["device_id"] or "").strip(),
                entity_id=(row["entity_id"] or "").strip(), entity_type=(row["entity_type"] or "").strip(),
                now=now, attribute_map=_attribute_map(row.get("attribute_map") or "")))
        except WeCityError as exc:
            problems.append((line, exc.message, exc.message_zh or exc.message))
    if problems:
        raise ValidationFailed(
            "; ".join(f"line {n}: {en}" for n, en, _ in problems),
            message_zh="；".join(f"第 {n} 行：{zh}" for n, _, zh in problems), code="iot.import")
    return done
