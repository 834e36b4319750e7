"""The city's policies as code: imported as `wecity-policies/1` documents, every version kept, and the
compiled policies in force on a day.

An import is checked whole before anything is written (each policy compiled, its department known, its
matter in the service catalogue); a policy whose document changed gets a new version, which marks it for
a match over the whole register (wecity.enterprise.matching).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.errors import NotFound, ValidationFailed
from wecity.enterprise.models import policies, policy_variables, policy_versions
from wecity.enterprise.policies import FORMAT, Policy, check_document, compile_policy
from wecity.enterprise.register import known_variables
from wecity.enterprise.variables import PACKAGED, Variable
from wecity.govservice.models import matters
from wecity.identity.models import departments


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def check_import(conn: Connection, document: Any) -> tuple[dict[str, Variable], list[dict[str, Any]]]:
    """A policy document checked whole against what is stored (its variables, departments and matters), as
    `import_policies` checks it, writing nothing: (the variables, with those declared before, by name; the
    policies)."""
    extra = [dict(r._mapping) for r in conn.execute(sa.select(policy_variables))]
    known_extra = {v["name"]: v for v in extra}
    if isinstance(document, dict) and isinstance(document.get("variables"), list):
        # A variable keeps its type: the stored policies (and the register's facts) read it as declared.
        for v in document["variables"]:
            held = known_extra.get(v.get("name")) if isinstance(v, dict) else None
            if held is not None and v.get("type") != held["type"]:
                raise ValidationFailed(
                    f"variables: {held['name']} is a {held['type']}, not a {v.get('type')}",
                    message_zh=f"variables：变量 {held['name']} 的类型是 {held['type']}，不能改为 {v.get('type')}",
                    code="enterprise.bad_policy")
        # Variables declared before stay declared: a document need not repeat them.
        merged = {**known_extra, **{v.get("name"): v for v in document["variables"] if isinstance(v, dict)}}
        document = {**document, "variables": list(merged.values())}
    elif isinstance(document, dict):
        document = {**document, "variables": extra}
    variables, found = check_document(document)
    known_departments = set(conn.execute(sa.select(departments.c.code)).scalars())
    matter_departments = {r.code: r.department_code
                          for r in conn.execute(sa.select(matters.c.code, matters.c.department_code))}
    for p in found:
        if p["department"] not in known_departments:
            raise ValidationFailed(f"policy {p['code']}: no department {p['department']}",
                                   message_zh=f"政策 {p['code']}：部门 {p['department']} 不存在", code="enterprise.bad_policy")
        if p["matter"] not in matter_departments:
            raise ValidationFailed(f"policy {p['code']}: no matter {p['matter']} in the service catalogue",
                                   message_zh=f"政策 {p['code']}：事项目录中没有事项 {p['matter']}",
                                   code="enterprise.bad_policy")
        # A 免申即享 grant is a decision recorded under the matter, in the matter's department: a policy
        # grants only under a matter of its own department (else importing a policy would let one
        # department's supervisor decide in another's name).
        if matter_departments[p["matter"]] != p["department"]:
            raise ValidationFailed(
                f"policy {p['code']}: the matter {p['matter']} is department {matter_departments[p['matter']]}'s, "
                f"not the policy's ({p['department']})",
                message_zh=f"政策 {p['code']}：事项 {p['matter']} 属于部门 {matter_departments[p['matter']]}，"
                           f"不属于本政策的部门 {p['department']}",
                code="enterprise.bad_policy")
    return variables, found


def import_policies(conn: Connection, document: Any, *, now: datetime, actor: str) -> dict[str, int]:
    """Load a policy document: all or nothing. Returns how many policies were added, changed, unchanged."""
    variables, found = check_import(conn, document)
    known_extra = {r.name for r in conn.execute(sa.select(policy_variables.c.name))}
    for v in variables.values():
        if v.name in PACKAGED:
            continue
        values = {"type": v.type, "label_zh": v.label_zh, "label_en": v.label_en, "unit": v.unit}
        if v.name in known_extra:
            conn.execute(policy_variables.update().where(policy_variables.c.name == v.name).values(**values))
        else:
            conn.execute(policy_variables.insert().values(name=v.name, **values))
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    for p in found:
        row = conn.execute(sa.select(policies.c.version, policies.c.document).where(policies.c.code == p["code"])).first()
        columns = {"department_code": p["department"], "matter_code": p["matter"], "automatic": bool(p.get("automatic")),
                   "active": True, "valid_from": date.fromisoformat(p["valid_from"]),
                   "valid_until": date.fromisoformat(p["valid_until"]) if p.get("valid_until") else None,
                   "document": p, "updated_at": now}
        if row is None:
            conn.execute(policies.insert().values(code=p["code"], version=1, matched_version=0, **columns))
            version = 1
            counts["added"] += 1
        elif _canonical(row.document) != _canonical(p):
            version = row.version + 1
            conn.execute(policies.update().where(policies.c.code == p["code"]).values(version=version, match_cursor=None,
                                                                                      **columns))
            counts["changed"] += 1
        else:
            counts["unchanged"] += 1
            continue
        conn.execute(policy_versions.insert().values(code=p["code"], version=version, document=p, imported_at=now,
                                                     imported_by=actor))
    return counts


def export_policies(conn: Connection) -> dict[str, Any]:
    variables = [dict(r._mapping) for r in conn.execute(sa.select(policy_variables).order_by(policy_variables.c.name))]
    docs = [r.document for r in conn.execute(sa.select(policies.c.document).where(policies.c.active)
                                             .order_by(policies.c.code))]
    return {"format": FORMAT, "variables": variables, "policies": docs}


def packaged_demo_policies() -> dict[str, Any]:
    text = resources.files("wecity.enterprise").joinpath("data/demo-policies.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def packaged_policy_matters() -> dict[str, Any]:
    text = resources.files("wecity.enterprise").joinpath("data/policy-matters.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def policy_rows(conn: Connection, *, active_only: bool = True) -> list[dict[str, Any]]:
    query = sa.select(policies).order_by(policies.c.code)
    if active_only:
        query = query.where(policies.c.active)
    return [dict(r._mapping) for r in conn.execute(query)]


def load(conn: Connection, code: str, on: date, *, version: int | None = None) -> Policy:
    """One policy compiled for day `on`: its current version, or the one named."""
    if version is None:
        row = conn.execute(sa.select(policies.c.document, policies.c.version).where(policies.c.code == code)).first()
    else:
        row = conn.execute(sa.select(policy_versions.c.document, policy_versions.c.version).where(
            policy_versions.c.code == code, policy_versions.c.version == version)).first()
    if row is None:
        raise NotFound(f"no policy {code}" + (f" version {version}" if version else ""),
                       message_zh=f"政策 {code} 不存在" + (f"（版本 {version}）" if version else ""), code="enterprise.no_policy")
    return compile_policy(row.document, version=row.version, on=on, variables=known_variables(conn))


def load_all(conn: Connection, on: date) -> list[Policy]:
    """Every active policy, compiled for day `on` (those not in force that day included: they say so)."""
    variables = known_variables(conn)
    return [compile_policy(r["document"], version=r["version"], on=on, variables=variables)
            for r in policy_rows(conn)]


def versions(conn: Connection, code: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(policy_versions.c.version, policy_versions.c.imported_at,
                                  policy_versions.c.imported_by).where(policy_versions.c.code == code)
                        .order_by(policy_versions.c.version.desc()))
    return [dict(r._mapping) for r in rows]
