"""The demo's enterprise register: 2,000 enterprises drawn with the shape of a real city's (most of them
micro and small, in trade and services; manufacturing and software fewer but larger), the 12 demo policies
with their matters, and the first match over the register.

Distributions (a city's market-entity statistics, roughly): industry by share of registered enterprises;
employees log-normal around a dozen; revenue per employee log-normal by industry; districts weighted as
Changsha's; one record in ten lacks a figure a policy needs, so that "unknown" and 快申快享 have something
to show. The demo citizens' two enterprises are in it, with complete data.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.enterprise.appeals import seed_business_categories
from wecity.enterprise.catalogue import import_policies, packaged_demo_policies, packaged_policy_matters
from wecity.enterprise.codes import uscc_check_character
from wecity.enterprise.matching import match_all
from wecity.enterprise.register import districts, known_variables, save_enterprise
from wecity.govservice.catalogue import import_catalogue
from wecity.identity.models import applicants, departments
from wecity.identity.service import add_department

ENTERPRISES = 2000
# (industry code, share, revenue per employee in 万元, name stem)
INDUSTRIES = [
    ("F5212", 22, 60, "商贸"), ("F5191", 10, 150, "贸易"), ("H6210", 8, 25, "餐饮"), ("I6513", 8, 45, "软件"),
    ("C3981", 4, 70, "电子"), ("C3411", 4, 80, "机械"), ("C1492", 3, 50, "食品"), ("C2710", 2, 120, "制药"),
    ("E4813", 5, 90, "建设"), ("L7212", 10, 40, "咨询"), ("G5430", 4, 55, "物流"), ("K7010", 2, 300, "置业"),
    ("M7320", 5, 35, "科技"), ("O8010", 6, 20, "家政"), ("I6432", 3, 50, "网络"), ("R8710", 4, 30, "文化"),
]
DISTRICTS = [("430102", 16), ("430103", 15), ("430104", 17), ("430105", 14), ("430111", 16), ("430112", 6),
             ("430121", 10), ("430181", 3), ("430182", 3)]
PLACES = ["长沙", "湘江", "岳麓", "星城", "麓谷", "橘洲", "芙蓉", "天心", "开福", "雨花", "望城", "浏阳", "宁乡", "洞庭"]
WORDS = ["华", "信", "达", "恒", "瑞", "鑫", "博", "创", "智", "源", "德", "顺", "盛", "宏", "远", "安"]


def _first17(rng: random.Random, district: str, n: int) -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    return "91" + district + "MA4" + "".join(rng.choice(alphabet) for _ in range(4)) + f"{n:02d}"[-2:]


def _enterprise(rng: random.Random, n: int, now: datetime) -> dict[str, Any]:
    code, _, per_head, stem = rng.choices(INDUSTRIES, weights=[w for _, w, _, _ in INDUSTRIES])[0]
    district = rng.choices([d for d, _ in DISTRICTS], weights=[w for _, w in DISTRICTS])[0]
    employees = max(1, int(rng.lognormvariate(2.5, 1.1)))
    revenue = round(employees * per_head * rng.lognormvariate(0, 0.5), 1)
    registered = date(2000, 1, 1) + timedelta(days=rng.randrange((now.date() - date(2000, 1, 1)).days))
    certificates = []
    if code[0] in "CIM" and rng.random() < 0.25:
        certificates.append("high_tech")
    if code[0] == "C" and employees > 50 and rng.random() < 0.15:
        certificates.append("little_giant")
    facts: dict[str, Any] = {
        "unemployment_insurance_months": rng.choice([3, 8, 12, 24, 36, 60, 96]),
        "unemployment_insurance_paid": round(employees * rng.uniform(600, 1100), 2),
        "layoff_rate": round(rng.choice([0.0, 0.0, 0.01, 0.03, 0.05, 0.08, 0.15, 0.25]), 3),
        "serious_violation": rng.random() < 0.03,
    }
    if rng.random() < 0.6:
        facts["rent_paid"] = round(employees * rng.uniform(4000, 15000), -2)
    if code[0] in "CIM":
        facts["rd_expense"] = round(revenue * rng.uniform(0.02, 0.08), 1)
        facts["rd_expense_growth"] = round(rng.uniform(-0.2, 0.5), 3)
        facts["rd_deduction_claimed"] = rng.random() < 0.7
        facts["patents_invention_granted"] = rng.choice([0, 0, 0, 1, 2, 3])
    if "high_tech" in certificates:
        facts["high_tech_certified_year"] = rng.choice([2024, 2025, 2026])
        facts["high_tech_first_certified"] = rng.random() < 0.6
    if "little_giant" in certificates:
        facts["little_giant_first_certified"] = rng.random() < 0.5
    if code[0] in "CF" and rng.random() < 0.2:
        facts["export_value"] = round(revenue * rng.uniform(0.05, 0.5), 1)
        facts["export_growth"] = round(rng.uniform(-0.1, 0.3), 3)
    if code[0] in "BCD" and rng.random() < 0.05:
        facts["first_above_scale"] = True
    for name in ("layoff_rate", "unemployment_insurance_paid"):  # one record in ten lacks a figure
        if rng.random() < 0.1:
            facts.pop(name, None)
    name = f"{rng.choice(PLACES)}{rng.choice(WORDS)}{rng.choice(WORDS)}{stem}有限公司"
    return {"credit_code": "", "name": name, "legal_form": "有限责任公司", "industry_code": code, "district": district,
            "registered_on": registered.isoformat(), "registered_capital": round(rng.choice([10, 50, 100, 500, 1000]) * 1.0, 1),
            "employees": employees, "revenue": revenue, "total_assets": round(revenue * rng.uniform(0.6, 1.8), 1),
            "tax_credit_grade": rng.choices("ABMCD", weights=[30, 45, 15, 7, 3])[0],
            "certificates": certificates, "facts": facts}


def seed_enterprises(conn: Connection, now: datetime, *, count: int = ENTERPRISES) -> dict[str, Any]:
    matters = packaged_policy_matters()
    existing = set(conn.execute(sa.select(departments.c.code)).scalars())
    for d in matters.get("departments", []):
        if d["code"] not in existing:
            add_department(conn, code=d["code"], name_zh=d["name_zh"], name_en=d["name_en"])
    import_catalogue(conn, matters, now=now)
    import_policies(conn, packaged_demo_policies(), now=now, actor="demo")
    seed_business_categories(conn)
    rng = random.Random(20261204)
    known = (districts(conn), known_variables(conn))
    # The demo citizens' enterprises first, complete, so that their agents see benefits at once.
    for row in conn.execute(sa.select(applicants.c.credit_code, applicants.c.display_name)
                            .where(applicants.c.kind == "enterprise")):
        data = _enterprise(rng, 0, now)
        data.update(credit_code=row.credit_code, name=row.display_name, industry_code="H6210", employees=18,
                    revenue=620.0, tax_credit_grade="A", district=row.credit_code[2:8] if row.credit_code[2:8] in known[0] else "430102")
        data["facts"].update(unemployment_insurance_months=48, unemployment_insurance_paid=15600.0, layoff_rate=0.0,
                             serious_violation=False)
        data["facts"].pop("rent_paid", None)  # 快申快享: the rent subsidy asks only for the rent
        save_enterprise(conn, data, now=now, known=known)
    seen: set[str] = set()
    n = 0
    while n < count:
        data = _enterprise(rng, n, now)
        first17 = _first17(rng, data["district"], n)
        code = first17 + uscc_check_character(first17)
        if code in seen:
            continue
        seen.add(code)
        data["credit_code"] = code
        save_enterprise(conn, data, now=now, known=known)
        n += 1
    report = match_all(conn, now=now)
    return report.as_dict()
