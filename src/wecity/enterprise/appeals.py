"""Enterprise 诉求: an enterprise's requests and complaints (a policy not paid, an approval stuck, a utility
connection late) filed by a citizen acting for it, through the one intake as cases of channel "enterprise".

They go in the categories of the group "营商环境 / Business environment", which carry the targets the city
sets for enterprises (acknowledged within hours, resolved within working days: `seed_business_categories`
has the demo's), are dispatched and followed like every case, and are listed on the enterprise's home by
the credit code kept with each report (`account_id` "enterprise:<credit code>").
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import add_category, get_category
from wecity.cases.choices import Channel, Source
from wecity.cases.intake import NewReport
from wecity.cases.models import cases, categories, reports
from wecity.cases.receive import Receipt, receive_report
from wecity.core.context import AppContext
from wecity.core.errors import Conflict, ValidationFailed
from wecity.enterprise.register import enterprise_of_applicant
from wecity.identity.applicants import Applicant, acting_as

GROUP_ZH, GROUP_EN = "营商环境", "Business environment"
# code, name zh, name en, department, acknowledge within (minutes), resolve within (working hours)
BUSINESS_CATEGORIES = [
    ("ent-policy", "惠企政策兑现问题", "Support policy not delivered", "gongxin", 240, 40),
    ("ent-approval", "审批服务问题", "Approval or licensing stuck", "shichang", 240, 24),
    ("ent-utility", "水电气报装问题", "Water, power or gas connection late", "zhujian", 120, 24),
    ("ent-environment", "营商环境投诉", "Complaint about the business environment", "gongxin", 240, 40),
]


def seed_business_categories(conn: Connection) -> None:
    """The demo's categories of enterprise 诉求 (a city sets its own through the categories API)."""
    for order, (code, zh, en, department, ack, resolve) in enumerate(BUSINESS_CATEGORIES):
        add_category(conn, code=code, name_zh=zh, name_en=en, group_zh=GROUP_ZH, group_en=GROUP_EN,
                     department_code=department, ack_minutes=ack, resolve_hours=resolve, calendar="working",
                     keywords="企业 诉求 营商环境 enterprise", sort_order=900 + order, channels=[str(Channel.ENTERPRISE)])


def business_categories(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(categories.c.code, categories.c.name_zh, categories.c.name_en,
                                  categories.c.ack_minutes, categories.c.resolve_hours)
                        .where(categories.c.group_en == GROUP_EN, categories.c.active)
                        .order_by(categories.c.sort_order))
    return [dict(r._mapping) for r in rows]


def account_of(credit_code: str) -> str:
    return f"enterprise:{credit_code}"


async def file_request(ctx: AppContext, *, citizen: Applicant, applicant_id: int, service_code: str,
                       description: str, lat: float | None = None, long: float | None = None,
                       address: str | None = None) -> Receipt:
    """File a 诉求 for the enterprise `applicant_id`: only a citizen listed for it may, only in a category of
    the business-environment group, through the one intake."""
    def authorize(conn: Connection) -> dict[str, Any]:
        applicant = acting_as(conn, citizen, applicant_id)
        found = enterprise_of_applicant(conn, applicant.id)
        if found is None:
            raise Conflict("this enterprise is not in the register", message_zh="企业档案中没有该企业",
                           code="enterprise.not_registered")
        category = get_category(conn, service_code[:64])
        if category.group_en != GROUP_EN:
            raise ValidationFailed(f"{service_code} is not a category of enterprise requests",
                                   message_zh=f"{service_code} 不是企业诉求的类别", code="request.service_code")
        return found

    enterprise = await ctx.db.read(authorize)
    # A 诉求 is about the enterprise, not a spot on the map: without a place given, the enterprise itself
    # (its name and district) is the address the intake asks for.
    where = address or f"{enterprise['name']}（{enterprise['district'] or '—'}）"
    report = NewReport(service_code=service_code[:64], channel=Channel.ENTERPRISE, source=Source.CITIZEN,
                       lat=lat, long=long, address=where if lat is None else address, description=description, phone=citizen.phone,
                       account_id=account_of(enterprise["credit_code"]), first_name=enterprise["name"][:100])
    return await receive_report(ctx, report, authorize=lambda conn: acting_as(conn, citizen, applicant_id))


def requests_of(conn: Connection, credit_code: str, *, limit: int = 100, with_token: bool = True) -> list[dict[str, Any]]:
    """The enterprise's 诉求, newest first, with where each stands; for the enterprise, each with its tracking
    code (`with_token`), which is the reporter's credential and never in a staff view."""
    rows = conn.execute(
        sa.select(reports.c.token, reports.c.requested_at, cases.c.id, cases.c.status, cases.c.resolve_due_at,
                  cases.c.closed_at, categories.c.name_zh, categories.c.name_en, reports.c.description)
        .join(cases, cases.c.id == reports.c.case_id).join(categories, categories.c.code == cases.c.category_code)
        .where(reports.c.account_id == account_of(credit_code), reports.c.channel == str(Channel.ENTERPRISE))
        .order_by(reports.c.id.desc()).limit(limit))
    out = []
    for r in rows:
        item = dict(r._mapping)
        item["case_id"] = item.pop("id")
        if not with_token:
            del item["token"]
        for key in ("requested_at", "resolve_due_at", "closed_at"):
            item[key] = item[key].isoformat() if item[key] else None
        out.append(item)
    return out
