"""The intake verb every channel calls: a report with its photos, once, however often it is sent.

    receipt = await receive_report(ctx, report, photos=raw_files, idempotency=key, authorize=check_key)

In order: the caller's credentials (before any photo is decoded), the photos (checked and stored off the
event loop), then one transaction that replays an earlier result for the same idempotency key or records
the photos and runs `intake.submit_report` (validation, area, department, merge or a new case, SLA
clocks, notifications). A concurrent request with the same key that commits first makes this one's
insert of the key fail; it then answers with that request's result. Photos of a request that failed or
was a replay are removed.

Open311, the portal and the channels to come call this; sensor rules call `submit_report` directly,
because they run inside the context broker's own transaction and bring neither photos nor keys.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.intake import MergePolicy, NewReport, submit_report
from wecity.cases.models import cases, idempotency_keys, reports
from wecity.core.context import AppContext
from wecity.core.errors import ValidationFailed
from wecity.geo.service import current_area_index
from wecity.media import uploads

MAX_KEY_LENGTH = 200
# How a stored result is marked as a receipt of this module (rather than an older channel's response).
RECEIPT_TYPE = "application/vnd.wecity.intake-receipt+json"
# How long a repeat with the same Idempotency-Key gets the first answer: at least this long, until the
# runner's purge (cases.idempotency_purge) removes the key. A day covers a client's retries after an outage.
IDEMPOTENCY_KEEP = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A client's key for one submission, within a scope (a channel and client), and what was sent."""

    scope: str
    key: str
    fingerprint: str


def idempotency(scope: str, key: str | None, fields: Iterable[tuple[str, str]],
                photos: Iterable[bytes]) -> Idempotency | None:
    """The key as a client sent it, with a fingerprint of the fields and photos; None without a key."""
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise ValidationFailed(f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                               code="request.idempotency_key",
                               message_zh=f"Idempotency-Key 长度须为 1 到 {MAX_KEY_LENGTH}")
    digest = hashlib.sha256()
    for name, value in sorted(fields):
        digest.update(f"{name}={value}\n".encode())
    for data in photos:
        digest.update(hashlib.sha256(data).digest())
    return Idempotency(scope=scope, key=key, fingerprint=digest.hexdigest())


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the reporter is told: their report, its tracking code, the case it opened or joined."""

    report_id: int
    token: str
    case_id: int
    merged: bool
    expected_at: datetime | None
    replayed: bool = False


async def receive_report(ctx: AppContext, report: NewReport, *, photos: list[bytes] | None = None,
                         idempotency: Idempotency | None = None,
                         authorize: Callable[[Connection], object] | None = None) -> Receipt:
    """Take one report from any channel; see the module's docstring for the steps."""
    if authorize is not None:
        await ctx.db.read(authorize)
    settings = ctx.settings
    now = ctx.clock.now()
    policy = MergePolicy(radius_m=settings.merge_radius_m, window=timedelta(hours=settings.merge_window_hours))
    async with uploads.staged(photos or [], ctx, now=now) as staged:
        if report.photo_location is None and staged.location is not None:
            report = replace(report, photo_location=staged.location)

        def write(conn: Connection) -> Receipt:
            if idempotency is not None:
                prior = _replay(conn, idempotency)
                if prior is not None:
                    return prior
            result = submit_report(conn, replace(report, media_ids=staged.record(conn)),
                                   area_index=current_area_index(conn),
                                   now=now, policy=policy)
            receipt = Receipt(report_id=result.report_id, token=result.token, case_id=result.case_id,
                              merged=result.merged, expected_at=result.expected_at)
            if idempotency is not None:
                _remember(conn, idempotency, receipt, now)
            return receipt

        try:
            receipt = await ctx.db.write(write)
        except sa.exc.IntegrityError:
            if idempotency is None:
                raise
            # A concurrent request with the same key committed first (PostgreSQL): answer with its result.
            replayed = await ctx.db.read(lambda conn: _replay(conn, idempotency))
            if replayed is None:
                raise
            receipt = replayed
        if not receipt.replayed:
            staged.keep()
    return receipt


def _remember(conn: Connection, key: Idempotency, receipt: Receipt, now: datetime) -> None:
    body = {**asdict(receipt), "expected_at": receipt.expected_at.isoformat() if receipt.expected_at else None}
    del body["replayed"]
    conn.execute(idempotency_keys.insert().values(
        scope=key.scope, key=key.key, fingerprint=key.fingerprint, status_code=201,
        content_type=RECEIPT_TYPE, body=json.dumps(body), created_at=now))


def purge_idempotency_keys(conn: Connection, now: datetime) -> int:
    """Forget the keys older than IDEMPOTENCY_KEEP; returns how many."""
    return conn.execute(idempotency_keys.delete().where(
        idempotency_keys.c.created_at < now - IDEMPOTENCY_KEEP)).rowcount


def _replay(conn: Connection, key: Idempotency) -> Receipt | None:
    prior = conn.execute(sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.content_type,
                                   idempotency_keys.c.body).where(
        idempotency_keys.c.scope == key.scope, idempotency_keys.c.key == key.key)).first()
    if prior is None:
        return None
    if prior.fingerprint != key.fingerprint:
        raise ValidationFailed("this Idempotency-Key was already used for a different request",
                               code="request.idempotency_mismatch",
                               message_zh="该 Idempotency-Key 已用于另一个不同的请求")
    if prior.content_type == RECEIPT_TYPE:
        fields: dict[str, Any] = json.loads(prior.body)
        expected = fields.pop("expected_at")
        return Receipt(**fields, expected_at=datetime.fromisoformat(expected) if expected else None,
                       replayed=True)
    return _legacy_receipt(conn, prior.body)


# Keys stored before receipts were kept the channel's own response: Open311's JSON or XML, or the
# portal's "<token> merged|case". The tracking code in them finds the report.
_LEGACY_TOKEN = re.compile(r'"token":\s*"([\w-]+)"|<token>([\w-]+)</token>|^([\w-]+) (?:merged|case)$')


def _legacy_receipt(conn: Connection, body: str) -> Receipt:
    match = _LEGACY_TOKEN.search(body)
    token = next((group for group in match.groups() if group), "") if match else ""
    row = conn.execute(sa.select(reports.c.id, reports.c.case_id, cases.c.resolve_due_at).join(
        cases, cases.c.id == reports.c.case_id).where(reports.c.token == token)).one()
    first = conn.execute(sa.select(sa.func.min(reports.c.id)).where(reports.c.case_id == row.case_id)).scalar_one()
    return Receipt(report_id=row.id, token=token, case_id=row.case_id, merged=row.id != first,
                   expected_at=row.resolve_due_at, replayed=True)
