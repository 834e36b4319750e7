"""The case engine's public verbs (re-exported so other domains import one module)."""

from wecity.cases.categories import (
    Category,
    add_category,
    get_category,
    list_categories,
    responsible_department,
    set_area_department,
)

__all__ = ["Category", "add_category", "get_category", "list_categories", "responsible_department",
           "set_area_department"]
