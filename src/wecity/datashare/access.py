"""Who may read a dataset through the data API, and within what scope; the masking of personal fields;
and the record of every reading.

- Open data: anyone, every field (open data holds no personal field: `catalogue.py` sees to that).
- The publishing department's own staff: every field, unmasked (its own data, for its own duties).
- Another department: only under a grant of its own that is neither expired nor revoked. Fields outside
  the grant are not returned; its personal fields come masked unless the grant names them in clear;
  rows are those the grant's row filter lets through.
- Anyone else: 403, and the refusal is logged.

Every reading of data that is not open is one entry in the hash-chained audit log (who, which grant,
the purpose, which records, when), and each record in it that is about a person is indexed under that
person (`data_disclosures`, by wecity.datashare.disclosures), so that they can see who read it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import inserted_id
from wecity.core.errors import PermissionDenied
from wecity.datashare.catalogue import PERSONAL
from wecity.datashare.models import data_accesses, data_grants
from wecity.datashare.requests import department_of
from wecity.datashare.sources import Page
from wecity.identity.audit import record_audit
from wecity.identity.service import StaffUser, mask_phone

OPEN, PUBLISHER, GRANT = "open", "publisher", "grant"


@dataclass(frozen=True)
class Access:
    """How one caller reads one dataset: `kind` (open, publisher, grant), the department reading, the
    grant, and the scope: fields it may have, those masked, and the allowed values per field."""

    kind: str
    department: str | None
    purpose: str
    fields: list[str]
    masked: frozenset[str] = frozenset()
    row_filter: dict[str, list[str]] = field(default_factory=dict)
    grant_id: int | None = None
    rate_limit: str | None = None


@dataclass(frozen=True)
class Refusal:
    reason: str  # no_grant | expired | revoked | anonymous | outside_grant | masked_filter
    grant_id: int | None = None


def resolve(conn: Connection, d: dict[str, Any], user: StaffUser | None, *, now: datetime,
            grant_id: int | None = None) -> Access | Refusal:
    every = [f["name"] for f in d["fields"]]
    if d["open_data"]:
        return Access(OPEN, None, "", every)
    if user is None:
        return Refusal("anonymous")
    own = department_of(conn, user)
    if own is not None and own == d["publisher"] and grant_id is None:
        return Access(PUBLISHER, own, "own", every)
    query = sa.select(data_grants).where(data_grants.c.dataset_id == d["id"], data_grants.c.grantee == own)
    if grant_id is not None:
        query = query.where(data_grants.c.id == grant_id)
    grants = conn.execute(query.order_by(data_grants.c.id.desc())).all() if own is not None else []
    live = [g for g in grants if g.revoked_at is None and g.expires_at > now]
    if not live:
        if not grants:
            return Refusal("no_grant", grant_id)
        newest = grants[0]
        return Refusal("revoked" if newest.revoked_at is not None else "expired", newest.id)
    g = live[0]
    personal = {f["name"] for f in d["fields"] if f["sensitivity"] in PERSONAL}
    return Access(GRANT, own, g.purpose, list(g.fields), frozenset(set(g.fields) & personal - set(g.clear_fields)),
                  dict(g.row_filter or {}), g.id, g.rate_limit)


REFUSALS = {
    "anonymous": ("dataset {name} is not open data: it is read under a sharing grant, signed in",
                  "数据集 {name} 不是开放数据，须登录并凭共享授权获取"),
    "no_grant": ("your department holds no grant for dataset {name}: request one from its catalogue page",
                 "本部门没有数据集 {name} 的共享授权，请在目录页面提出申请"),
    "expired": ("the grant for dataset {name} has expired: request it again", "数据集 {name} 的共享授权已到期，请重新申请"),
    "revoked": ("the grant for dataset {name} was revoked", "数据集 {name} 的共享授权已被撤销"),
}


def refusal_error(d: dict[str, Any], refusal: Refusal) -> PermissionDenied:
    en, zh = REFUSALS[refusal.reason]
    return PermissionDenied(en.format(name=d["name"]), message_zh=zh.format(name=d["name"]),
                            code="datashare.grant_required",
                            details={"reason": refusal.reason, "grant": refusal.grant_id})


def combined_filter(requested: dict[str, str], row_filter: dict[str, list[str]]) -> dict[str, list[str]]:
    """The caller's filters (one value a field) within the grant's (allowed values a field)."""
    where = {k: list(v) for k, v in row_filter.items()}
    for name, value in requested.items():
        where[name] = [value] if name not in where or value in where[name] else []
    return where


# Resident ID numbers (18 characters, or the old 15 digits) and unified social credit codes: their first
# four (the region) and last four (with the check character) are the usual hint.
_ID_SHAPE = re.compile(r"\d{17}[\dXx]|\d{15}|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}")


def mask(value: Any, name: str) -> Any:
    """A personal value made unrecognisable but for a hint: 138****5678, 张*, 4301**********1234; other text
    its first two characters only (an address, an e-mail address: its tail would say too much), the
    length not shown. Numbers and other values cannot be hinted at and are withheld (null)."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 11 and value.isdigit():  # a mobile number as usually written: the hot path
        return f"{value[:3]}****{value[-4:]}"
    if "phone" in name.lower():
        return mask_phone(normal_phone(value))
    if _ID_SHAPE.fullmatch(value):
        return value[:4] + "*" * (len(value) - 8) + value[-4:]
    if len(value) <= 3:  # a Chinese name: the family name
        return value[0] + "*" * (len(value) - 1)
    return value[:2] + "****"


def normal_phone(raw: str | None) -> str | None:
    """A phone number as people sign in with it: digits, without China's 86."""
    if raw is not None and len(raw) == 11 and raw.isdigit():
        return raw  # the usual spelling, on the hot path of every page read
    digits = _NOT_DIGITS.sub("", raw or "")
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    elif len(digits) == 15 and digits.startswith("0086"):
        digits = digits[4:]
    return digits or None


_NOT_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=4)
def _subject_key_bytes(secret_key: str) -> bytes:
    return hashlib.sha256(b"wecity data-subject:" + secret_key.encode()).digest()


def subject_key(secret_key: str, phone: str) -> str:
    """Whom a record is about, as kept in the disclosure index: a keyed hash of the number (BLAKE2b keyed
    with a key derived from the city's secret key, a MAC in one call: a page may hold a thousand), never
    the number itself."""
    return hashlib.blake2b(phone.encode(), key=_subject_key_bytes(secret_key), digest_size=32).hexdigest()


def _access_row(conn: Connection, d: dict[str, Any], *, audit_id: int, at: datetime, grant_id: int | None,
                reader: str | None, actor: str, kind: str, purpose: str, rows: int, outcome: str,
                fields: list[str] | None = None, visible_from: datetime | None = None, indexed: bool = True) -> int:
    return inserted_id(conn.execute(data_accesses.insert().values(
        at=at, dataset_id=d["id"], grant_id=grant_id, reader=reader, actor=actor, access=kind, purpose=purpose,
        rows=rows, fields=fields or [], outcome=outcome, audit_id=audit_id, visible_from=visible_from or at,
        indexed_at=at if indexed else None)))


def record_reading(conn: Connection, d: dict[str, Any], access: Access, page: Page, *, actor: str,
                   source_address: str | None, now: datetime, detail: dict[str, Any]) -> None:
    """The reading, durable before the answer leaves: one audit entry naming every record returned, and one
    access row. The people the records are about are found from that list moments later, off the
    request's path (wecity.datashare.disclosures)."""
    if access.kind == OPEN:
        return
    records = list(dict.fromkeys(r for r in page.records if r))  # once each: a history's rows share their entity
    audit_id = record_audit(conn, at=now, actor=actor, action="data.read", target=f"dataset:{d['name']}",
                            source_address=source_address, detail={
                                **detail, "access": access.kind, "grant": access.grant_id,
                                "department": access.department, "purpose": access.purpose, "records": records})
    visible_from = now
    if access.grant_id is not None:
        delayed = conn.execute(sa.select(data_grants.c.disclose_from).where(data_grants.c.id == access.grant_id)).scalar()
        if delayed is not None and delayed > now:
            visible_from = delayed
    _access_row(conn, d, audit_id=audit_id, at=now, grant_id=access.grant_id, reader=access.department,
                actor=actor, kind=access.kind, purpose=access.purpose, rows=len(page.rows), outcome="ok",
                fields=list(detail.get("fields") or access.fields), visible_from=visible_from,
                indexed=not records)


def record_refusal(conn: Connection, d: dict[str, Any], refusal: Refusal, user: StaffUser | None, *, actor: str,
                   source_address: str | None, now: datetime) -> None:
    audit_id = record_audit(conn, at=now, actor=actor, action="data.read", target=f"dataset:{d['name']}",
                            outcome="denied", source_address=source_address,
                            detail={"reason": refusal.reason, "grant": refusal.grant_id})
    _access_row(conn, d, audit_id=audit_id, at=now, grant_id=refusal.grant_id,
                reader=department_of(conn, user) if user else None, actor=actor, kind="refused", purpose="",
                rows=0, outcome=refusal.reason)
