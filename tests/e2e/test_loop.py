"""The whole co-governance loop in a real browser, as new users would walk it, in both languages:
a citizen reports with a photo and a map pin, a handler acknowledges and resolves with evidence, the
dispatcher verifies and closes, the citizen sees it closed and rates it, and the operations page counts it."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot
from wecity.demo.changsha import DEMO_PASSWORD

pytestmark = pytest.mark.e2e

TEXT = {
    "zh-CN": {"search": "垃圾", "category": "垃圾堆积", "handler": "chengguan", "where": (28.19567, 112.97170),
              "district": "芙蓉区", "received": "您的反映已受理", "acknowledge": "签收", "resolve": "办结",
              "verify": "核查通过", "close": "结案", "closed": "已结案", "closed_citizen": "已解决", "send_rating": "提交评价",
              "rated": "感谢您的评价。", "log_in": "登录", "log_out": "退出登录", "none_nearby": "附近没有正在办理的同类案件。",
              "already": "附近已经有人反映了吗？", "send": "提交反映", "pin_centre": "在地图中心放置标记"},
    "en": {"search": "pothole", "category": "Pothole or damaged road", "handler": "zhujian", "where": (28.18800, 112.93800),
           "district": "Yuelu District", "received": "Your report was received", "acknowledge": "Acknowledge",
           "resolve": "Resolve", "verify": "Verify: it is fixed", "close": "Close the case", "closed": "Closed", "closed_citizen": "Fixed",
           "send_rating": "Send rating", "rated": "Thank you for your rating.", "log_in": "Log in", "log_out": "Log out",
           "none_nearby": "No open case of this kind nearby.", "already": "Already reported nearby?",
           "send": "Send the report", "pin_centre": "Put the pin at the map centre"},
}


def _photo(tmp_path: Path, name: str, colour: tuple[int, int, int]) -> Path:
    path = tmp_path / name
    image = Image.new("RGB", (640, 480), colour)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    path.write_bytes(buffer.getvalue())
    return path


def _drop_pin(page: Any, lat: float, lon: float) -> None:
    """Tap the report map where the problem is, as a person would."""
    page.wait_for_selector("#report-map[data-areas-loaded]")
    page.locator("#report-map").scroll_into_view_if_needed()
    page.evaluate(f"document.getElementById('report-map').wecityMap.setView([{lat}, {lon}], 16, {{animate: false}})")
    point = page.evaluate(f"""() => {{ const m = document.getElementById('report-map').wecityMap;
        const p = m.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }}""")
    page.locator("#report-map").click(position={"x": point[0], "y": point[1]})
    page.wait_for_selector("#report-map[data-pinned]", state="attached")
    placed = page.evaluate("[document.getElementById('lat').value, document.getElementById('long').value]")
    assert abs(float(placed[0]) - lat) < 0.0002 and abs(float(placed[1]) - lon) < 0.0002, placed


def _log_in(page: Any, username: str, t: dict[str, Any]) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name=t["log_in"], exact=True).click()
    page.wait_for_url("**/staff")


def _log_out(page: Any, t: dict[str, Any]) -> None:
    page.get_by_role("button", name=t["log_out"]).click()
    page.wait_for_url("**/")


def _kpi(page: Any, name: str) -> str:
    return str(page.locator(f"#kpi-{name}").inner_text())


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_the_whole_loop(pages: Any, tmp_path: Path, locale: str) -> None:
    t = TEXT[locale]
    tag = "zh" if locale == "zh-CN" else "en"

    # The supervisor notes today's figures first (the demo city may already have history).
    office = pages.open(locale)
    _log_in(office, "supervisor", t)
    office.goto("/ops")
    received_before = int(_kpi(office, "received-today"))
    _log_out(office, t)

    # 1. A citizen on a phone reports a problem with a photo and a pin on the map.
    citizen = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    citizen.goto("/")
    citizen.goto("/report")
    assert a11y.problems(citizen) == []
    citizen.fill("#category-search", t["search"])
    visible = citizen.locator("label.choice:visible", has=citizen.locator("input[name=service_code]"))
    assert visible.count() == 1, "the search narrows the list to the one matching category"
    visible.first.click()
    lat, lon = t["where"]
    _drop_pin(citizen, lat, lon)
    citizen.wait_for_selector("#nearby p, #nearby .nearby-cases")
    assert t["none_nearby"] in citizen.locator("#nearby").inner_text()
    citizen.set_input_files("#photo-file", str(_photo(tmp_path, "before.jpg", (150, 110, 60))))
    assert citizen.locator("img.preview:visible").count() == 1, "the chosen photo is shown before sending"
    citizen.fill("#description", "路口垃圾堆了三天，气味很大" if tag == "zh" else "A deep pothole in the right lane")
    citizen.fill("#phone", "13912345678")
    assert citizen.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(citizen, f"loop-{tag}-1-report-phone")
    citizen.get_by_role("button", name=t["send"]).click()
    citizen.wait_for_url(re.compile(r"/track/[^/?]+\?new=case"))
    assert t["received"] in citizen.locator("[role=status]").first.inner_text()
    code = citizen.locator("#tracking-code").inner_text().strip()
    case_id = citizen.locator("#case-number").inner_text().strip()
    assert t["district"] in citizen.locator("main").inner_text()
    assert citizen.locator("ul.photos img").count() == 1
    shot(citizen, f"loop-{tag}-2-tracking-phone")
    assert a11y.problems(citizen) == []

    # A second person about to report the same thing nearby is shown the open case first.
    neighbour = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    neighbour.goto("/report")
    neighbour.fill("#category-search", t["search"])
    neighbour.locator("label.choice:visible").first.click()
    _drop_pin(neighbour, lat + 0.0003, lon)
    neighbour.wait_for_selector("#nearby .nearby-cases")
    assert t["already"] in neighbour.locator("#nearby").inner_text()
    shot(neighbour, f"loop-{tag}-3-already-reported-phone", full_page=False)

    # 2. The department's handler acknowledges and resolves it with an evidence photo.
    handler = pages.open(locale)
    _log_in(handler, t["handler"], t)
    handler.goto("/staff/queue")
    card = handler.locator(".case-card", has=handler.locator(f"a[href='/staff/cases/{case_id}']"))
    assert t["category"] in card.inner_text()
    assert card.locator(".countdown").count() == 1
    shot(handler, f"loop-{tag}-4-queue")
    card.locator("a.case-link").click()
    handler.wait_for_url(re.compile(r"/staff/cases/\d+$"))
    assert "139****5678" in handler.locator("main").inner_text()
    handler.wait_for_selector("#case-map .leaflet-marker-icon")
    assert a11y.problems(handler) == []
    handler.get_by_role("button", name=t["acknowledge"], exact=True).click()
    handler.wait_for_url("**?done=acknowledge")
    form = handler.locator("form[data-action=resolve]")
    form.locator("textarea").fill("已清运并消毒" if tag == "zh" else "Filled and resurfaced")
    form.locator("input[type=file]").set_input_files(str(_photo(tmp_path, "after.jpg", (60, 140, 70))))
    form.get_by_role("button", name=t["resolve"], exact=True).click()
    handler.wait_for_url("**?done=resolve")
    shot(handler, f"loop-{tag}-5-case-resolved")
    _log_out(handler, t)

    # 3. The dispatch centre verifies the fix and closes the case.
    dispatcher = pages.open(locale)
    _log_in(dispatcher, "dispatcher", t)
    dispatcher.goto("/staff/dispatch")
    shot(dispatcher, f"loop-{tag}-6a-dispatch-centre")
    assert a11y.problems(dispatcher) == []
    dispatcher.locator(f"a.case-link[href='/staff/cases/{case_id}']").click()
    dispatcher.get_by_role("button", name=t["verify"], exact=True).click()
    dispatcher.wait_for_url("**?done=verify")
    dispatcher.get_by_role("button", name=t["close"], exact=True).click()
    dispatcher.wait_for_url("**?done=close")
    assert dispatcher.locator("#case-status").inner_text() == t["closed"]
    shot(dispatcher, f"loop-{tag}-6-case-closed")

    # 4. The citizen sees it closed, with the evidence photo, and rates it.
    citizen.goto(f"/track/{code}")
    assert citizen.locator("#case-status").inner_text() == t["closed_citizen"]  # the citizen's plain word
    assert citizen.locator("ul.photos img").count() == 2
    citizen.locator("fieldset.stars label.choice").first.click()  # five stars
    citizen.locator("input[name=tags][value=fast]").check()
    citizen.get_by_role("button", name=t["send_rating"]).click()
    citizen.wait_for_url("**?new=rated")
    assert t["rated"] in citizen.locator("main").inner_text()
    assert "5" in citizen.locator("#your-rating").inner_text()
    shot(citizen, f"loop-{tag}-7-rated-phone")

    # 5. The operations page counts it.
    _log_in(office, "supervisor", t)
    office.goto("/ops")
    assert int(_kpi(office, "received-today")) == received_before + 1
    assert _kpi(office, "satisfaction") != "—"
    office.wait_for_selector("#trend-chart[data-chart-ready] svg")
    office.wait_for_selector("#ops-map[data-cases-loaded]")
    shot(office, f"loop-{tag}-8-operations")
    assert a11y.problems(office) == []

    # 6. The sensors page draws the city's sensor entities (none in this city yet) and passes the same checks.
    office.goto("/ops/sensors")
    office.wait_for_selector("#sensor-map[data-sensors-loaded]")
    shot(office, f"loop-{tag}-9-sensors")
    assert a11y.problems(office) == []
