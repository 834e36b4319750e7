"""The KPI pages in a real browser: a leader filters to one district and one week, clicks the overdue
figure, lands on the list of those cases, opens one; and exports the table as XLSX, which openpyxl opens."""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import shot
from wecity.demo.changsha import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_a_leader_drills_from_a_district_s_week_to_an_overdue_case_and_exports(pages: Any, locale: str) -> None:
    from openpyxl import load_workbook

    page = pages.open(locale)
    page.goto("/login")
    page.fill("#username", "supervisor")
    page.fill("#password", DEMO_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/staff")
    page.goto("/insight")
    assert page.locator("#insight-kpis .kpi").count() >= 10
    # The district with the most overdue cases now, from the city's table.
    rows = page.locator("#insight-breakdown tbody tr")
    overdue = [int(rows.nth(i).locator("td").last.inner_text().split()[0]) for i in range(rows.count())]
    busiest = rows.nth(overdue.index(max(overdue))).locator("th a").inner_text()
    assert max(overdue) > 0, "the demo city has overdue cases"
    # One district and one week, chosen in the filter form.
    today = date.fromisoformat(page.locator("#f-to").input_value())
    page.fill("#f-from", (today - timedelta(days=6)).isoformat())
    page.select_option("#f-district", label=busiest)
    page.locator("#insight-filters button[type=submit]").click()
    page.wait_for_url("**district=*")
    assert "from=" in page.url and "to=" in page.url  # the view can be shared as it is
    assert busiest in page.locator("#insight-trail").inner_text()
    shot(page, f"insight-district-week-{locale}")
    assert a11y.problems(page) == []
    # The overdue figure is a link to the cases behind it.
    shown = int(page.locator("#kpi-overdue").inner_text())
    assert shown > 0
    page.locator("#kpi-overdue").click()
    page.wait_for_url("**/insight/cases?**which=overdue**")
    listed = page.locator("#insight-cases tbody tr")
    assert listed.count() == shown
    assert all(busiest in listed.nth(i).inner_text() for i in range(listed.count()))
    shot(page, f"insight-overdue-list-{locale}")
    first = listed.first.locator("th a")
    case_id = first.inner_text()
    first.click()
    page.wait_for_url("**/staff/cases/*")
    assert case_id.split()[-1] in page.locator("h1").inner_text()
    # Back on the KPIs, the district's table goes out as XLSX and opens in a spreadsheet library.
    page.go_back()
    page.go_back()
    with page.expect_download() as download:
        page.locator("#export-breakdown-xlsx").click()
    book = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    sheet = book.active
    header = [c.value for c in sheet[1]]
    assert header[0] == ("代码" if locale == "zh-CN" else "code") and len(header) == 12
    assert sheet.max_row >= 2  # the district's departments


def test_an_open_case_on_the_operations_map_opens_its_case(pages: Any) -> None:
    page = pages.open("zh-CN")
    page.goto("/login")
    page.fill("#username", "supervisor")
    page.fill("#password", DEMO_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_url("**/staff")
    page.goto("/ops")
    page.wait_for_selector("[data-cases-loaded]", timeout=15_000)
    markers = page.locator("path.leaflet-interactive")
    assert markers.count() > 0
    markers.last.click(force=True)
    page.wait_for_url("**/staff/cases/*", timeout=10_000)
    assert page.locator("h1").inner_text().startswith("案件")
