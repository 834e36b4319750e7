"""Category suggestion in a real browser: a citizen describes the problem in their own words and the report
form proposes the likeliest categories (the demo's model, trained on its history); a tap chooses one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("locale", "words", "expected"), [
    ("zh-CN", "我家楼下的路灯好几天晚上都不亮了", "路灯故障"),
    ("en", "路面有个大坑，电动车差点摔倒", "Pothole"),
])
def test_the_report_form_suggests_categories_while_typing(pages: Any, locale: str, words: str, expected: str) -> None:
    page = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/report")
    page.fill("#description", words)
    chips = page.locator("#description-suggestions .chip")
    chips.first.wait_for(timeout=10_000)
    assert chips.count() == 3
    assert expected in chips.first.inner_text()
    shot(page, f"report-suggestions-{locale}-phone")
    chips.first.click()
    chosen = page.locator("input[name=service_code]:checked")
    assert chosen.count() == 1 and expected in chosen.locator("xpath=..").inner_text()
    # The category search box suggests too, and a tap shows the category even when the words filter it out.
    page.fill("#category-search", words)
    page.locator("#category-suggestions .chip").first.wait_for(timeout=10_000)
    page.locator("#category-suggestions .chip").first.click()
    assert page.locator("input[name=service_code]:checked").is_visible()
    assert a11y.problems(page) == []
