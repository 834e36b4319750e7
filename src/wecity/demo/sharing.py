"""The demo city's data sharing: requests between its departments in every state (awaiting a decision,
overdue and escalated, granted, expired, revoked, refused, withdrawn), made at past times through the real
verbs, and readings under the grants, so that the pages, the access logs and the citizens' "who used my
data" have something true to show."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.datashare import access, queries, requests, sources
from wecity.datashare.disclosures import index_pending
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.models import users
from wecity.identity.service import StaffUser, add_user, get_user

# The coordinating department's staff (the department itself comes with the demo catalogue).
COORDINATOR_STAFF = (("zhengwu", "政务数据 经办人", ("handler",)), ("zhengwu-lead", "政务数据 科长", ("handler", "supervisor")))


def _user(conn: Connection, username: str) -> StaffUser:
    user_id = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one()
    found = get_user(conn, user_id)
    assert found is not None
    return found


def _read(conn: Connection, dataset: str, reader: StaffUser, *, at: datetime) -> int:
    """One call of the data API under the reader's grant, as the API makes it (scope, masking aside)."""
    d = queries.dataset(conn, dataset)
    found = access.resolve(conn, d, reader, now=at)
    if isinstance(found, access.Refusal):
        access.record_refusal(conn, d, found, reader, actor=f"user:{reader.username}", source_address=None, now=at)
        return 0
    query = sources.Query(found.fields, dict(found.row_filter), 200, 0)
    page = sources.reader(d)(conn, d, query, at)
    access.record_reading(conn, d, found, page, actor=f"user:{reader.username}", source_address=None, now=at,
                          detail={"rows": len(page.rows), "offset": 0, "fields": found.fields,
                                                         "filters": query.where})
    return len(page.rows)


def _district(conn: Connection, name_zh: str) -> str:
    from wecity.geo.models import areas

    return str(conn.execute(sa.select(areas.c.code).where(areas.c.name_zh == name_zh)).scalar_one())


def seed_sharing(conn: Connection, now: datetime, settings: Any = None) -> dict[str, int]:
    """Requests in every state; readings under the grants when `settings` (its secret key) is given."""
    taken = set(conn.execute(sa.select(users.c.username)).scalars())
    for username, name, roles in COORDINATOR_STAFF:
        if username not in taken:
            add_user(conn, username=username, password=DEMO_PASSWORD, display_name=name, department_code="zhengwu",
                     roles=roles, now=now)
    u = {name: _user(conn, name) for name in ("zhujian", "supervisor", "jiaojing", "gongan", "gongan-lead",
                                              "minzheng", "zhufangbaozhang-lead", "shichang", "chengguan",
                                              "zhengwu-lead", "zhufangbaozhang", "ziranziyuan")}
    days = timedelta(days=1)
    furong, yuelu = _district(conn, "芙蓉区"), _district(conn, "岳麓区")
    cases_ask = {"dataset": "city-cases", "fields": ["case_id", "category", "district", "status", "created_at",
                                                     "lat", "long", "description"], "days": 90}
    made: dict[str, int] = {}

    def ask(key: str, who: str, body: dict[str, Any], at: datetime) -> int:
        made[key] = requests.submit_request(conn, u[who], body, now=at)
        return made[key]

    # Granted, in force, read every few days: 住建 checks road collapses in two districts.
    rid = ask("granted", "zhujian", {**cases_ask, "purpose": "道路塌陷与井盖隐患排查（城区安全巡查）",
                                     "basis": "住房和城乡建设部门市政设施安全监管职责",
                                     "row_filter": {"district": [furong, yuelu]}}, now - 20 * days)
    requests.decide(conn, rid, u["supervisor"], {"decision": "grant", "reasons": "符合共享条件；不含举报人信息",
                                                  "basis": "长沙市政务数据共享管理办法"}, now=now - 19 * days)
    # Granted for 10 days, long since expired: 交警 studied congestion reports.
    rid = ask("expired", "jiaojing", {**cases_ask, "fields": ["case_id", "category", "district", "created_at"],
                                      "purpose": "交通拥堵投诉分析（专项整治）", "days": 10}, now - 28 * days)
    requests.decide(conn, rid, u["supervisor"], {"decision": "grant", "reasons": "专项整治期间使用"},
                    now=now - 27 * days)
    # Granted to 民政 with applicants' names in clear, for checking subsidies: read, and the applicants see it.
    rid = ask("personal", "minzheng", {"dataset": "public-rental-housing-eligibility",
                                       "purpose": "核对最低生活保障对象住房保障情况，避免重复救助",
                                       "basis": "《社会救助暂行办法》第十一条",
                                       "fields": ["number", "applicant_name", "household_size", "district", "decision"],
                                       "clear_fields": ["applicant_name", "household_size"], "days": 180},
               now - 12 * days)
    requests.decide(conn, rid, u["zhufangbaozhang-lead"], {
        "decision": "grant", "reasons": "社会救助核对，属法定职责", "basis": "《社会救助暂行办法》第十一条"},
        now=now - 11 * days)
    # Granted to 公安 for an investigation: the people concerned are told only after 60 days.
    rid = ask("delayed", "gongan", {**cases_ask, "fields": ["case_id", "category", "created_at", "reporter_phone"],
                                    "clear_fields": ["reporter_phone"], "purpose": "涉嫌虚假举报案件调查",
                                    "basis": "《治安管理处罚法》第二十五条", "days": 60}, now - 6 * days)
    requests.decide(conn, rid, u["supervisor"], {
        "decision": "grant", "reasons": "刑事/治安案件调查，经审批", "basis": "《治安管理处罚法》",
        "disclose_after_days": 60, "disclosure_basis": "《刑事诉讼法》第一百五十二条：侦查期间保密"}, now=now - 5 * days)
    # Granted, then revoked when the project ended.
    rid = ask("revoked", "chengguan", {**cases_ask, "purpose": "市容环境考评数据比对", "days": 60}, now - 25 * days)
    grant = requests.decide(conn, rid, u["supervisor"], {"decision": "grant", "reasons": "考评期间使用"},
                            now=now - 24 * days)
    assert grant is not None
    requests.revoke(conn, grant, u["supervisor"], "考评已结束，授权提前终止", now=now - 10 * days)
    # Refused, with reasons and basis.
    rid = ask("refused", "shichang", {"dataset": "residence-permits", "purpose": "个体工商户经营者身份核验",
                                      "fields": ["number", "holder_name", "id_number"],
                                      "clear_fields": ["holder_name", "id_number"], "days": 365}, now - 9 * days)
    requests.decide(conn, rid, u["gongan-lead"], {
        "decision": "refuse", "reasons": "身份核验可通过电子证照核验接口完成，无需批量获取居住证信息",
        "basis": "《个人信息保护法》第六条（最小必要原则）"}, now=now - 7 * days)
    # Withdrawn by the requester.
    rid = ask("withdrawn", "ziranziyuan", {**cases_ask, "fields": ["case_id", "category"],
                                           "purpose": "违法用地线索核查", "days": 30}, now - 15 * days)
    requests.withdraw(conn, rid, u["ziranziyuan"], now=now - 14 * days)
    # Awaiting a decision, within its time, and one long overdue (escalated to the coordinating department).
    ask("submitted", "gongan", {"dataset": "public-rental-housing-eligibility", "purpose": "流动人口服务管理",
                                "fields": ["number", "district"], "days": 90}, now - 1 * days)
    ask("overdue", "shichang", {**cases_ask, "fields": ["case_id", "category", "district", "created_at"],
                                "purpose": "食品安全投诉线索分析", "days": 90}, now - 12 * days)
    requests.check_clocks(conn, now, "zhengwu")

    if settings is not None:
        for back in (18, 14, 9, 4, 1):
            _read(conn, "city-cases", u["zhujian"], at=now - back * days)
        for back in (26, 22, 3):  # the last one after expiry: refused and logged
            _read(conn, "city-cases", u["jiaojing"], at=now - back * days)
        for back in (10, 2):
            _read(conn, "public-rental-housing-eligibility", u["minzheng"], at=now - back * days)
        _read(conn, "city-cases", u["gongan"], at=now - 4 * days)
        _read(conn, "city-cases", u["chengguan"], at=now - 2 * days)  # revoked
        while index_pending(conn, secret_key=settings.secret_key, now=now):
            pass
    return made
