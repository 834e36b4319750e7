""""My reports" in a real browser: the SMS code comes through the outbox (in the demo, where no SMS gateway
is configured, the server's log shows it masked; the test reads it from the outbox) and unlocks the list of
the citizen's reports."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, SERVER_LOG, shot

pytestmark = pytest.mark.e2e


def _sms_code(phone: str, timeout: float = 30) -> str:
    """The code from the SMS in the demo's outbox: with no SMS gateway the log shows it masked, as it must."""
    database = SERVER_LOG["path"].parent / "demo.db"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
            rows = conn.execute("SELECT payload FROM outbox_messages WHERE channel = 'webhook' AND target = 'sms' "
                                "ORDER BY id DESC").fetchall()
        for (payload,) in rows:
            message = json.loads(payload)
            found = re.search(r"验证码是 (\d{6})", message.get("text", ""))
            if message.get("event") == "portal_code" and message.get("phone") == phone and found:
                assert found.group(1) not in SERVER_LOG["path"].read_text(errors="replace")
                return found.group(1)
        time.sleep(0.5)
    raise AssertionError("no SMS with a code in the outbox")


def test_a_citizen_lists_their_reports_with_an_sms_code(pages: Any) -> None:
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
    page.fill("#my-code", _sms_code(phone))
    page.get_by_role("button", name="查看我的反映").click()
    page.wait_for_url("**/my")
    assert page.locator(f"a[href='/track/{code_on_page}']").count() == 1
    assert "137****1234" in page.locator("main").inner_text()
    shot(page, "my-reports-zh-phone")
    assert a11y.problems(page) == []
