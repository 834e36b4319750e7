"""Service categories: what the city handles, who is responsible, and how fast (SLA targets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.models import categories, category_area_departments
from wecity.core import cache
from wecity.core.errors import AlreadyExists, NotFound, ValidationFailed
from wecity.identity.service import department_id_by_code

CALENDARS = ("24x7", "working")


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    group_zh: str
    group_en: str
    description_zh: str
    description_en: str
    keywords: str
    department_id: int
    ack_minutes: int
    resolve_hours: int
    calendar: str
    sort_order: int
    active: bool
    attributes: list[dict[str, Any]] | None = None
    channels: list[str] | None = None  # the intake channels that take it; None: every channel
    description_required: bool = False  # a citizen must say in words what is wrong

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


def add_category(conn: Connection, *, code: str, name_zh: str, name_en: str, group_zh: str, group_en: str,
                 department_code: str, ack_minutes: int, resolve_hours: int, calendar: str = "24x7",
                 keywords: str = "", description_zh: str = "", description_en: str = "",
                 sort_order: int = 0, attributes: list[dict[str, Any]] | None = None,
                 channels: list[str] | None = None, description_required: bool = False) -> None:
    if calendar not in CALENDARS:
        raise ValidationFailed(f"calendar must be one of {CALENDARS}", message_zh="日历必须是 24x7 或 working")
    if ack_minutes <= 0 or resolve_hours <= 0:
        raise ValidationFailed("SLA targets must be positive", message_zh="时限必须为正数")
    if conn.execute(sa.select(categories.c.code).where(categories.c.code == code)).first():
        raise AlreadyExists(f"category {code!r} exists", message_zh=f"类别 {code} 已存在")
    conn.execute(categories.insert().values(
        code=code, name_zh=name_zh, name_en=name_en, group_zh=group_zh, group_en=group_en,
        description_zh=description_zh, description_en=description_en, keywords=keywords,
        department_id=department_id_by_code(conn, department_code), ack_minutes=ack_minutes,
        resolve_hours=resolve_hours, calendar=calendar, sort_order=sort_order, active=True,
        attributes=attributes, channels=channels, description_required=description_required))
    cache.invalidate(conn, "category")


def set_area_department(conn: Connection, *, category_code: str, area_id: int, department_code: str) -> None:
    get_category(conn, category_code)
    department_id = department_id_by_code(conn, department_code)
    conn.execute(category_area_departments.delete().where(
        category_area_departments.c.category_code == category_code,
        category_area_departments.c.area_id == area_id))
    conn.execute(category_area_departments.insert().values(
        category_code=category_code, area_id=area_id, department_id=department_id))
    cache.invalidate(conn, "category")


def list_categories(conn: Connection, *, active_only: bool = True, channel: str | None = None) -> list[Category]:
    """The categories (active ones by default); with `channel`, only those that channel takes."""
    query = sa.select(categories).order_by(categories.c.sort_order, categories.c.code)
    if active_only:
        query = query.where(categories.c.active.is_(True))
    found = [Category(**r._mapping) for r in conn.execute(query)]
    return found if channel is None else [c for c in found if offered(c, channel)]


def offered(category: Category, channel: str) -> bool:
    return category.channels is None or str(channel) in category.channels


def get_category(conn: Connection, code: str) -> Category:
    row = cache.cached(conn, ("category", code),
                       lambda: conn.execute(sa.select(categories).where(categories.c.code == code)).first())
    if row is None:
        raise NotFound(f"no service with code {code!r}", message_zh=f"没有代码为 {code} 的服务类别",
                       code="category.not_found")
    return Category(**row._mapping)


def responsible_department(conn: Connection, category: Category, area_id: int | None) -> int:
    """The department for category x area: the area's override if any, else the category's own."""
    if area_id is not None:
        overrides = cache.cached(conn, ("category", "area overrides"), lambda: {
            (r.category_code, r.area_id): r.department_id
            for r in conn.execute(sa.select(category_area_departments))})
        found = overrides.get((category.code, area_id))
        if found is not None:
            return int(found)
    return category.department_id


def category_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(categories).order_by(categories.c.sort_order))]
