"""Who acts for an enterprise: its legal representative (named by the register) and the agents
(授权经办人) the legal representative authorises and withdraws, each by their mobile number. Every change
is in the audit log; an agent may do everything on the enterprise's behalf but change who its agents are."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from wecity.identity.applicants import Applicant, citizen_for_phone
from wecity.identity.audit import record_audit
from wecity.identity.models import applicant_agents, applicants

LEGAL_REPRESENTATIVE, AGENT = "legal_representative", "agent"
MAX_AGENTS = 20


def _role(conn: Connection, enterprise_id: int, citizen_id: int) -> str | None:
    return conn.execute(sa.select(applicant_agents.c.role).where(
        applicant_agents.c.enterprise_id == enterprise_id, applicant_agents.c.agent_id == citizen_id)).scalar()


def _masked(phone: str | None) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 8 else "****"


def agents(conn: Connection, enterprise_id: int, *, by: Applicant) -> list[dict[str, Any]]:
    """The people who act for the enterprise (phones masked), for anyone listed among them."""
    if _role(conn, enterprise_id, by.id) is None:
        raise PermissionDenied("you may not act for this enterprise", message_zh="您无权代理该企业",
                               code="identity.not_an_agent")
    rows = conn.execute(sa.select(applicants.c.id, applicants.c.display_name, applicants.c.phone, applicant_agents.c.role)
                        .join(applicant_agents, applicant_agents.c.agent_id == applicants.c.id)
                        .where(applicant_agents.c.enterprise_id == enterprise_id)
                        .order_by(applicant_agents.c.role.desc(), applicants.c.id))
    return [{"citizen_id": r.id, "name": r.display_name, "phone": _masked(r.phone), "role": r.role,
             "me": r.id == by.id} for r in rows]


def _require_legal_representative(conn: Connection, enterprise_id: int, by: Applicant) -> None:
    role = _role(conn, enterprise_id, by.id)
    if role is None:
        raise PermissionDenied("you may not act for this enterprise", message_zh="您无权代理该企业",
                               code="identity.not_an_agent")
    if role != LEGAL_REPRESENTATIVE:
        raise PermissionDenied("only the legal representative authorises agents",
                               message_zh="仅法定代表人可以授权或取消经办人", code="enterprise.not_legal_representative")


def authorise(conn: Connection, enterprise_id: int, phone: str, *, by: Applicant, now: datetime) -> dict[str, Any]:
    """The legal representative authorises the holder of `phone` to act for the enterprise."""
    _require_legal_representative(conn, enterprise_id, by)
    if not (len(phone) == 11 and phone.isdigit() and phone[0] == "1"):
        raise ValidationFailed("an agent is named by an 11-digit mobile number", message_zh="经办人须以 11 位手机号码指定",
                               code="enterprise.bad_phone")
    count = conn.execute(sa.select(sa.func.count()).select_from(applicant_agents).where(
        applicant_agents.c.enterprise_id == enterprise_id)).scalar_one()
    if count >= MAX_AGENTS:
        raise Conflict(f"an enterprise has at most {MAX_AGENTS} agents", message_zh=f"每家企业最多 {MAX_AGENTS} 名经办人",
                       code="enterprise.too_many_agents")
    citizen = citizen_for_phone(conn, phone, now=now)
    if _role(conn, enterprise_id, citizen.id) is None:
        conn.execute(applicant_agents.insert().values(enterprise_id=enterprise_id, agent_id=citizen.id, role=AGENT))
        record_audit(conn, at=now, actor=f"applicant:{by.id}", action="enterprise.agent_authorised",
                     target=f"applicant:{enterprise_id}", detail={"agent": citizen.id})
    return {"citizen_id": citizen.id, "phone": _masked(phone), "role": _role(conn, enterprise_id, citizen.id)}


def withdraw(conn: Connection, enterprise_id: int, citizen_id: int, *, by: Applicant, now: datetime) -> None:
    """The legal representative withdraws an agent's authority (never their own)."""
    _require_legal_representative(conn, enterprise_id, by)
    role = _role(conn, enterprise_id, citizen_id)
    if role is None:
        raise NotFound("no such agent of this enterprise", message_zh="该企业没有这名经办人", code="enterprise.no_agent")
    if role == LEGAL_REPRESENTATIVE:
        raise Conflict("the legal representative is named by the register, not withdrawn here",
                       message_zh="法定代表人由企业登记信息确定，不能在此取消", code="enterprise.legal_representative")
    conn.execute(applicant_agents.delete().where(applicant_agents.c.enterprise_id == enterprise_id,
                                                 applicant_agents.c.agent_id == citizen_id))
    record_audit(conn, at=now, actor=f"applicant:{by.id}", action="enterprise.agent_withdrawn",
                 target=f"applicant:{enterprise_id}", detail={"agent": citizen_id})
