"""The enterprise register: profiles checked on the way in, kept beside each enterprise's identity as an
applicant, and the variables policies read from them.

A profile is checked whole before anything is written; so is an import (CSV or XLSX, the first 20 errors
with their row and column): every row is written, or none. A change that alters anything a policy could
read raises the enterprise's `data_version`, which the incremental match picks up (wecity.enterprise.matching).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core import tables
from wecity.core.db import inserted_id
from wecity.core.errors import NotFound, ValidationFailed
from wecity.enterprise import codes
from wecity.enterprise.models import enterprises, policy_variables
from wecity.enterprise.rules import BOOLEAN, LIST, NUMBER, Column
from wecity.enterprise.variables import FACT, Variable, age_years, declared
from wecity.geo.models import areas
from wecity.identity.applicants import ENTERPRISE, add_agent, citizen_for_phone, create_applicant
from wecity.identity.audit import record_audit
from wecity.identity.models import applicant_agents, applicants

MAX_IMPORT_ROWS = 200_000
MAX_ERRORS = 20
TAX_GRADES = ("A", "B", "M", "C", "D")
LEGAL_FORMS = ("有限责任公司", "股份有限公司", "个人独资企业", "合伙企业", "个体工商户", "农民专业合作社", "外商投资企业", "其他")
_TRUE, _FALSE = {"true", "yes", "1", "是", "y"}, {"false", "no", "0", "否", "n"}


@dataclass(frozen=True)
class Field:
    name: str
    label_zh: str
    label_en: str
    kind: str  # text | integer | number | date | list | phone


FIELDS: tuple[Field, ...] = (
    Field("credit_code", "统一社会信用代码", "Unified social credit code", "text"),
    Field("name", "企业名称", "Name", "text"),
    Field("legal_form", "组织形式", "Legal form", "text"),
    Field("industry_code", "行业代码", "Industry code", "text"),
    Field("district", "所在区县", "District", "text"),
    Field("registered_on", "成立日期", "Registered on", "date"),
    Field("registered_capital", "注册资本（万元）", "Registered capital (10k CNY)", "number"),
    Field("employees", "从业人员", "Employees", "integer"),
    Field("revenue", "营业收入（万元）", "Revenue (10k CNY)", "number"),
    Field("total_assets", "资产总额（万元）", "Total assets (10k CNY)", "number"),
    Field("tax_credit_grade", "纳税信用等级", "Tax credit grade", "text"),
    Field("size_class", "企业规模", "Size class", "text"),
    Field("certificates", "资质认定", "Certifications", "list"),
    Field("tags", "标签", "Tags", "list"),
    Field("legal_representative_phone", "法定代表人手机号", "Legal representative's phone", "phone"),
)
_BY_NAME = {f.name: f for f in FIELDS}
COLUMNS = [f.name for f in FIELDS if f.name != "legal_representative_phone"]


def known_variables(conn: Connection) -> dict[str, Variable]:
    """The packaged variables and those the city's policy documents declared."""
    extra = [dict(r._mapping) for r in conn.execute(sa.select(policy_variables))]
    return declared(extra)


class _Bad(ValueError):
    """Why a value is not of its field's type, in both languages."""

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)
        self.zh = zh


def _convert(value: Any, kind: str, *, signed: bool = False) -> Any:
    """A cell or JSON value as its field's type; _Bad with the reason otherwise. Empty is None.
    Numbers of the register's own fields are zero or more; facts (a growth rate) may be negative."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind == "list":
        items = value if isinstance(value, list) else str(value).replace("；", ";").replace("，", ";").replace(",", ";").split(";")
        return sorted({str(i).strip() for i in items if str(i).strip()})
    if kind in ("integer", "number"):
        if isinstance(value, bool):
            raise _Bad("not a number", "不是数字")
        try:
            number = float(str(value).replace(",", "").strip()) if not isinstance(value, int | float) else float(value)
        except (ValueError, OverflowError):
            raise _Bad("not a number", "不是数字") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise _Bad("not a finite number", "不是有限的数字")
        if number < 0 and not signed:
            raise _Bad("not a number of zero or more", "应为零或正数")
        if kind == "integer":
            if number != int(number):
                raise _Bad("not a whole number", "不是整数")
            return int(number)
        return number
    if kind == "boolean":
        text = str(value).strip().lower()
        if isinstance(value, bool):
            return value
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise _Bad("not yes or no", "应为是或否")
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise _Bad("not a date (YYYY-MM-DD)", "不是日期（YYYY-MM-DD）") from None
    return str(value).strip()


def check_profile(data: Mapping[str, Any], *, districts: set[str], variables: Mapping[str, Variable],
                  partial: bool = False) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str, str]]]:
    """(the register's columns, the facts, errors as (field, en, zh)) of one profile. `partial`: an update,
    in which fields not given are left as they are."""
    row: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    errors: list[tuple[str, str, str]] = []
    facts_given: Any = data.get("facts") or {}
    if not isinstance(facts_given, dict):
        errors.append(("facts", "an object of variable: value", "应为「变量：取值」对象"))
        facts_given = {}
    for name, value in [*data.items(), *facts_given.items()]:
        if name == "facts":
            continue
        field = _BY_NAME.get(name)
        variable = variables.get(name)
        if field is None and (variable is None or variable.kind != FACT):
            errors.append((name, f"no field {name!r} in the register", f"企业档案没有字段 {name!r}"))
            continue
        kind = field.kind if field else {NUMBER: "number", BOOLEAN: "boolean", LIST: "list"}.get(variable.type, "text")  # type: ignore[union-attr]
        try:
            converted = _convert(value, kind, signed=field is None)
        except _Bad as e:
            errors.append((name, f"{value!r}: {e}", f"{value!r} 无效：{e.zh}"))
            continue
        except (ValueError, TypeError) as e:
            errors.append((name, f"{value!r}: {e}", f"{value!r} 无效：类型不符"))
            continue
        if field is None:
            facts[name] = converted
        else:
            row[name] = converted
    for name in ("credit_code", "name") if not partial else ():
        if row.get(name) is None:
            errors.append((name, "required", "必填"))
    errors.extend(_check_values(row, districts))
    return row, facts, errors


def _check_values(row: dict[str, Any], districts: set[str]) -> list[tuple[str, str, str]]:
    errors: list[tuple[str, str, str]] = []
    if row.get("credit_code") is not None:
        row["credit_code"] = row["credit_code"].upper()
        problem = codes.uscc_problem(row["credit_code"])
        if problem:
            errors.append(("credit_code", *problem))
    if row.get("name") is not None and len(row["name"]) > 200:
        errors.append(("name", "longer than 200 characters", "超过 200 个字符"))
    if row.get("industry_code") is not None:
        row["industry_code"] = row["industry_code"].upper()
        problem = codes.industry_problem(row["industry_code"])
        if problem:
            errors.append(("industry_code", *problem))
    if row.get("district") is not None and row["district"] not in districts:
        errors.append(("district", f"{row['district']!r} is not a district of the city", f"{row['district']!r} 不是本市的区县代码"))
    if row.get("tax_credit_grade") is not None:
        row["tax_credit_grade"] = row["tax_credit_grade"].upper()
        if row["tax_credit_grade"] not in TAX_GRADES:
            errors.append(("tax_credit_grade", "one of A, B, M, C, D", "应为 A、B、M、C、D 之一"))
    if row.get("size_class") is not None and row["size_class"] not in codes.SIZE_CLASSES:
        errors.append(("size_class", "one of large, medium, small, micro", "应为 large、medium、small、micro 之一"))
    if row.get("legal_form") is not None and len(row["legal_form"]) > 40:
        errors.append(("legal_form", "longer than 40 characters", "超过 40 个字符"))
    phone = row.get("legal_representative_phone")
    if phone is not None and not (len(phone) == 11 and phone.isdigit() and phone[0] == "1"):
        errors.append(("legal_representative_phone", "an 11-digit mobile number", "应为 11 位手机号码"))
    return errors


def _raise(errors: Sequence[tuple[str, str, str]], rows: Sequence[int | None] = ()) -> None:
    """ValidationFailed listing the first errors, each with its field (and row of a file)."""
    if not errors:
        return
    shown = list(errors)[:MAX_ERRORS]
    at = list(rows)[:MAX_ERRORS] or [None] * len(shown)
    raise ValidationFailed(
        "; ".join((f"row {r}, " if r else "") + f"{f}: {en}" for (f, en, _), r in zip(shown, at, strict=True)),
        message_zh="；".join((f"第 {r} 行，" if r else "") + f"{f}：{zh}" for (f, _, zh), r in zip(shown, at, strict=True)),
        code="enterprise.invalid_profile",
        details={"errors": [{"row": r, "field": f, "message": en, "message_zh": zh}
                            for (f, en, zh), r in zip(shown, at, strict=True)]})


def districts(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(areas.c.code).where(areas.c.kind == "district")).scalars())


def save_enterprise(conn: Connection, data: Mapping[str, Any], *, now: datetime,
                    known: tuple[set[str], dict[str, Variable]] | None = None, actor: str = "system") -> tuple[int, bool]:
    """Add an enterprise to the register or update it (by credit code); returns (id, whether anything a
    policy reads changed). The identity applicant and the legal representative's account come with it;
    `actor` (who writes) is on the audit log of a change of legal representative."""
    district_codes, variables = known or (districts(conn), known_variables(conn))
    row, facts, errors = check_profile(data, districts=district_codes, variables=variables)
    _raise(errors)
    return _write(conn, row, facts, now=now, actor=actor)


def _write(conn: Connection, row: dict[str, Any], facts: dict[str, Any], *, now: datetime,
           actor: str) -> tuple[int, bool]:
    phone = row.pop("legal_representative_phone", None)
    found = conn.execute(sa.select(enterprises).where(enterprises.c.credit_code == row["credit_code"])).first()
    # A new enterprise has every column (None where not given); an update changes only the columns the
    # profile or the file carries, as `update_facts` does: a column it does not have is not wiped.
    values = {k: row.get(k) for k in COLUMNS if found is None or k in row}
    for k in ("certificates", "tags"):
        if k in values:
            values[k] = values[k] or []
    if found is None:
        applicant_id = conn.execute(sa.select(applicants.c.id).where(
            applicants.c.credit_code == row["credit_code"])).scalar()
        if applicant_id is None:
            applicant_id = create_applicant(conn, kind=ENTERPRISE, display_name=row["name"], now=now,
                                            credit_code=row["credit_code"],
                                            profile={"name": row["name"], "credit_code": row["credit_code"]}).id
        enterprise_id = inserted_id(conn.execute(enterprises.insert().values(
            **values, applicant_id=applicant_id, facts=facts, created_at=now, updated_at=now, data_version=1,
            matched_version=0)))
        changed = True
    else:
        enterprise_id, applicant_id = found.id, found.applicant_id
        merged_facts = {**found.facts, **facts}
        old = {k: getattr(found, k) for k in values}
        changed = old != values or merged_facts != found.facts
        if changed:
            conn.execute(enterprises.update().where(enterprises.c.id == found.id).values(
                **values, facts=merged_facts, updated_at=now, data_version=found.data_version + 1))
            conn.execute(applicants.update().where(applicants.c.id == applicant_id).values(display_name=row["name"]))
    if phone:
        _legal_representative(conn, applicant_id, row["credit_code"], phone, now=now, actor=actor)
    return int(enterprise_id), changed


def _legal_representative(conn: Connection, enterprise_applicant: int, credit_code: str, phone: str, *,
                          now: datetime, actor: str) -> None:
    """The register says who the legal representative is: that citizen holds the role (an agent until now is
    raised to it), and whoever held it before no longer acts for the enterprise at all (the new legal
    representative may authorise them again as an agent). A change is on the audit log, with the citizen
    ids of the former and the new one (`enterprise.legal_representative`)."""
    citizen = citizen_for_phone(conn, phone, now=now)
    mine = applicant_agents.c.enterprise_id == enterprise_applicant
    former = sorted(conn.execute(sa.select(applicant_agents.c.agent_id).where(
        mine, applicant_agents.c.role == "legal_representative")).scalars())
    if former != [citizen.id]:
        record_audit(conn, at=now, actor=actor, action="enterprise.legal_representative",
                     target=f"enterprise:{credit_code}", detail={"old": former, "new": citizen.id})
    conn.execute(applicant_agents.delete().where(mine, applicant_agents.c.role == "legal_representative",
                                                 applicant_agents.c.agent_id != citizen.id))
    held = conn.execute(sa.select(applicant_agents.c.role).where(mine, applicant_agents.c.agent_id == citizen.id)).scalar()
    if held is None:
        add_agent(conn, enterprise_id=enterprise_applicant, agent_id=citizen.id, role="legal_representative")
    elif held != "legal_representative":
        conn.execute(applicant_agents.update().where(mine, applicant_agents.c.agent_id == citizen.id)
                     .values(role="legal_representative"))


def update_facts(conn: Connection, enterprise_id: int, changes: Mapping[str, Any], *, now: datetime,
                 actor: str = "system") -> bool:
    """Change some of an enterprise's profile or facts (an update from a department's register); whether
    anything changed."""
    found = get_enterprise(conn, enterprise_id)
    row, facts, errors = check_profile(changes, districts=districts(conn), variables=known_variables(conn),
                                       partial=True)
    if "credit_code" in row and row["credit_code"] != found["credit_code"]:
        errors.append(("credit_code", "cannot be changed", "不可更改"))
    _raise(errors)
    current = {k: found[k] for k in COLUMNS}
    return _write(conn, {**current, **row}, facts, now=now, actor=actor)[1]


Checked = list[tuple[dict[str, Any], dict[str, Any]]]


def import_table(conn: Connection, content: bytes, filename: str, *, now: datetime,
                 actor: str = "system") -> dict[str, int]:
    """Enterprises from a CSV or XLSX file (header: field names, or their Chinese or English labels; facts
    by their variable names): all rows or none. Returns how many were added, changed and unchanged."""
    return write_checked(conn, check_table(conn, content, filename), now=now, actor=actor)


def check_table(conn: Connection, content: bytes, filename: str) -> Checked:
    """The rows of an enterprise file, read and checked (every error at once, as one ValidationFailed);
    nothing written. Apart from `write_checked` so that a service reads a large file in a read
    transaction, and holds the database's writer only to write."""
    cells = tables.read_table(content, filename, max_rows=MAX_IMPORT_ROWS, code="enterprise.invalid_profile")
    if not cells:
        raise ValidationFailed("the file is empty", message_zh="文件为空", code="enterprise.invalid_profile")
    if len(cells) > MAX_IMPORT_ROWS + 1:
        raise ValidationFailed(f"more than {MAX_IMPORT_ROWS:,} rows", message_zh=f"超过 {MAX_IMPORT_ROWS:,} 行",
                               code="enterprise.invalid_profile")
    variables = known_variables(conn)
    aliases = {key.strip().lower(): f.name for f in FIELDS for key in (f.name, f.label_zh, f.label_en)}
    aliases.update({name.lower(): name for name, v in variables.items() if v.kind == FACT})
    aliases.update({v.label_zh.lower(): name for name, v in variables.items() if v.kind == FACT})
    header = [aliases.get(str(h or "").strip().lower()) for h in cells[0]]
    unknown = [str(h) for h, name in zip(cells[0], header, strict=True) if name is None and str(h or "").strip()]
    if unknown:
        raise ValidationFailed(f"unknown columns: {', '.join(unknown)}", message_zh=f"无法识别的列：{'、'.join(unknown)}",
                               code="enterprise.invalid_profile")
    district_codes = districts(conn)
    checked: Checked = []
    errors: list[tuple[str, str, str]] = []
    error_rows: list[int | None] = []
    seen: dict[str, int] = {}
    for number, cells_row in enumerate(cells[1:], start=2):
        if not any(c is not None and str(c).strip() for c in cells_row):
            continue
        data = {name: value for name, value in zip(header, cells_row, strict=False) if name}
        row, facts, row_errors = check_profile(data, districts=district_codes, variables=variables)
        code = row.get("credit_code")
        if code and code in seen:
            row_errors.append(("credit_code", f"also on row {seen[code]}", f"与第 {seen[code]} 行重复"))
        elif code:
            seen[code] = number
        errors.extend(row_errors)
        error_rows.extend([number] * len(row_errors))
        checked.append((row, facts))
        if len(errors) >= MAX_ERRORS:
            break
    _raise(errors, error_rows)
    return checked


def write_checked(conn: Connection, checked: Checked, *, now: datetime, actor: str = "system") -> dict[str, int]:
    """Add or update the enterprises `check_table` checked; how many were added, changed and unchanged."""
    counts = {"added": 0, "changed": 0, "unchanged": 0}
    existing = set(conn.execute(sa.select(enterprises.c.credit_code)).scalars())
    for row, facts in checked:
        new = row["credit_code"] not in existing
        _, changed = _write(conn, row, facts, now=now, actor=actor)
        counts["added" if new else "changed" if changed else "unchanged"] += 1
    return counts


def _as_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["registered_on"] = out["registered_on"].isoformat() if out["registered_on"] else None
    return out


def get_enterprise(conn: Connection, enterprise_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(enterprises).where(enterprises.c.id == enterprise_id)).first()
    if row is None:
        raise NotFound(f"no enterprise {enterprise_id}", message_zh=f"企业 {enterprise_id} 不存在",
                       code="enterprise.not_found")
    found = _as_dict(row)
    found["registered_on"] = row.registered_on
    return found


def enterprise_of_applicant(conn: Connection, applicant_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(enterprises).where(enterprises.c.applicant_id == applicant_id)).first()
    if row is None:
        return None
    found = _as_dict(row)
    found["registered_on"] = row.registered_on
    return found


# -- what policies read ------------------------------------------------------------------------------------

def _derived(industry_code: str | None, employees: Any, revenue: Any, total_assets: Any,
             stated_size: str | None) -> tuple[str | None, str | None, str | None]:
    industry = codes.sme_industry(industry_code)
    size = stated_size or codes.size_class(industry, {"employees": employees, "revenue": revenue,
                                                       "total_assets": total_assets})
    return (industry_code[0] if industry_code else None), industry, size


def variables_of(enterprise: Mapping[str, Any], on: date) -> dict[str, Any]:
    """One enterprise's variables as the rule language reads them (None where not known; lists as sets)."""
    section, industry, size = _derived(enterprise["industry_code"], enterprise["employees"], enterprise["revenue"],
                                       enterprise["total_assets"], enterprise["size_class"])
    env: dict[str, Any] = {k: v for k, v in (enterprise.get("facts") or {}).items()}
    for k in ("legal_form", "industry_code", "district", "tax_credit_grade"):
        env[k] = enterprise[k]
    for k in ("registered_capital", "employees", "revenue", "total_assets"):
        env[k] = None if enterprise[k] is None else float(enterprise[k])
    for k in ("certificates", "tags"):
        env[k] = frozenset(enterprise[k] or ())
    for k, v in list(env.items()):
        if isinstance(v, list):
            env[k] = frozenset(v)
        elif isinstance(v, int) and not isinstance(v, bool):
            env[k] = float(v)
    registered = enterprise["registered_on"]
    if isinstance(registered, str):
        registered = date.fromisoformat(registered)
    env.update(industry_section=section, sme_industry=industry, size_class=size,
               age_years=age_years(registered, on))
    return env


_REGISTER_COLUMNS = (enterprises.c.id, enterprises.c.credit_code, enterprises.c.name, enterprises.c.legal_form, enterprises.c.industry_code, enterprises.c.district,
                     enterprises.c.registered_on, enterprises.c.registered_capital, enterprises.c.employees,
                     enterprises.c.revenue, enterprises.c.total_assets, enterprises.c.tax_credit_grade,
                     enterprises.c.size_class, enterprises.c.certificates, enterprises.c.tags, enterprises.c.facts)


def register_rows(conn: Connection, where: Any = None, *, limit: int | None = None) -> list[dict[str, Any]]:
    """The register's rows as the evaluators read them, in id order (all, or those `where` selects)."""
    query = sa.select(*_REGISTER_COLUMNS).order_by(enterprises.c.id).limit(limit)
    if where is not None:
        query = query.where(where)
    return [dict(r._mapping) for r in conn.execute(query)]


def columns_of(rows: Sequence[Mapping[str, Any]], variables: Mapping[str, Variable], on: date,
               names: set[str] | None = None) -> tuple[np.ndarray, dict[str, Column]]:
    """The register as columns for the vector evaluator: (enterprise ids, {variable: (values, known)}),
    only the variables in `names` when given."""
    n = len(rows)
    envs: list[dict[str, Any]] | None = None
    out: dict[str, Column] = {}
    wanted = set(variables) if names is None else names
    for name in wanted:
        variable = variables.get(name)
        if variable is None:
            continue
        if envs is None:
            envs = [variables_of(r, on) for r in rows]
        values = [e.get(name) for e in envs]
        known = np.fromiter((v is not None for v in values), bool, count=n)
        if variable.type == NUMBER:
            array = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        elif variable.type == BOOLEAN:
            array = np.array([bool(v) for v in values], dtype=bool)
        else:
            array = np.empty(n, dtype=object)
            array[:] = values
        out[name] = (array, known)
    return np.fromiter((r["id"] for r in rows), np.int64, count=n), out

