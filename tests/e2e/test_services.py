"""The service loop (一网通办) in a real browser, end to end, on the demo city.

李明 signs in with his phone and applies for public rental housing (公共租赁住房申请): his spouse's name and
ID number are filled in from the marriage certificate in his wallet. The housing security centre accepts;
the civil affairs bureau asks for a better income proof (补正), the two other reviewing departments agree;
the application waits with him and the clock pauses. A browser cannot wait a week, so the test moves the
start of that pause back seven days in the demo's database, as if he had taken a week; when he uploads the
proof and sends it, the due date moves on by exactly the working days of that week. All three departments
agree in the second round, the centre's head approves, the certificate is issued, the public page says it is
genuine; the centre revokes it and the page says so; he rates the service 不满意 and a rectification task
appears on the centre's queue.
"""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, SERVER_LOG, shot, sms_code
from wecity.core.worktime import WorkCalendar, calendar_rows, packaged_calendar
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.govservice.clock import working_days_between

pytestmark = pytest.mark.e2e

MATTER = "CS-ZFBZ-001"
CITIZEN_PHONE = "13900000001"  # 李明 in the demo's registers, married to 王芳 (wecity.demo.services)


def _scan(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    buffer = io.BytesIO()
    Image.new("RGB", (800, 1100), (235, 235, 225)).save(buffer, "JPEG", quality=80)
    path.write_bytes(buffer.getvalue())
    return path


def _log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="登录", exact=True).click()
    page.wait_for_url("**/staff")


def _staff_page(pages: Any, username: str) -> Any:
    page = pages.open("zh-CN")
    _log_in(page, username)
    return page


def _act(page: Any, app_id: str, form: str, fill: dict[str, str] | None = None, check: str | None = None) -> None:
    page.goto(f"/staff/applications/{app_id}")
    scope = page.locator(form)
    for selector, value in (fill or {}).items():
        scope.locator(selector).fill(value)
    if check:
        scope.locator(check).check()
    scope.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"done="))
    assert page.locator("#action-error").count() == 0


def _database() -> Path:
    return SERVER_LOG["path"].parent / "demo.db"


def _backdate_pause(app_number: str, days: int) -> None:
    """As if the applicant had held the application `days` longer: the open pause started earlier."""
    with sqlite3.connect(_database()) as conn:
        app_id, since = conn.execute("SELECT id, paused_since FROM applications WHERE number = ?",
                                     (app_number,)).fetchone()
        # Stored as SQLAlchemy stores a UTC timestamp on SQLite: naive, space-separated, to the microsecond.
        earlier = (datetime.fromisoformat(since) - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("UPDATE applications SET paused_since = ? WHERE id = ?", (earlier, app_id))
        conn.execute("UPDATE application_pauses SET started_at = ? WHERE application_id = ? AND ended_at IS NULL",
                     (earlier, app_id))


def _calendar() -> WorkCalendar:
    rows = calendar_rows(packaged_calendar())
    return WorkCalendar(holidays=frozenset(r["day"] for r in rows if r["kind"] == "holiday"),
                        workdays=frozenset(r["day"] for r in rows if r["kind"] == "workday"))


def _due(page: Any) -> date:
    text = page.locator("#due-on").inner_text()
    return date.fromisoformat(re.search(r"\d{4}-\d{2}-\d{2}", text).group(0))  # type: ignore[union-attr]


def test_apply_supplement_parallel_review_certificate_revocation_and_rating(pages: Any, tmp_path: Path) -> None:
    citizen = pages.open("zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    citizen.goto("/services")
    citizen.fill("#svc-q", "公共租赁")
    citizen.get_by_role("button", name="搜索").click()
    citizen.locator(f"a[href='/services/matters/{MATTER}']").click()
    assert "承诺时限" in citizen.locator("main").inner_text()
    shot(citizen, "services-matter-zh-phone")
    citizen.locator("#sign-in-to-apply").click()

    # Sign in with the SMS code; the sign-in returns to the matter.
    citizen.fill("#my-phone", CITIZEN_PHONE)
    citizen.get_by_role("button", name="获取验证码").click()
    citizen.wait_for_selector("#my-code")
    citizen.fill("#my-code", sms_code(CITIZEN_PHONE))
    citizen.get_by_role("button", name="查看我的反映").click()
    citizen.wait_for_url(f"**/services/matters/{MATTER}")
    citizen.locator("#apply").click()
    citizen.wait_for_url(re.compile(r"/services/applications/\d+$"))
    app_id = citizen.url.rsplit("/", 1)[1]
    number = citizen.locator("#app-number").inner_text().strip()

    # Two fields from the marriage certificate, each saying so; the ID card is not asked for.
    for field in ("spouse_name", "spouse_id_number"):
        hint = citizen.locator(f"[data-field={field}] .prefilled").inner_text()
        assert "已从您的电子证照" in hint, hint
    assert citizen.locator("#f-spouse_name").input_value() == "王芳"
    assert citizen.locator("[data-material=id_card]").get_attribute("data-state") == "replaced"
    assert "无需上传" in citizen.locator("#spared").inner_text()
    shot(citizen, "services-application-prefilled-zh-phone")
    assert a11y.problems(citizen) == []

    citizen.select_option("#f-hukou", "local")
    citizen.select_option("#f-marital_status", "married")
    citizen.fill("#f-household_size", "3")
    citizen.fill("#f-monthly_income_per_capita", "1800")
    citizen.fill("#f-housing_area_per_capita", "9.5")
    citizen.locator("#save").click()
    citizen.wait_for_url(re.compile(r"done=save"))
    for material in ("application", "income", "housing_pledge"):
        form = citizen.locator(f"[data-material={material}] form")
        form.locator("input[type=file]").set_input_files(str(_scan(tmp_path, f"{material}.jpg")))
        form.locator("button[type=submit]").click()
        citizen.wait_for_url(re.compile(r"done=upload"))
    assert citizen.locator("#f-household_size").input_value() == "3"  # the draft kept what he typed
    citizen.locator("#submit").click()
    citizen.wait_for_url(re.compile(r"done=submit"))
    assert citizen.locator("#app-status").inner_text().strip() == "待受理"

    # The housing security centre accepts: the clock starts.
    centre = _staff_page(pages, "zhufangbaozhang")
    centre.goto("/staff/applications?queue=accept")
    assert centre.locator(f"#application-queue a[href='/staff/applications/{app_id}']").count() == 1
    _act(centre, app_id, "form[action$='/accept']")

    # Parallel review: civil affairs asks for a better income proof, the other two agree.
    civil = _staff_page(pages, "minzheng")
    _act(civil, app_id, "#supplement-form", {"#sup-note": "收入证明须加盖单位公章"}, check="input[value=income]")
    for department in ("ziranziyuan", "gongan"):
        reviewer = _staff_page(pages, department)
        _act(reviewer, app_id, "#review-form", check="input[value=approve]")
    centre.goto(f"/staff/applications/{app_id}")
    shot(centre, "services-staff-review-round-1-zh")
    assert centre.locator("#app-status").inner_text().strip() == "待补正"

    citizen.goto(f"/services/applications/{app_id}")
    assert "收入证明须加盖单位公章" in citizen.locator("#supplement-request").inner_text()
    assert citizen.locator("[data-material=income]").get_attribute("data-state") == "requested"
    due_before = _due(citizen)
    _backdate_pause(number, 7)
    citizen.reload()
    paused_from = datetime.now(UTC).astimezone(_calendar().tz).date() - timedelta(days=7)
    expected_shift = working_days_between(_calendar(), paused_from, paused_from + timedelta(days=7))
    form = citizen.locator("[data-material=income] form")
    form.locator("input[type=file]").set_input_files(str(_scan(tmp_path, "income-stamped.jpg")))
    form.locator("button[type=submit]").click()
    citizen.wait_for_url(re.compile(r"done=upload"))
    citizen.locator("#supply").click()
    citizen.wait_for_url(re.compile(r"done=supply"))
    assert expected_shift >= 4
    assert _due(citizen) == _working_days_after(due_before, expected_shift), (due_before, expected_shift)
    shot(citizen, "services-after-supplement-zh-phone")

    # Round two: all three agree; the centre's head approves and the certificate is issued.
    for department in ("minzheng", "ziranziyuan", "gongan"):
        _act(_staff_page(pages, department), app_id, "#review-form", check="input[value=approve]")
    lead = _staff_page(pages, "zhufangbaozhang-lead")
    _act(lead, app_id, "#decide-form", check="input[value=approve]")
    assert lead.locator("#app-status").inner_text().strip().startswith("已办结")

    citizen.goto(f"/services/applications/{app_id}")
    certificate = citizen.locator("#certificates strong").first.inner_text().strip()
    # The runner delivers each step's notice to his inbox, beside the SMS.
    for _ in range(30):
        citizen.goto("/services/mine")
        if "准予许可" in citizen.locator("main").inner_text() and number in citizen.locator("#my-messages").inner_text():
            break
        citizen.wait_for_timeout(1000)
    assert number in citizen.locator("#my-messages").inner_text()
    citizen.goto(f"/verify/{certificate}")
    assert citizen.locator("#verdict").get_attribute("data-status") == "valid"
    assert "真实有效" in citizen.locator("#verdict").inner_text()
    shot(citizen, "services-verify-valid-zh-phone")
    pdf = citizen.request.get(f"/api/v1/certificates/{certificate}/pdf")
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")

    # The centre revokes it; the public page says so, with the reason.
    _act(lead, app_id, "form[action$='/revoke']", {"#revoke-reason": "申请人已购买住房"})
    citizen.goto(f"/verify/{certificate}")
    assert citizen.locator("#verdict").get_attribute("data-status") == "revoked"
    assert "申请人已购买住房" in citizen.locator("#verdict").inner_text()
    shot(citizen, "services-verify-revoked-zh-phone")

    # He rates it 不满意: a rectification task appears on the centre's queue, due in 15 working days.
    citizen.goto(f"/services/applications/{app_id}")
    citizen.locator("#rating-form input[name=level][value='2']").check()
    citizen.locator("#rating-form input[name=tags][value=slow]").check()
    citizen.locator("#rating-form button[type=submit]").click()
    citizen.wait_for_url(re.compile(r"done=rate"))
    assert "部门须在" in citizen.locator("#rectification").inner_text()
    centre.goto("/staff/applications")
    assert number in centre.locator("#rectifications + ul").inner_text()
    shot(centre, "services-staff-rectification-zh")
    assert a11y.problems(centre) == []


def _working_days_after(day: date, n: int) -> date:
    from wecity.govservice.clock import add_working_days

    return add_working_days(_calendar(), day, n)
