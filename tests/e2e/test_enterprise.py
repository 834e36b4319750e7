"""Enterprise services in a real browser, on the demo city.

李明 is the legal representative of 长沙明记餐饮管理有限公司 in the demo's register. Signed in with his phone,
he opens his enterprise's home: the job-retention refund is his without applying (免申即享), the rent
subsidy lacks only the rent his enterprise paid, and one click opens its application with everything else
filled in from the register. He files a 诉求 about a late payment and lands on its tracking page. A policy
officer opens the policy's dry run. Both languages; a phone and a desktop.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot, sms_code
from wecity.demo.changsha import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

CITIZEN_PHONE = "13900000001"


def _sign_in(page: Any, next_path: str) -> None:
    page.goto(next_path)  # the home page asks a citizen to sign in first, and comes back
    page.fill("#my-phone", CITIZEN_PHONE)
    page.get_by_role("button", name=re.compile("获取验证码|Get a code")).click()
    page.wait_for_selector("#my-code")
    page.fill("#my-code", sms_code(CITIZEN_PHONE))
    page.locator("#my-code").press("Enter")
    page.wait_for_url(f"**{next_path}")


def test_the_enterprise_home_one_click_apply_and_a_request(pages: Any) -> None:
    owner = pages.open("zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    _sign_in(owner, "/enterprise")
    main = owner.locator("main")
    assert "长沙明记餐饮管理有限公司" in main.inner_text()
    eligible = owner.locator("#outcome-eligible + ul").inner_text()
    assert "失业保险稳岗返还" in eligible and "9,360.00" in eligible
    lacking = owner.locator("#outcome-unknown + ul li", has_text="小微企业房租补贴")
    assert "上年度实际支付房租" in lacking.inner_text()
    shot(owner, "enterprise-home-zh-phone")
    assert a11y.problems(owner) == []

    lacking.get_by_role("button", name="一键申报（快申快享）").click()
    owner.wait_for_url(re.compile(r"/services/applications/\d+$"))
    assert owner.locator("#f-name").input_value() == "长沙明记餐饮管理有限公司"
    assert owner.locator("#f-size_class").input_value() == "small"
    assert owner.locator("#f-rent_paid").input_value() == ""  # the one thing to fill in
    shot(owner, "enterprise-quick-apply-zh-phone")

    owner.goto("/enterprise#requests")
    owner.select_option("#service_code", "ent-policy")
    owner.fill("#request-description", "稳岗返还决定书已收到，资金尚未到账")
    owner.get_by_role("button", name="提交诉求").click()
    owner.wait_for_url(re.compile(r"/track/"))
    assert "惠企政策兑现问题" in owner.locator("main").inner_text()

    desk = pages.open("en")
    desk.goto("/login")
    desk.fill("#username", "admin")
    desk.fill("#password", DEMO_PASSWORD)
    desk.locator("form button[type=submit]").first.click()
    desk.wait_for_url("**/staff")
    desk.goto("/staff/policies/xiaowei-fangzu-butie")
    text = desk.locator("main").inner_text()
    assert "Dry run over the register today" in text and "Rent paid last year" in text
    shot(desk, "staff-policy-en-desktop")
    assert a11y.problems(desk) == []
