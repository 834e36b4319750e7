"""市民催办 in a real browser, in both languages: a reporter whose case has waited for days presses 催办 on the
tracking page, is told the department was asked to hurry and from when they may press again, sees the step
on the timeline, and the department's handler finds the case under "urged by the reporter" in the inbox."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, SERVER_LOG, shot
from wecity.demo.changsha import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

TEXT = {
    "zh-CN": {"urge": "催办", "urged": "已催办承办部门及其负责人", "later": "之后催办", "step": "市民催办",
              "log_in": "登录", "badge": "市民催办 ×1"},
    "en": {"urge": "Please hurry (催办)", "urged": "The department and its supervisors were asked to hurry",
           "later": "You can ask for it to be hurried from", "step": "A citizen asked for it to be hurried",
           "log_in": "Log in", "badge": "Urged by citizens ×1"},
}


def _waiting_cases() -> list[tuple[str, int, str]]:
    """Tracking codes of demo cases a department has held for more than a day, never urged: (code, case,
    the department's code, which is its handler's user name in the demo). Only departments with such a
    handler: the demo's other departments (an enterprise 诉求's, say) have no user of their code's name."""
    database = SERVER_LOG["path"].parent / "demo.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT r.token, c.id, d.code FROM reports r JOIN cases c ON c.id = r.case_id "
            "JOIN departments d ON d.id = c.department_id JOIN users u ON u.username = d.code "
            "WHERE c.status IN ('acknowledged', 'in_progress') AND c.urge_count = 0 "
            "AND c.created_at < datetime('now', '-2 days') ORDER BY c.id").fetchall()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_a_reporter_urges_a_waiting_case_and_the_handler_finds_it_in_the_inbox(pages: Any, locale: str) -> None:
    t = TEXT[locale]
    tag = "zh" if locale == "zh-CN" else "en"
    waiting = _waiting_cases()
    assert len(waiting) >= 2, "the demo history leaves cases in progress for days"
    token, case_id, department = waiting[0 if tag == "zh" else 1]

    citizen = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    citizen.goto(f"/track/{token}")
    citizen.get_by_role("button", name=t["urge"], exact=True).click()
    citizen.wait_for_url("**?new=urged")
    assert t["urged"] in citizen.locator("#urged").inner_text()
    assert t["later"] in citizen.locator("#urge-later").inner_text()
    assert citizen.get_by_role("button", name=t["urge"], exact=True).count() == 0  # once a day
    assert t["step"] in citizen.locator("main").inner_text()
    shot(citizen, f"urge-{tag}-1-tracking-page")
    assert a11y.problems(citizen) == []

    handler = pages.open(locale)
    handler.goto("/login")
    handler.fill("#username", department)
    handler.fill("#password", DEMO_PASSWORD)
    handler.get_by_role("button", name=t["log_in"], exact=True).click()
    handler.wait_for_url("**/staff")
    handler.goto("/staff/inbox")
    card = handler.locator(f"#urged .case-card:has(a[href='/staff/cases/{case_id}'])")
    assert card.count() == 1 and t["badge"] in card.inner_text()
    shot(handler, f"urge-{tag}-2-inbox", full_page=False)
    assert a11y.problems(handler) == []
