"""Receiving a policy's benefit: granted without applying (免申即享), or applied for in one click (快申快享).

Both go through the digital-government domain, so that a benefit sits in the same records as any other
decision: a 免申即享 grant is an application decided at once under the policy's matter, with its
certificate (the decision document) in the enterprise's wallet; a 快申快享 application is a draft of that
matter pre-filled from the register, which asks only for what the register does not hold.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import Conflict
from wecity.enterprise import catalogue
from wecity.enterprise.models import policy_matches
from wecity.enterprise.policies import ELIGIBLE, INELIGIBLE, UNKNOWN, Evaluation, Policy, evaluate
from wecity.enterprise.register import enterprise_of_applicant, get_enterprise, variables_of
from wecity.geo.service import city_today
from wecity.govservice.applications import matter_definition, record_granted, start_application
from wecity.govservice.forms import Found, Source, draft_errors
from wecity.govservice.models import applications
from wecity.identity.applicants import Applicant, acting_as, legal_representative

VIA = "enterprise_register"


def _value(enterprise: dict[str, Any], env: dict[str, Any], name: str) -> Any:
    if name in ("credit_code", "name"):
        return enterprise[name]
    value = env.get(name)
    if isinstance(value, frozenset):
        return sorted(value)
    return value


def register_source(enterprise: dict[str, Any], env: dict[str, Any]) -> Source:
    """The register as a once-only source of the service forms: `{"source": "enterprise", "field": name}`."""
    def read(spec: Any) -> Found | None:
        value = _value(enterprise, env, str(spec.get("field", "")))
        return None if value is None else Found(value, via=VIA)
    return read


def _form_from_register(definition: dict[str, Any], enterprise: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, prop in definition["form"].get("properties", {}).items():
        spec = prop.get("x-prefill") if isinstance(prop, dict) else None
        if isinstance(spec, dict) and spec.get("source") == "enterprise":
            value = _value(enterprise, env, str(spec.get("field", "")))
            if value is not None:
                out[name] = value
    return out


def basis_text(policy: Policy, amount: float | None) -> str:
    basis = policy.document["basis"]
    clause = policy.document["benefit"]["clause"]
    money = f"，金额 {amount:,.2f} 元 (CNY {amount:,.2f})" if amount is not None else ""
    return (f"依据《{basis['title_zh']}》{basis.get('number', '')}{clause}，经数据比对符合全部条件，免申即享{money}。"
            f" Granted without application under {policy.name_en}: the city's data meet every condition.")


def _no_longer_due(conn: Connection, enterprise_id: int, policy_code: str, result: Evaluation, *,
                   now: datetime) -> None:
    """The match said eligible, the register or the policy now say otherwise: the match row follows (as
    the matching would write it), so that it is no longer due and is not tried again on every run."""
    row = ((policy_matches.c.enterprise_id == enterprise_id) & (policy_matches.c.policy_code == policy_code)
           & policy_matches.c.granted_at.is_(None) & policy_matches.c.application_id.is_(None))
    if result.outcome == INELIGIBLE:
        conn.execute(policy_matches.delete().where(row))
    elif result.outcome == UNKNOWN:
        conn.execute(policy_matches.update().where(row).values(outcome=UNKNOWN, amount=None,
                                                               missing=list(result.missing), matched_at=now))


def grant(conn: Connection, enterprise_id: int, policy_code: str, *, now: datetime, key_dir: Path | None) -> int | None:
    """Grant a 免申即享 benefit: the policy is evaluated again on the register as it is now (it may have
    changed since the match), and only an eligible outcome is granted. The application's id, or None."""
    enterprise = get_enterprise(conn, enterprise_id)
    day = city_today(conn, now)
    policy = catalogue.load(conn, policy_code, day)
    env = variables_of(enterprise, day)
    result = evaluate(policy, env)
    if result.outcome != ELIGIBLE or not policy.automatic:
        _no_longer_due(conn, enterprise_id, policy_code, result, now=now)
        return None
    definition = matter_definition(conn, policy.document["matter"])
    form = {**_form_from_register(definition, enterprise, env), "policy": policy.code,
            "policy_version": policy.version, "benefit_amount": result.amount}
    teller = legal_representative(conn, enterprise["applicant_id"]) or enterprise["applicant_id"]
    app_id = record_granted(conn, applicant_id=enterprise["applicant_id"], filed_by=teller,
                            matter_code=policy.document["matter"], form_data=form,
                            basis=basis_text(policy, result.amount), now=now, key_dir=key_dir,
                            actor=f"policy:{policy.code}@{policy.version}")
    conn.execute(policy_matches.update().where(
        policy_matches.c.enterprise_id == enterprise_id, policy_matches.c.policy_code == policy_code).values(
        granted_at=now, application_id=app_id, amount=result.amount, policy_version=policy.version))
    return app_id


def quick_apply(conn: Connection, *, citizen: Applicant, enterprise_applicant_id: int, policy_code: str,
                now: datetime) -> dict[str, Any]:
    """快申快享: a draft of the policy's matter for the enterprise, pre-filled from the register; returns
    the application's id and the fields still to fill in. Asking again returns the same draft."""
    applicant = acting_as(conn, citizen, enterprise_applicant_id)
    enterprise = enterprise_of_applicant(conn, applicant.id)
    if enterprise is None:
        raise Conflict("this enterprise is not in the register", message_zh="企业档案中没有该企业",
                       code="enterprise.not_registered")
    day = city_today(conn, now)
    policy = catalogue.load(conn, policy_code, day)
    held = conn.execute(sa.select(policy_matches.c.application_id).where(
        policy_matches.c.enterprise_id == enterprise["id"], policy_matches.c.policy_code == policy_code)).scalar()
    if held is not None:
        status = conn.execute(sa.select(applications.c.status).where(applications.c.id == held)).scalar()
        if status is not None and status not in ("withdrawn", "refused", "not_accepted"):
            return _draft_view(conn, held)
    env = variables_of(enterprise, day)
    app_id = start_application(conn, citizen=citizen, matter_code=policy.document["matter"], now=now,
                               acting_for=applicant.id, sources={"enterprise": register_source(enterprise, env)},
                               idempotency_key=f"policy:{policy_code}:{now:%Y%m%d%H%M%S%f}")
    found = conn.execute(sa.select(policy_matches.c.enterprise_id).where(
        policy_matches.c.enterprise_id == enterprise["id"], policy_matches.c.policy_code == policy_code)).first()
    if found is not None:
        conn.execute(policy_matches.update().where(
            policy_matches.c.enterprise_id == enterprise["id"], policy_matches.c.policy_code == policy_code)
            .values(application_id=app_id))
    return _draft_view(conn, app_id)


def _draft_view(conn: Connection, app_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(applications).where(applications.c.id == app_id)).one()
    definition = matter_definition(conn, row.matter_code, row.matter_version)
    missing = [e.as_dict() for e in draft_errors(definition["form"], row.form_data)] if row.status == "draft" else []
    required = definition["form"].get("required", [])
    to_fill = [name for name in definition["form"].get("properties", {}) if name not in row.form_data]
    return {"application_id": app_id, "number": row.number, "status": row.status, "form_data": row.form_data,
            "prefill": row.prefill, "to_fill": to_fill, "required_to_fill": [n for n in required if n in to_fill],
            "errors": missing, "link": f"/services/applications/{app_id}"}
