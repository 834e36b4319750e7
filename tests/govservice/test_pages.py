"""The service loop's portal pages through the HTTP stack, in English and in Chinese: the citizen's form with
each pre-filled field's source, errors next to their fields, the staff review page, and who may see what."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from wecity.govservice import applications as apply
from wecity.identity.applicants import sign_citizen

from ..conftest import make_client
from ..web.conftest import csrf_token, log_in
from .conftest import CREDIT_CODE, Services
from .test_flow import licensed

EN, ZH = {"Accept-Language": "en"}, {"Accept-Language": "zh-CN"}


@pytest.fixture
def portal(services: Services) -> TestClient:
    with make_client(services.city) as client:
        yield client


def _as_citizen(client: TestClient, s: Services, phone: str) -> None:
    token = sign_citizen(s.city.settings.secret_key, phone, int(s.city.clock.now().timestamp()) + 600)
    client.cookies.set("wecity_citizen", token)


def test_the_catalogue_and_a_matter_in_both_languages(portal: TestClient, services: Services) -> None:
    en = portal.get("/services", params={"q": "sign"}, headers=EN).text
    assert "Shop sign installation" in en and "Services found: 1" in en
    zh = portal.get("/services/matters/T-SIGN", headers=ZH).text
    assert "门头招牌设置" in zh and "承诺时限" in zh and "用手机号码登录后申请" in zh
    assert portal.get("/services/matters/NOPE", headers=EN).status_code == 404


def test_the_form_says_where_each_value_came_from_and_puts_errors_next_to_fields(portal: TestClient,
                                                                                 services: Services) -> None:
    s = services
    number = licensed(s)
    _as_citizen(portal, s, "13912345678")
    start = portal.get("/services/matters/T-SIGN", headers=EN)
    r = portal.post("/services/matters/T-SIGN/apply", data={"csrf_token": csrf_token(start.text)},
                    headers=EN, follow_redirects=False)
    assert r.status_code == 303
    page = portal.get(r.headers["location"], headers=EN).text
    assert f"Filled in from your certificate {number}" in page
    assert "Filled in from your record in the city&#39;s registers" in page
    assert "Documents you need not upload, because the city already holds them: 1" in page
    app_id = int(r.headers["location"].rsplit("/", 1)[1])
    refused = portal.post(f"/services/applications/{app_id}/submit", headers=EN,
                          data={"csrf_token": csrf_token(page), "f.width_m": "wide", "f.address": ""})
    assert refused.status_code == 400
    assert re.search(r'data-field="width_m">.*?Width \(m\): expected number', refused.text, re.S)
    assert 'value="wide"' in refused.text  # what was typed is kept
    assert s.city.db.read_sync(lambda c: apply.own_application(c, app_id, s.citizen)).status == "draft"
    # Another citizen's session finds nothing there.
    _as_citizen(portal, s, "13987654321")
    assert portal.get(f"/services/applications/{app_id}", headers=EN).status_code == 404


def test_the_staff_review_page_and_who_may_open_it(portal: TestClient, services: Services) -> None:
    s = services
    licensed(s)
    app_id = s.city.db.write_sync(lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                                     now=s.city.clock.now()))
    original = s.city.db.read_sync(lambda c: apply.own_application(c, app_id, s.citizen)).form_data["business_name"]
    s.city.db.write_sync(lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=s.city.clock.now(),
                                                    form_data={"address": "五一大道 9 号", "width_m": 2,
                                                               "business_name": "别家公司"}))
    s.city.db.write_sync(lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["m1"],
                                                         now=s.city.clock.now()))
    s.city.db.write_sync(lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now()))
    assert log_in(portal, "shichang").status_code == 303
    assert portal.get(f"/staff/applications/{app_id}", headers=EN).status_code == 403
    # A step tried on another department's application is refused, and on the audit record.
    staff_page = portal.get("/staff", headers=EN).text
    tried = portal.post(f"/staff/applications/{app_id}/accept", data={"csrf_token": csrf_token(staff_page)},
                        headers=EN, follow_redirects=False)
    assert tried.status_code == 403
    import sqlalchemy as sa

    from wecity.identity.models import audit_log
    assert s.city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.outcome).where(
        audit_log.c.action == "application.accept", audit_log.c.actor == "user:shichang",
        audit_log.c.target == f"application:{app_id}")).scalar_one()) == "denied"
    portal.post("/logout", data={"csrf_token": csrf_token(portal.get("/staff").text)})
    assert log_in(portal, "chengguan").status_code == 303
    page = portal.get(f"/staff/applications/{app_id}", headers=EN).text
    assert "Accept (the clock starts)" in page and "from certificate" in page and CREDIT_CODE in page
    # The applicant's own value is not passed off as the certificate's.
    assert "别家公司 <span class=\"hint edited\">(changed by the applicant; certificate " in page
    assert f"said {original})" in page
    queue = portal.get("/staff/applications", params={"queue": "accept"}, headers=ZH).text
    assert f"/staff/applications/{app_id}" in queue and "待受理" in queue
    accepted = portal.post(f"/staff/applications/{app_id}/accept", data={"csrf_token": csrf_token(page)},
                           headers=EN, follow_redirects=False)
    assert accepted.status_code == 303
    assert "In review" in portal.get(f"/staff/applications/{app_id}", headers=EN).text


def test_an_over_long_reason_is_refused_not_cut_short(portal: TestClient, services: Services) -> None:
    s = services
    licensed(s)
    app_id = s.city.db.write_sync(lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                                     now=s.city.clock.now()))
    s.city.db.write_sync(lambda c: apply.save_draft(c, app_id, citizen=s.citizen, now=s.city.clock.now(),
                                                    form_data={"address": "五一大道 9 号", "width_m": 2}))
    s.city.db.write_sync(lambda c: apply.attach_material(c, app_id, citizen=s.citizen, material="design", media=["m1"],
                                                         now=s.city.clock.now()))
    s.city.db.write_sync(lambda c: apply.submit(c, app_id, citizen=s.citizen, now=s.city.clock.now()))
    assert log_in(portal, "chengguan").status_code == 303
    page = portal.get(f"/staff/applications/{app_id}", headers=EN).text
    before = s.city.db.read_sync(lambda c: apply.own_application(c, app_id, s.citizen)).status
    refused = portal.post(f"/staff/applications/{app_id}/not-accept", headers=EN, data={
        "csrf_token": csrf_token(page), "reason": "不符合" * 667, "legal_basis": "《行政许可法》第三十二条"})
    assert refused.status_code == 400 and "reason is too long: at most 2,000 characters (2,001 sent)" in refused.text
    assert s.city.db.read_sync(lambda c: apply.own_application(c, app_id, s.citizen)).status == before == "submitted"


def test_a_field_sent_empty_clears_it_and_one_not_on_the_form_is_left_alone() -> None:
    from starlette.datastructures import FormData

    from wecity.web.services import coerce_form

    schema = {"properties": {"address": {"type": "string"}, "width_m": {"type": "number"}, "contact": {"type": "string"}}}
    assert coerce_form(schema, FormData([("f.address", " 五一大道 "), ("f.width_m", "")])) == \
        {"address": "五一大道", "width_m": None}


def test_a_material_a_revoked_certificate_spared_asks_to_be_uploaded(portal: TestClient, services: Services) -> None:
    from wecity.govservice import certificates

    s = services
    number = licensed(s)
    app_id = s.city.db.write_sync(lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                                     now=s.city.clock.now()))
    _as_citizen(portal, s, "13912345678")
    page = portal.get(f"/services/applications/{app_id}", headers=ZH).text
    assert 'data-material="licence" data-state="replaced"' in page and 'id="file-licence"' not in page
    s.city.db.write_sync(lambda c: certificates.revoke(c, number, by="user:shichang", department_code="shichang",
                                                       reason="吊销", now=s.city.clock.now()))
    page = portal.get(f"/services/applications/{app_id}", headers=ZH).text
    assert f"电子证照 {number} 已失效，请上传此材料。" in page and 'id="file-licence"' in page
