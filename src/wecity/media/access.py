"""Who may see a stored medium: anyone, or only whom the domain it belongs to allows.

A photo sent with a report, or with a case's work, is public: its URL is on the case's public page and in
Open311, so it is served to anyone and cached for a year. A medium whose `ref` names anything else (an
application's material, "application:42": a scan of a licence or an identity card) is personal data: it
is served only to whom the owning domain allows, never cached, and every look is on the audit log.

The owning domains come after media (DOMAINS), so media asks them through the app's events: in the
transaction that records the look it emits VIEW_EVENT with a `Viewing`, and the listener for the ref's
kind sets `allowed` and writes the audit entry. A ref no domain answers for is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from wecity.core.registry import Events
from wecity.identity.service import StaffUser

VIEW_EVENT = "media.view"
# The kinds of ref whose media anyone may see (a medium with no ref yet was sent with a report or as a
# case's evidence): what the public case page and Open311 link to.
PUBLIC_KINDS = frozenset({"report", "case"})


def is_public(ref: str | None) -> bool:
    return ref is None or ref.partition(":")[0] in PUBLIC_KINDS


@dataclass(slots=True)
class Viewing:
    """Someone signed in asks for a medium that belongs to `ref`: a staff member, a citizen (by the phone
    number they proved), or both. The owner's listener sets `allowed`."""

    media_id: str
    ref: str
    staff: StaffUser | None
    citizen_phone: str | None
    source_address: str | None
    now: datetime
    allowed: bool | None = None  # None: no domain answered for the ref

    @property
    def kind(self) -> str:
        return self.ref.partition(":")[0]

    @property
    def owner_id(self) -> str:
        return self.ref.partition(":")[2]


def may_view(conn: Connection, events: Events, viewing: Viewing) -> bool:
    """Ask the owning domain, in the caller's (write) transaction, which records the look."""
    events.emit(VIEW_EVENT, conn, viewing=viewing)
    return viewing.allowed is True
