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

from wecity.core.db import insert_unless_there
from wecity.core.errors import Conflict
from wecity.enterprise import catalogue
from wecity.enterprise.models import policy_matches
from wecity.enterprise.policies import ELIGIBLE, INELIGIBLE, UNKNOWN, Evaluation, Policy, evaluate
from wecity.enterprise.register import enterprise_of_applicant, get_enterprise, variables_of
from wecity.geo.service import city_today
from wecity.govservice.applications import matter_definition, record_granted, start_application
from wecity.govservice.forms import Found, Source, draft_errors
from wecity.govservice.models import applications
from wecity.govservice.steps import log_event
from wecity.identity.applicants import Applicant, acting_as, legal_representative
from wecity.identity.audit import record_audit

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


# An application that does not stand in the way of a benefit: not filed (a draft, which a grant withdraws),
# or ended without it. Any other application of the policy's matter is the benefit applied for or had.
# Applications that do not stand in the way of a 免申即享 grant: a draft nobody sent, one withdrawn. One a
# reviewer refused (or did not accept) does: the platform does not overturn a person's decision on the same
# benefit; the enterprise may apply again.
PASSIVE = ("draft", "withdrawn")


def _no_longer_due(conn: Connection, enterprise_id: int, policy_code: str, result: Evaluation, *,
                   now: datetime, linked: int | None = None) -> None:
    """The match said eligible, the register or the policy now say otherwise: the match row follows (as
    the matching would write it), so that it is no longer due and is not tried again on every run. (A row
    that links a draft, or an application that ended without the benefit, goes too: it was due.)"""
    row = ((policy_matches.c.enterprise_id == enterprise_id) & (policy_matches.c.policy_code == policy_code)
           & policy_matches.c.granted_at.is_(None)
           & (policy_matches.c.application_id.is_(None) if linked is None else policy_matches.c.application_id == linked))
    if result.outcome == INELIGIBLE:
        conn.execute(policy_matches.delete().where(row))
    elif result.outcome == UNKNOWN:
        conn.execute(policy_matches.update().where(row).values(outcome=UNKNOWN, amount=None,
                                                               missing=list(result.missing), matched_at=now))
    else:  # eligible, but the policy is no longer 免申即享: applied for like any other
        conn.execute(policy_matches.update().where(row).values(matched_at=now))


def _of_policy(applicant_id: int, matter_code: str, policy_code: str) -> Any:
    """The enterprise's applications of the matter that may be this policy's: not those another policy's
    match links (where two policies share a matter, one's grant is not the other's benefit)."""
    others = sa.select(policy_matches.c.application_id).where(
        policy_matches.c.application_id == applications.c.id, policy_matches.c.policy_code != policy_code)
    return sa.and_(applications.c.applicant_id == applicant_id, applications.c.matter_code == matter_code,
                   ~others.exists())


def _application_held(conn: Connection, applicant_id: int, matter_code: str, policy_code: str) -> int | None:
    """The enterprise's application of the policy's matter that is open or approved (the benefit applied
    for, or had)."""
    return conn.execute(sa.select(applications.c.id).where(
        _of_policy(applicant_id, matter_code, policy_code), applications.c.status.not_in(PASSIVE))
        .order_by(applications.c.id.desc()).limit(1)).scalar()


def _withdraw_drafts(conn: Connection, applicant_id: int, matter_code: str, policy_code: str, *, actor: str,
                     now: datetime) -> None:
    """The enterprise's drafts of the matter, withdrawn by the grant that makes them needless."""
    drafts = list(conn.execute(sa.select(applications.c.id, applications.c.number).where(
        _of_policy(applicant_id, matter_code, policy_code), applications.c.status == "draft")))
    for d in drafts:
        conn.execute(applications.update().where(applications.c.id == d.id, applications.c.status == "draft").values(
            status="withdrawn", outcome="withdrawn", finished_at=now, updated_at=now))
        log_event(conn, d.id, "withdrawn", actor=actor, now=now,
                  note="已免申即享，无需再申请。 Granted without application: this draft is no longer needed.")
        record_audit(conn, at=now, actor=actor, action="application.withdraw", target=f"application:{d.number}",
                     detail={"reason": "granted_without_application"})


def grant(conn: Connection, enterprise_id: int, policy_code: str, *, now: datetime, key_dir: Path | None) -> int | None:
    """Grant a 免申即享 benefit: the policy is evaluated again on the register as it is now (it may have
    changed since the match), and only an eligible outcome is granted, once. The application's id, or None.

    The match row is claimed first (granted_at set where it is still unset and links what was read), so
    that two runners granting at once make one grant; an enterprise that applied for the benefit (an
    application of the policy's matter, open or approved) is not granted it again, and its drafts of the
    matter are withdrawn by the grant."""
    match_row = conn.execute(sa.select(policy_matches.c.application_id, policy_matches.c.granted_at).where(
        policy_matches.c.enterprise_id == enterprise_id, policy_matches.c.policy_code == policy_code)).first()
    if match_row is None or match_row.granted_at is not None:
        return None
    linked = match_row.application_id
    if linked is not None and conn.execute(sa.select(applications.c.status).where(
            applications.c.id == linked)).scalar() not in PASSIVE:
        return None
    this_row = ((policy_matches.c.enterprise_id == enterprise_id) & (policy_matches.c.policy_code == policy_code))
    claimed = conn.execute(policy_matches.update().where(
        this_row, policy_matches.c.granted_at.is_(None),
        policy_matches.c.application_id.is_(None) if linked is None else policy_matches.c.application_id == linked)
        .values(granted_at=now)).rowcount
    if claimed != 1:  # granted (or applied for) meanwhile
        return None

    def release(**values: Any) -> None:
        conn.execute(policy_matches.update().where(this_row).values(granted_at=None, **values))

    enterprise = get_enterprise(conn, enterprise_id)
    day = city_today(conn, now)
    policy = catalogue.load(conn, policy_code, day)
    env = variables_of(enterprise, day)
    result = evaluate(policy, env)
    if result.outcome != ELIGIBLE or not policy.automatic:
        release()
        _no_longer_due(conn, enterprise_id, policy_code, result, now=now, linked=linked)
        return None
    matter = policy.document["matter"]
    held = _application_held(conn, enterprise["applicant_id"], matter, policy.code)
    if held is not None:  # applied for (快申快享 or at the counter): that application is the benefit's
        release(application_id=held)
        return None
    actor = f"policy:{policy.code}@{policy.version}"
    _withdraw_drafts(conn, enterprise["applicant_id"], matter, policy.code, actor=actor, now=now)
    definition = matter_definition(conn, matter)
    form = {**_form_from_register(definition, enterprise, env), "policy": policy.code,
            "policy_version": policy.version, "benefit_amount": result.amount}
    teller = legal_representative(conn, enterprise["applicant_id"]) or enterprise["applicant_id"]
    app_id = record_granted(conn, applicant_id=enterprise["applicant_id"], filed_by=teller,
                            matter_code=matter, form_data=form,
                            basis=basis_text(policy, result.amount), now=now, key_dir=key_dir, actor=actor)
    conn.execute(policy_matches.update().where(this_row).values(
        granted_at=now, application_id=app_id, amount=result.amount, policy_version=policy.version))
    return app_id


def quick_apply(conn: Connection, *, citizen: Applicant, enterprise_applicant_id: int, policy_code: str,
                now: datetime) -> dict[str, Any]:
    """快申快享: a draft of the policy's matter for the enterprise, pre-filled from the register; returns
    the application's id and the fields still to fill in. Asking again returns the same draft, and an
    enterprise that already applied for the matter (or was granted the benefit) gets that application.
    The application is linked to the policy's match row (made if the match kept none), so that a
    免申即享 grant does not pay the same benefit again."""
    applicant = acting_as(conn, citizen, enterprise_applicant_id)
    enterprise = enterprise_of_applicant(conn, applicant.id)
    if enterprise is None:
        raise Conflict("this enterprise is not in the register", message_zh="企业档案中没有该企业",
                       code="enterprise.not_registered")
    day = city_today(conn, now)
    policy = catalogue.load(conn, policy_code, day)
    this_row = ((policy_matches.c.enterprise_id == enterprise["id"]) & (policy_matches.c.policy_code == policy_code))
    # Locked (PostgreSQL): a 免申即享 grant claims this row; one under way is waited for and then seen granted,
    # instead of a draft for the same benefit being made beside it.
    query = sa.select(policy_matches.c.application_id, policy_matches.c.granted_at).where(this_row)
    match_row = conn.execute(query.with_for_update() if conn.dialect.name == "postgresql" else query).first()
    held = match_row.application_id if match_row is not None else None
    if held is not None:
        status = conn.execute(sa.select(applications.c.status).where(applications.c.id == held)).scalar()
        if status is not None and status not in ("withdrawn", "refused", "not_accepted"):
            return _draft_view(conn, held)
    app_id = _application_held(conn, applicant.id, policy.document["matter"], policy_code)
    env = variables_of(enterprise, day)
    if app_id is None:
        app_id = start_application(conn, citizen=citizen, matter_code=policy.document["matter"], now=now,
                                   acting_for=applicant.id, sources={"enterprise": register_source(enterprise, env)},
                                   idempotency_key=f"policy:{policy_code}:{now:%Y%m%d%H%M%S%f}")
    if match_row is not None:
        conn.execute(policy_matches.update().where(this_row, policy_matches.c.granted_at.is_(None))
                     .values(application_id=app_id))
    else:
        result = evaluate(policy, env)
        # The outcome as the page works it out (an ineligible one too: the row is kept for its application).
        made = insert_unless_there(conn, policy_matches, dict(
            enterprise_id=enterprise["id"], policy_code=policy_code, policy_version=policy.version,
            outcome=result.outcome, amount=result.amount, missing=list(result.missing), matched_at=now,
            notified_at=now, application_id=app_id), unique=["enterprise_id", "policy_code"])
        if made is None:  # the matcher wrote the row meanwhile
            conn.execute(policy_matches.update().where(this_row, policy_matches.c.granted_at.is_(None))
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
