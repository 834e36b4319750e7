"""The read model of enterprise services: what the API and the pages show of policies, enterprises and
take-up. One place, so that the enterprise's page and its API answer say the same."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.enterprise import appeals, catalogue
from wecity.enterprise.codes import SIZE_LABELS
from wecity.enterprise.models import enterprises, policy_matches
from wecity.enterprise.policies import (
    ELIGIBLE,
    IN_FORCE,
    INELIGIBLE,
    UNKNOWN,
    Policy,
    evaluate,
    evaluate_all,
    money,
)
from wecity.enterprise.register import (
    columns_of,
    enterprise_of_applicant,
    known_variables,
    register_rows,
    variables_of,
)
from wecity.govservice.models import applications
from wecity.govservice.steps import STATUS_LABELS

_SHOWN = ("code", "name_zh", "name_en", "department", "matter", "automatic", "valid_from", "valid_until", "basis")


def policy_summary(row: dict[str, Any], today: date) -> dict[str, Any]:
    doc = row["document"]
    in_force = row["valid_from"] <= today and (row["valid_until"] is None or today <= row["valid_until"])
    return {**{k: doc.get(k) for k in _SHOWN}, "version": row["version"], "in_force": in_force,
            "benefit": doc["benefit"], "conditions": [{k: c[k] for k in ("id", "clause", "text_zh", "text_en")}
                                                      for c in doc["conditions"]]}


def policy_view(conn: Connection, code: str, today: date) -> dict[str, Any]:
    policy = catalogue.load(conn, code, today)
    row = next(r for r in catalogue.policy_rows(conn, active_only=False) if r["code"] == code)
    return {**policy_summary(row, today), "document": policy.document, "parameters": policy.parameters,
            "versions": [{**v, "imported_at": v["imported_at"].isoformat()} for v in catalogue.versions(conn, code)]}


def variable_labels(conn: Connection) -> dict[str, dict[str, str]]:
    return {name: {"zh": v.label_zh, "en": v.label_en, "unit": v.unit} for name, v in known_variables(conn).items()}


def enterprise_home(conn: Connection, applicant_id: int, today: date, *, for_staff: bool = False) -> dict[str, Any]:
    """An enterprise's record and what every active policy says of it, with the trace; its benefits and
    applications. (The enterprise's own page, and the policy officer's view of one enterprise: `for_staff`,
    in which its 诉求 carry no tracking code, as no staff view of a report does.)"""
    found = enterprise_of_applicant(conn, applicant_id)
    apps = [dict(r._mapping) for r in conn.execute(
        sa.select(applications.c.id, applications.c.number, applications.c.matter_code, applications.c.status,
                  applications.c.created_at, applications.c.finished_at)
        .where(applications.c.applicant_id == applicant_id).order_by(applications.c.id.desc()).limit(100))]
    for a in apps:
        a["status_zh"], a["status_en"] = STATUS_LABELS.get(a["status"], (a["status"], a["status"]))
        a["created_at"] = a["created_at"].isoformat()
        a["finished_at"] = a["finished_at"].isoformat() if a["finished_at"] else None
    if found is None:
        return {"enterprise": None, "policies": [], "applications": apps}
    env = variables_of(found, today)
    held = {r.policy_code: r for r in conn.execute(
        sa.select(policy_matches, applications.c.status.label("application_status"))
        .select_from(policy_matches.outerjoin(applications, applications.c.id == policy_matches.c.application_id))
        .where(policy_matches.c.enterprise_id == found["id"]))}
    results = []
    for policy in catalogue.load_all(conn, today):
        result = evaluate(policy, env, on=today)
        match = held.get(policy.code)
        results.append({
            "code": policy.code, "name_zh": policy.name_zh, "name_en": policy.name_en, "version": policy.version,
            "automatic": policy.automatic, "in_force": policy.in_force(today), **result.as_dict(),
            "failed_text": _condition_text(policy, result.failed),
            "granted_at": match.granted_at.isoformat() if match is not None and match.granted_at else None,
            "application_id": match.application_id if match is not None else None,
            # The application that followed, where it stands: an open one means no grant will follow.
            "application_status": match.application_status if match is not None else None,
            "application_label": STATUS_LABELS.get(match.application_status, ("", ""))
            if match is not None and match.application_status else None,
        })
    order = {ELIGIBLE: 0, UNKNOWN: 1, INELIGIBLE: 2}
    results.sort(key=lambda r: (order[r["outcome"]], not r["in_force"], r["code"]))
    record = {k: v for k, v in found.items() if k not in ("data_version", "matched_version")}
    record["registered_on"] = found["registered_on"].isoformat() if found["registered_on"] else None
    record["created_at"] = found["created_at"].isoformat()
    record["updated_at"] = found["updated_at"].isoformat()
    record["size_class_derived"] = env["size_class"]
    record["size_label"] = SIZE_LABELS.get(env["size_class"] or "", ("未知", "Unknown"))
    return {"enterprise": record, "policies": results, "applications": apps, "variables": variable_labels(conn),
            "requests": appeals.requests_of(conn, found["credit_code"], with_token=not for_staff),
            "request_categories": appeals.business_categories(conn)}


def _condition_text(policy: Policy, failed: str | None) -> dict[str, str] | None:
    if failed is None:
        return None
    if failed == IN_FORCE:
        return {"zh": "政策不在有效期内", "en": "The policy is not in force"}
    c = next(c for c in policy.conditions if c.id == failed)
    return {"zh": c.text_zh, "en": c.text_en, "clause": c.clause}


def search_enterprises(conn: Connection, *, q: str | None, district: str | None, size_class: str | None,
                       limit: int, offset: int) -> dict[str, Any]:
    conditions = []
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(sa.or_(enterprises.c.name.like(pattern, escape="\\"),
                                 enterprises.c.credit_code.like(pattern, escape="\\")))
    if district:
        conditions.append(enterprises.c.district == district)
    if size_class:
        conditions.append(enterprises.c.size_class == size_class)
    total = conn.execute(sa.select(sa.func.count()).select_from(enterprises).where(*conditions)).scalar_one()
    rows = conn.execute(sa.select(enterprises.c.id, enterprises.c.applicant_id, enterprises.c.credit_code,
                                  enterprises.c.name, enterprises.c.industry_code, enterprises.c.district,
                                  enterprises.c.size_class, enterprises.c.employees, enterprises.c.revenue)
                        .where(*conditions).order_by(enterprises.c.id).limit(limit).offset(offset))
    return {"total": total, "items": [dict(r._mapping) for r in rows]}


def dry_run(conn: Connection, policy: Policy, day: date) -> dict[str, Any]:
    """A policy over the whole register, written nowhere: counts by outcome, the total amount, which
    conditions fail most, which data are most often missing."""
    rows = register_rows(conn)
    ids, columns = columns_of(rows, known_variables(conn), day, set(policy.names))
    outcomes = evaluate_all(policy, columns, len(ids), on=day)
    counts = np.bincount(outcomes.codes, minlength=3)
    eligible = outcomes.codes == 1
    total = sum(money(a) for a in outcomes.amounts[eligible].tolist()) if policy.amount is not None else None
    failing = Counter(outcomes.failed[outcomes.codes == 0].tolist())
    names = [c.id for c in policy.conditions]
    lacking: Counter[str] = Counter()
    for i in np.flatnonzero(outcomes.codes == 2).tolist():
        lacking.update(outcomes.missing(i))
    return {"policy": policy.code, "version": policy.version, "on": day.isoformat(), "enterprises": len(ids),
            "outcomes": {ELIGIBLE: int(counts[1]), INELIGIBLE: int(counts[0]), UNKNOWN: int(counts[2])},
            "amount_total": round(total, 2) if total is not None else None,
            "failed_by": {(names[i] if i >= 0 else IN_FORCE): n for i, n in failing.most_common()},
            "missing": dict(lacking.most_common())}


def take_up(conn: Connection, code: str) -> dict[str, Any]:
    """Of the enterprises a policy finds eligible: granted without applying, applied (submitted, and how it
    went), and not taking it up (eligible, no application submitted: none, or a draft not sent)."""
    rows = conn.execute(sa.select(policy_matches.c.outcome, policy_matches.c.granted_at, applications.c.status)
                        .select_from(policy_matches.outerjoin(applications, applications.c.id == policy_matches.c.application_id))
                        .where(policy_matches.c.policy_code == code)).all()
    eligible = [r for r in rows if r.outcome == ELIGIBLE]
    granted = sum(1 for r in eligible if r.granted_at is not None)
    applied = [r for r in rows if r.granted_at is None and r.status not in (None, "draft")]
    return {"policy": code, "eligible": len(eligible), "unknown": sum(1 for r in rows if r.outcome == UNKNOWN),
            "granted_without_application": granted,
            "applied": len(applied), "applications": dict(Counter(r.status for r in applied)),
            "not_taken_up": sum(1 for r in eligible if r.granted_at is None and r.status in (None, "draft"))}


def register_records(conn: Connection, on: date) -> list[dict[str, Any]]:
    """The register as the data platform serves it (dataset source "enterprises"): each enterprise's
    record with its derived industry section and size class; `_record` names it in the audit log."""
    out = []
    for r in register_rows(conn):
        env = variables_of(r, on)
        out.append({"credit_code": r["credit_code"], "name": r["name"], "legal_form": r["legal_form"],
                    "industry_code": r["industry_code"], "industry_section": env["industry_section"],
                    "district": r["district"], "registered_on": r["registered_on"],
                    "registered_capital": r["registered_capital"], "employees": r["employees"],
                    "revenue": r["revenue"], "total_assets": r["total_assets"], "size_class": env["size_class"],
                    "tax_credit_grade": r["tax_credit_grade"], "certificates": ";".join(r["certificates"] or []),
                    "_record": f"enterprise:{r['credit_code']}"})
    return out
