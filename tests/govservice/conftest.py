"""Digital government fixtures: a small catalogue of two matters, citizens with base-register records,
and the staff of the departments involved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.govservice.catalogue import import_catalogue
from wecity.identity.applicants import Applicant, add_agent, create_applicant
from wecity.identity.models import users
from wecity.identity.service import StaffUser, add_user, get_user

from ..conftest import City

# 个体工商户登记 (simple: one department) issues a licence; 门头招牌设置 (standard: reviewed in parallel by
# transport and traffic police) pre-fills the business's name and credit code from that licence.
LICENCE_MATTER: dict[str, Any] = {
    "code": "T-BIZ", "name_zh": "个体工商户登记", "name_en": "Individual business registration",
    "department": "shichang", "legal_basis_zh": "《促进个体工商户发展条例》", "legal_limit_days": 15,
    "promised_limit_days": 3, "uncounted_steps": [], "applicants": ["citizen"], "online_level": "full_online",
    "fees": [], "process": "simple", "reviewers": [],
    "materials": [{"code": "id_card", "name_zh": "身份证明", "name_en": "Identity document", "required": True,
                   "replaced_by": "profile"}],
    "form": {"type": "object", "required": ["operator", "business_name", "credit_code"], "properties": {
        "operator": {"type": "string", "title": "经营者", "x-title-en": "Operator", "maxLength": 50,
                     "x-prefill": {"source": "profile", "field": "name"}},
        "business_name": {"type": "string", "title": "名称", "x-title-en": "Business name", "maxLength": 100},
        "credit_code": {"type": "string", "title": "统一社会信用代码", "x-title-en": "Credit code",
                        "pattern": "^[0-9A-HJ-NPQRTUWXY]{18}$", "maxLength": 18}}},
    "certificate": {"type": "business_licence", "name_zh": "营业执照", "name_en": "Business licence", "valid_days": None},
}
SIGN_MATTER: dict[str, Any] = {
    "code": "T-SIGN", "name_zh": "门头招牌设置", "name_en": "Shop sign installation", "department": "chengguan",
    "legal_basis_zh": "《城市市容和环境卫生管理条例》第十一条", "legal_limit_days": 20, "promised_limit_days": 5,
    "uncounted_steps": ["inspection"], "applicants": ["citizen", "enterprise"], "online_level": "full_online",
    "fees": [], "process": "standard", "reviewers": ["jiaotong", "jiaojing"],
    "materials": [
        {"code": "licence", "name_zh": "营业执照", "name_en": "Business licence", "required": True,
         "replaced_by": "certificate:business_licence"},
        {"code": "design", "name_zh": "招牌设计效果图", "name_en": "Design drawing", "required": True, "replaced_by": None}],
    "form": {"type": "object", "required": ["business_name", "credit_code", "address", "width_m"], "properties": {
        "business_name": {"type": "string", "title": "商户名称", "x-title-en": "Business name", "maxLength": 100,
                          "x-prefill": {"source": "certificate", "type": "business_licence", "field": "business_name"}},
        "credit_code": {"type": "string", "title": "统一社会信用代码", "x-title-en": "Credit code", "maxLength": 18,
                        "x-prefill": {"source": "certificate", "type": "business_licence", "field": "credit_code"}},
        "contact": {"type": "string", "title": "联系人", "x-title-en": "Contact", "maxLength": 50,
                    "x-prefill": {"source": "profile", "field": "name"}},
        "address": {"type": "string", "title": "设置地址", "x-title-en": "Address", "maxLength": 200},
        "width_m": {"type": "number", "title": "招牌宽度（米）", "x-title-en": "Width (m)", "minimum": 0.5,
                    "maximum": 30},
        "lit": {"type": "boolean", "title": "是否发光", "x-title-en": "Illuminated"}}},
    "certificate": {"type": "sign_permit", "name_zh": "门头招牌设置许可", "name_en": "Shop sign permit", "valid_days": 365},
}
CATALOGUE = {"format": "wecity-matters/1", "matters": [LICENCE_MATTER, SIGN_MATTER]}
CREDIT_CODE = "92430102MA4L0XXXXX"


@dataclass
class Services:
    city: City
    citizen: Applicant       # 李明, with a base-register record
    stranger: Applicant      # another citizen
    firm: Applicant          # an enterprise 李明 acts for
    accepting: StaffUser     # 城管 handler (the sign matter's department)
    lead: StaffUser          # 城管 handler and supervisor (decides)
    transport: StaffUser     # reviewer
    police: StaffUser        # reviewer
    market: StaffUser        # 市监 handler
    market_lead: StaffUser   # 市监 supervisor (decides the licence)


def staff(city: City, username: str) -> StaffUser:
    user = city.db.read_sync(lambda c: get_user(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one()))
    assert user is not None
    return user


@pytest.fixture
def services(city: City) -> Services:
    now = city.clock.now()

    def seed(conn: sa.Connection) -> tuple[Applicant, Applicant, Applicant]:
        import_catalogue(conn, CATALOGUE, now=now)
        add_user(conn, username="shichang-lead", password="Lead-pass-2026!", display_name="市监科长",
                 department_code="shichang", roles=("handler", "supervisor"), now=now)
        citizen = create_applicant(conn, kind="citizen", display_name="李明", phone="13912345678", now=now,
                                   profile={"name": "李明", "id_number": "430102199001011234", "address": "长沙市芙蓉区"})
        stranger = create_applicant(conn, kind="citizen", display_name="王芳", phone="13987654321", now=now,
                                    profile={"name": "王芳"})
        firm = create_applicant(conn, kind="enterprise", display_name="长沙明记餐饮有限公司", credit_code=CREDIT_CODE,
                                now=now, profile={"enterprise_name": "长沙明记餐饮有限公司"})
        add_agent(conn, enterprise_id=firm.id, agent_id=citizen.id, role="legal_representative")
        return citizen, stranger, firm

    citizen, stranger, firm = city.db.write_sync(seed)
    return Services(city, citizen, stranger, firm, staff(city, "chengguan"), staff(city, "chengguan-lead"),
                    staff(city, "jiaotong"), staff(city, "jiaojing"), staff(city, "shichang"),
                    staff(city, "shichang-lead"))
