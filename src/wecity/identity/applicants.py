"""Applicants for public services: citizens, who sign in by proving a phone number, and enterprises,
for which the citizens listed as their legal representative or agents act.

A citizen's sign-in is a signed token (`sign_citizen`): the portal keeps it in a cookie, an app sends it
as a bearer token. It names the phone number and when it expires, and is checked with the city's secret
key alone, so that reading it costs no database query.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.db import insert_unless_there, inserted_id
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed
from wecity.identity.models import applicant_agents, applicants, citizen_sign_outs

CITIZEN, ENTERPRISE = "citizen", "enterprise"


def keyed_hash(secret_key: str, kind: str, value: str) -> str:
    return hmac.new(secret_key.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def sign_citizen(secret_key: str, phone: str, expires: int) -> str:
    return f"{phone}.{expires}.{keyed_hash(secret_key, 'citizen', f'{phone}.{expires}')}"


def citizen_phone(secret_key: str, token: str | None, now_ts: int) -> str | None:
    """The phone number a valid citizen token was signed for, or None."""
    try:
        phone, expires, mac = (token or "").split(".")
        if int(expires) < now_ts:
            return None
    except ValueError:
        return None
    good = hmac.compare_digest(mac, keyed_hash(secret_key, "citizen", f"{phone}.{expires}"))
    return phone if good else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_out_citizen(conn: Connection, secret_key: str, token: str | None, now: datetime) -> None:
    """End a citizen's sign-in on this device now, not when its token expires (and forget sign-outs whose
    tokens have expired anyway)."""
    if citizen_phone(secret_key, token, int(now.timestamp())) is None or token is None:
        return
    conn.execute(citizen_sign_outs.delete().where(citizen_sign_outs.c.expires_at < now))
    expires = datetime.fromtimestamp(int(token.split(".")[1]), UTC)
    insert_unless_there(conn, citizen_sign_outs, {"token_hash": _token_hash(token), "expires_at": expires},
                        unique=["token_hash"])


def citizen_signed_out(conn: Connection, token: str) -> bool:
    return conn.execute(sa.select(citizen_sign_outs.c.token_hash).where(
        citizen_sign_outs.c.token_hash == _token_hash(token))).first() is not None


@dataclass(frozen=True)
class Applicant:
    id: int
    kind: str
    display_name: str
    phone: str | None
    credit_code: str | None
    profile: dict[str, Any]


def _applicant(row: Any) -> Applicant:
    return Applicant(id=row.id, kind=row.kind, display_name=row.display_name, phone=row.phone,
                     credit_code=row.credit_code, profile=dict(row.profile or {}))


def get_applicant(conn: Connection, applicant_id: int) -> Applicant:
    row = conn.execute(sa.select(applicants).where(applicants.c.id == applicant_id)).first()
    if row is None:
        raise NotFound(f"no applicant {applicant_id}", message_zh=f"申请人 {applicant_id} 不存在")
    return _applicant(row)


def find_citizen(conn: Connection, phone: str) -> Applicant | None:
    row = conn.execute(sa.select(applicants).where(applicants.c.phone == phone)).first()
    return None if row is None else _applicant(row)


def citizen_for_phone(conn: Connection, phone: str, *, now: datetime) -> Applicant:
    """The citizen who signed in with `phone`, made on first use (with an empty profile: the base
    registers have not said who they are)."""
    found = find_citizen(conn, phone)
    if found is not None:
        return found
    masked = phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
    new_id = insert_unless_there(conn, applicants, dict(kind=CITIZEN, phone=phone, display_name=masked, profile={},
                                                        created_at=now), unique=["phone"])
    if new_id is None:  # a first request of the same citizen at the same moment made them
        made = find_citizen(conn, phone)
        assert made is not None
        return made
    return get_applicant(conn, int(new_id))


def create_applicant(conn: Connection, *, kind: str, display_name: str, now: datetime, phone: str | None = None,
                     credit_code: str | None = None, profile: dict[str, Any] | None = None) -> Applicant:
    """A citizen or enterprise as the base registers know them (the demo city, an import)."""
    if kind not in (CITIZEN, ENTERPRISE):
        raise ValidationFailed(f"applicant kind {kind!r}: use citizen or enterprise",
                               message_zh=f"申请人类型 {kind!r} 无效，应为 citizen 或 enterprise", code="identity.applicant_kind")
    if (kind == CITIZEN) != (phone is not None) or (kind == ENTERPRISE) != (credit_code is not None):
        raise ValidationFailed("a citizen has a phone number, an enterprise a credit code",
                               message_zh="公民须有手机号码，企业须有统一社会信用代码", code="identity.applicant_kind")
    new_id = inserted_id(conn.execute(applicants.insert().values(
        kind=kind, display_name=display_name, phone=phone, credit_code=credit_code, profile=profile or {},
        created_at=now)))
    return get_applicant(conn, int(new_id))


def add_agent(conn: Connection, *, enterprise_id: int, agent_id: int, role: str = "agent") -> None:
    if get_applicant(conn, enterprise_id).kind != ENTERPRISE or get_applicant(conn, agent_id).kind != CITIZEN:
        raise ValidationFailed("a citizen acts for an enterprise", message_zh="须由公民代理企业",
                               code="identity.applicant_kind")
    conn.execute(applicant_agents.insert().values(enterprise_id=enterprise_id, agent_id=agent_id, role=role))


def enterprises_of(conn: Connection, citizen_id: int) -> list[Applicant]:
    """The enterprises this citizen may act for."""
    rows = conn.execute(sa.select(applicants).join(applicant_agents, applicant_agents.c.enterprise_id == applicants.c.id)
                        .where(applicant_agents.c.agent_id == citizen_id).order_by(applicants.c.display_name))
    return [_applicant(r) for r in rows]


def acting_as(conn: Connection, citizen: Applicant, applicant_id: int | None) -> Applicant:
    """Whom a signed-in citizen acts for: themselves, or an enterprise they are listed for."""
    if applicant_id is None or applicant_id == citizen.id:
        return citizen
    if not conn.execute(sa.select(applicant_agents.c.role).where(
            applicant_agents.c.enterprise_id == applicant_id, applicant_agents.c.agent_id == citizen.id)).first():
        raise PermissionDenied("you may not act for this applicant", message_zh="您无权代理该申请人",
                               code="identity.not_an_agent")
    return get_applicant(conn, applicant_id)


def legal_representative(conn: Connection, enterprise_id: int) -> int | None:
    """The citizen the register names the enterprise's legal representative, if any."""
    return conn.execute(sa.select(applicant_agents.c.agent_id).where(
        applicant_agents.c.enterprise_id == enterprise_id,
        applicant_agents.c.role == "legal_representative")).scalar()


def may_act_for(conn: Connection, citizen_id: int, applicant_id: int) -> bool:
    return citizen_id == applicant_id or conn.execute(sa.select(applicant_agents.c.role).where(
        applicant_agents.c.enterprise_id == applicant_id, applicant_agents.c.agent_id == citizen_id)).first() is not None
