"""Enterprise services' portal pages in both languages: the public policies, the enterprise's home with its
outcomes and one-click apply, the policy page's trace, and the policy officer's pages; who may see what."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from wecity.identity.applicants import sign_citizen

from ..conftest import City, make_client
from ..web.conftest import csrf_token, log_in
from .test_api import AGENT, STRANGER

EN, ZH = {"Accept-Language": "en"}, {"Accept-Language": "zh-CN"}


@pytest.fixture
def portal(policy_city: City) -> Iterator[TestClient]:
    with make_client(policy_city) as client:
        yield client


def _as_citizen(client: TestClient, city: City, phone: str) -> None:
    client.cookies.set("wecity_citizen", sign_citizen(city.settings.secret_key, phone,
                                                      int(city.clock.now().timestamp()) + 600))


def test_policies_are_public_in_both_languages(portal: TestClient) -> None:
    zh = portal.get("/policies", headers=ZH)
    assert zh.status_code == 200 and "失业保险稳岗返还" in zh.text and "免申即享" in zh.text
    en = portal.get("/policies/t-wengang", headers=EN).text
    assert "Job-retention refund" in en and "第一条（一）" in en and "Insured 12 months" in en
    assert "unemployment_insurance_months &gt;= 12" in en  # the rule as the platform checks it
    assert portal.get("/policies/nope", headers=EN).status_code == 404


def test_the_enterprise_home_shows_outcomes_and_applies_in_one_click(portal: TestClient, policy_city: City,
                                                                     firm: dict[str, object]) -> None:
    assert portal.get("/enterprise", follow_redirects=False).status_code == 303  # sign in first
    _as_citizen(portal, policy_city, AGENT)
    zh = portal.get("/enterprise", headers=ZH).text
    assert "长沙数智软件有限公司" in zh and "31,200.00" in zh and "上年度实际支付房租" in zh
    assert "免申即享" in zh or "无需申请" in zh
    en = portal.get("/enterprise", headers=EN).text
    assert "You qualify" in en and "Apply in one click" in en
    assert "Legal representative" in en and "Authorise an agent by mobile number" in en
    page = portal.get("/policies/t-rent", headers=EN)
    assert "How it was decided" in page.text and "Information missing" in page.text
    applied = portal.post(f"/enterprise/{firm['applicant_id']}/policies/t-rent/apply",
                          data={"csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert applied.status_code == 303 and applied.headers["location"].startswith("/services/applications/")
    form = portal.get(applied.headers["location"], headers=EN).text
    assert "长沙数智软件有限公司" in form
    # Without the form's token: refused.
    assert portal.post(f"/enterprise/{firm['applicant_id']}/policies/t-rent/apply", data={}).status_code == 403


def test_another_citizen_sees_no_enterprise_and_cannot_apply_for_it(portal: TestClient, policy_city: City,
                                                                    firm: dict[str, object]) -> None:
    _as_citizen(portal, policy_city, STRANGER)
    page = portal.get("/enterprise", headers=EN)
    assert "not listed" in page.text and "长沙数智软件有限公司" not in page.text
    assert portal.post(f"/enterprise/{firm['applicant_id']}/agents", data={
        "csrf_token": csrf_token(portal.get("/services/matters/T-RENT", headers=EN).text), "phone": STRANGER},
    ).status_code == 403
    token = csrf_token(portal.get("/services/matters/T-RENT", headers=EN).text)  # any form of the portal
    refused = portal.post(f"/enterprise/{firm['applicant_id']}/policies/t-rent/apply", data={"csrf_token": token})
    assert refused.status_code == 403


def test_the_policy_officer_pages(portal: TestClient, firm: dict[str, object]) -> None:
    assert portal.get("/staff/policies", follow_redirects=False).status_code in (302, 303)
    log_in(portal, "chengguan")
    listing = portal.get("/staff/policies", headers=ZH)
    assert listing.status_code == 200 and "失业保险稳岗返还" in listing.text
    one = portal.get("/staff/policies/t-rent", headers=EN).text
    assert "Dry run over the register today" in one and "rent_paid" in one and "Not taken up" in one


def test_an_enterprise_request_from_its_home_page(portal: TestClient, policy_city: City, firm: dict[str, object]) -> None:
    import sqlalchemy as sa

    from wecity.enterprise.appeals import seed_business_categories
    from wecity.identity.service import add_department

    def seed(c: sa.Connection) -> None:
        add_department(c, code="gongxin", name_zh="市工业和信息化局", name_en="Industry and Information Technology")
        seed_business_categories(c)

    policy_city.db.write_sync(seed)
    _as_citizen(portal, policy_city, AGENT)
    home = portal.get("/enterprise", headers=ZH).text
    assert "惠企政策兑现问题" in home and "提交诉求" in home
    sent = portal.post(f"/enterprise/{firm['applicant_id']}/requests", follow_redirects=False,
                       data={"csrf_token": csrf_token(home), "service_code": "ent-approval", "description": "营业执照变更已超期"})
    assert sent.status_code == 303 and sent.headers["location"].startswith("/track/")
    assert "营业执照变更已超期" in portal.get("/enterprise", headers=ZH).text


def test_a_stored_basis_url_that_is_not_http_is_not_a_link(portal: TestClient, policy_city: City) -> None:
    """A policy kept from before basis URLs were checked: its page shows no link that could run a script."""
    import sqlalchemy as sa

    from wecity.enterprise.models import policies

    def spoil(conn: sa.Connection) -> None:
        document = conn.execute(sa.select(policies.c.document).where(policies.c.code == "t-wengang")).scalar_one()
        document = {**document, "basis": {**document["basis"], "url": "javascript:alert(1)"}}
        conn.execute(policies.update().where(policies.c.code == "t-wengang").values(document=document))

    policy_city.db.write_sync(spoil)
    page = portal.get("/policies/t-wengang", headers=ZH)
    assert page.status_code == 200 and "javascript:" not in page.text


def test_the_home_says_where_an_application_stands_rather_than_being_granted(portal: TestClient, policy_city: City,
                                                                              firm: dict[str, object]) -> None:
    """An enterprise that applied for a 免申即享 benefit (submitted) will not be granted it again: its home
    shows the application's status, not "Being granted"."""
    from wecity.enterprise import benefits
    from wecity.govservice.applications import submit
    from wecity.identity.applicants import find_citizen

    city = policy_city
    _as_citizen(portal, city, AGENT)
    assert "Being granted: no application needed" in portal.get("/enterprise", headers=EN).text
    citizen = city.db.read_sync(lambda c: find_citizen(c, AGENT))
    draft = city.db.write_sync(lambda c: benefits.quick_apply(c, citizen=citizen, enterprise_applicant_id=int(str(
        firm["applicant_id"])), policy_code="t-wengang", now=city.clock.now()))
    assert "Being granted: no application needed" in portal.get("/enterprise", headers=EN).text  # a draft: granted still
    city.db.write_sync(lambda c: submit(c, draft["application_id"], citizen=citizen, now=city.clock.now()))
    en = portal.get("/enterprise", headers=EN).text
    assert "Being granted: no application needed" not in en and "Awaiting acceptance" in en
    assert f"/services/applications/{draft['application_id']}" in en
    assert "待受理" in portal.get("/enterprise", headers=ZH).text
