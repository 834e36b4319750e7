"""Read-only look-ups the portal shows beside a staff user: their department's names."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.identity.models import departments


def department_names(conn: Connection, department_id: int | None) -> dict[str, str] | None:
    """{"zh_CN": ..., "en": ..., "code": ...} of a department, or None when the user has none."""
    # identity has no service verb for this yet; the query only reads identity's public columns.
    if department_id is None:
        return None
    row = conn.execute(sa.select(departments.c.code, departments.c.name_zh, departments.c.name_en,
                                 departments.c.is_dispatch_centre)
                       .where(departments.c.id == department_id)).first()
    if row is None:
        return None
    return {"code": row.code, "zh_CN": row.name_zh, "en": row.name_en,
            "dispatch_centre": "yes" if row.is_dispatch_centre else ""}
