"""Who sees an application's materials (scans of licences and identity cards), served at /media/{id}: the
applicant and the citizens acting for its enterprise (`own_application`), and staff who may see the
application (`approvals.may_see`). The media domain asks on each look (wecity.media.access); every look,
refused ones too, is on the audit log as a view of the application's personal data."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import NotFound
from wecity.govservice.applications import own_application
from wecity.govservice.approvals import may_see
from wecity.govservice.models import applications
from wecity.identity.applicants import find_citizen
from wecity.identity.audit import record_audit
from wecity.media.access import Viewing

KIND = "application"


def on_media_view(conn: Connection, *, viewing: Viewing) -> None:
    """The listener of wecity.media.access.VIEW_EVENT for media whose ref is "application:<id>"."""
    if viewing.kind != KIND or not viewing.owner_id.isdigit():
        return
    seen = next((app_id for app_id in _applications_of(conn, viewing) if _may_look(conn, viewing, app_id)), None)
    viewing.allowed = seen is not None
    if viewing.staff is not None:
        actor = f"user:{viewing.staff.username}"
    else:
        citizen = find_citizen(conn, viewing.citizen_phone or "")
        actor = f"applicant:{citizen.id}" if citizen else "citizen"
    record_audit(conn, at=viewing.now, actor=actor, action="personal_data.view",
                 target=f"{KIND}:{seen if seen is not None else viewing.owner_id}",
                 outcome="ok" if viewing.allowed else "denied", source_address=viewing.source_address,
                 detail={"media_id": viewing.media_id})


def _applications_of(conn: Connection, viewing: Viewing) -> Iterator[int]:
    """The application the medium was uploaded for, then any other that lists it among its materials (the
    same file may serve several: the demo city's do)."""
    first = int(viewing.owner_id)
    yield first
    listed = sa.cast(applications.c.materials, sa.Text).contains(f'"{viewing.media_id}"')
    yield from conn.execute(sa.select(applications.c.id).where(listed, applications.c.id != first)
                            .order_by(applications.c.id)).scalars()


def _may_look(conn: Connection, viewing: Viewing, app_id: int) -> bool:
    try:
        if viewing.staff is not None and may_see(conn, viewing.staff, app_id):
            return True
        if viewing.citizen_phone is not None:
            citizen = find_citizen(conn, viewing.citizen_phone)
            return citizen is not None and own_application(conn, app_id, citizen) is not None
    except NotFound:  # no such application (any more)
        return False
    return False
