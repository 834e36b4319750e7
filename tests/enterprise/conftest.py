"""Enterprise fixtures: a job-retention policy (免申即享) and a rent subsidy (apply in one click) with their
matters, on the demo city of the tests."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from wecity.enterprise import matching, register
from wecity.enterprise.catalogue import import_policies
from wecity.enterprise.codes import uscc_check_character
from wecity.govservice.catalogue import import_catalogue
from wecity.identity.service import add_department

from ..conftest import City


def uscc(first17: str) -> str:
    return first17 + uscc_check_character(first17)


def _matter(code: str, name_zh: str, name_en: str, fields: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {
        "code": code, "name_zh": name_zh, "name_en": name_en, "department": "renshe",
        "legal_basis_zh": "《测试政策》", "legal_limit_days": 20, "promised_limit_days": 10, "uncounted_steps": [],
        "applicants": ["enterprise"], "online_level": "full_online", "fees": [], "process": "simple", "reviewers": [],
        "materials": [],
        "form": {"type": "object", "required": required, "properties": {
            "credit_code": {"type": "string", "title": "统一社会信用代码", "x-title-en": "Credit code", "maxLength": 18,
                            "x-prefill": {"source": "enterprise", "field": "credit_code"}},
            "name": {"type": "string", "title": "企业名称", "x-title-en": "Name", "maxLength": 200,
                     "x-prefill": {"source": "enterprise", "field": "name"}},
            **fields}},
        "certificate": {"type": f"benefit_{code.lower()}", "name_zh": f"{name_zh}决定书", "name_en": f"{name_en} decision",
                        "valid_days": None},
    }


NUMBER = {"type": "number", "minimum": 0}
MATTERS = {"format": "wecity-matters/1", "matters": [
    _matter("T-WG", "稳岗返还", "Job-retention refund", {
        "unemployment_insurance_paid": {**NUMBER, "title": "上年度失业保险费（元）", "x-title-en": "Insurance paid (CNY)",
                                        "x-prefill": {"source": "enterprise", "field": "unemployment_insurance_paid"}},
        "layoff_rate": {**NUMBER, "title": "上年度裁员率", "x-title-en": "Layoff rate",
                        "x-prefill": {"source": "enterprise", "field": "layoff_rate"}}},
        ["credit_code", "name", "unemployment_insurance_paid", "layoff_rate"]),
    _matter("T-RENT", "小微企业房租补贴", "Rent subsidy for small firms", {
        "rent_paid": {**NUMBER, "title": "上年度房租（元）", "x-title-en": "Rent paid (CNY)",
                      "x-prefill": {"source": "enterprise", "field": "rent_paid"}},
        "employees": {**NUMBER, "title": "从业人员", "x-title-en": "Employees",
                      "x-prefill": {"source": "enterprise", "field": "employees"}}},
        ["credit_code", "name", "rent_paid", "employees"]),
]}

RETENTION: dict[str, Any] = {
    "code": "t-wengang", "name_zh": "失业保险稳岗返还", "name_en": "Job-retention refund", "department": "renshe",
    "matter": "T-WG", "automatic": True, "valid_from": "2026-01-01", "valid_until": "2026-12-31",
    "basis": {"title_zh": "关于做好失业保险稳岗返还工作的通知", "number": "测试〔2026〕1号"},
    "parameters": {"sme_rate": 0.6, "large_rate": 0.3},
    "conditions": [
        {"id": "insured", "clause": "第一条（一）", "text_zh": "参保满 12 个月", "text_en": "Insured 12 months",
         "rule": "unemployment_insurance_months >= 12"},
        {"id": "layoffs", "clause": "第一条（二）", "text_zh": "裁员率不高于 5.5%，30 人以下不高于 20%",
         "text_en": "Layoff rate at most 5.5% (20% with 30 employees or fewer)",
         "rule": "layoff_rate <= 0.055 or (employees <= 30 and layoff_rate <= 0.2)"},
        {"id": "honest", "clause": "第一条（三）", "text_zh": "无严重失信", "text_en": "No serious violation",
         "rule": "not serious_violation"}],
    "benefit": {"clause": "第二条", "text_zh": "中小微企业返还 60%，大型 30%", "text_en": "60% to SMEs, 30% to large firms",
                "amount": "unemployment_insurance_paid * (sme_rate if size_class != 'large' else large_rate)"},
}
RENT: dict[str, Any] = {
    "code": "t-rent", "name_zh": "小微企业房租补贴", "name_en": "Rent subsidy", "department": "renshe",
    "matter": "T-RENT", "automatic": False, "valid_from": "2026-01-01",
    "basis": {"title_zh": "小微企业房租补贴办法", "number": "测试〔2026〕2号"},
    "conditions": [
        {"id": "small", "clause": "第三条", "text_zh": "小微企业", "text_en": "Small or micro",
         "rule": "size_class in ('small', 'micro')"},
        {"id": "grade", "clause": "第四条", "text_zh": "纳税信用 A 或 B", "text_en": "Tax grade A or B",
         "rule": "tax_credit_grade in ('A', 'B')"}],
    "benefit": {"clause": "第五条", "text_zh": "房租的 30%，最高 5 万元", "text_en": "30% of rent, at most 50,000",
                "amount": "min(rent_paid * 0.3, 50000)"},
}
POLICIES = {"format": "wecity-policies/1", "policies": [RETENTION, RENT]}
DISTRICT = "430102"
# Complete for the job-retention refund: a small software firm (40 employees, revenue 800 万元).
COMPLETE = {"name": "长沙数智软件有限公司", "industry_code": "I6513", "district": DISTRICT, "employees": 40,
            "revenue": 800, "registered_on": "2019-05-01", "tax_credit_grade": "A",
            "legal_representative_phone": "13800000001",
            "facts": {"unemployment_insurance_months": 36, "unemployment_insurance_paid": 52000.0,
                      "layoff_rate": 0.02, "serious_violation": False, "rent_paid": 120000}}


@pytest.fixture
def policy_city(city: City) -> City:
    now = city.clock.now()

    def seed(conn: sa.Connection) -> None:
        add_department(conn, code="renshe", name_zh="市人力资源和社会保障局", name_en="Human Resources and Social Security")
        import_catalogue(conn, MATTERS, now=now)
        import_policies(conn, POLICIES, now=now, actor="test")

    city.db.write_sync(seed)
    return city


@pytest.fixture
def firm(policy_city: City) -> dict[str, object]:
    """An enterprise complete for the refund, lacking the rent it paid; matched."""
    city = policy_city
    now = city.clock.now()
    data = {**COMPLETE, "credit_code": uscc("91430102MA4T00011"),
            "facts": {k: v for k, v in COMPLETE["facts"].items() if k != "rent_paid"}}
    firm_id = city.db.write_sync(lambda c: register.save_enterprise(c, data, now=now))[0]
    city.db.write_sync(lambda c: matching.match_all(c, now=now))
    return city.db.read_sync(lambda c: register.get_enterprise(c, firm_id))
