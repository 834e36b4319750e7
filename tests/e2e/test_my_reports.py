""""My reports" in a real browser: the SMS code comes through the outbox (in the demo, where no SMS gateway
is configured, the server's log shows it masked; the test reads it from the outbox) and unlocks the list of
the citizen's reports."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot, sms_code

pytestmark = pytest.mark.e2e


def test_a_citizen_lists_their_reports_with_ansms_code(pages: Any) -> None:
    phone = "13700001234"
    page = pages.open("zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/report")
    page.locator("label.choice", has_text="噪音扰民").click()
    page.fill("#address", "芙蓉区五一大道 100 号")
    page.fill("#phone", phone)
    page.get_by_role("button", name="提交反映").click()
    page.wait_for_url(re.compile(r"/track/"))
    code_on_page = page.locator("#tracking-code").inner_text().strip()

    page.goto("/my")
    page.fill("#my-phone", phone)
    page.get_by_role("button", name="获取验证码").click()
    page.wait_for_selector("#my-code")
    page.fill("#my-code", sms_code(phone))
    page.get_by_role("button", name="查看我的反映").click()
    page.wait_for_url("**/my")
    assert page.locator(f"a[href='/track/{code_on_page}']").count() == 1
    assert "137****1234" in page.locator("main").inner_text()
    shot(page, "my-reports-zh-phone")
    assert a11y.problems(page) == []
