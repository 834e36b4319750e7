"""The portal shell in a real browser: both languages, a phone, the map, staff login, accessibility."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot
from wecity.demo.changsha import DEMO_PASSWORD

pytestmark = pytest.mark.e2e


def test_home_in_chinese_is_accessible_and_keyboard_reaches_the_main_actions(pages: Any) -> None:
    page = pages.open("zh-CN")
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "城市里有问题？告诉我们。"
    shot(page, "home-zh-desktop")
    assert a11y.problems(page) == []
    order = a11y.tab_order(page, 25)
    assert order[0].startswith("a|跳到主要内容|#main"), order[:3]
    reached = " ".join(order)
    assert "/login" in reached and "/map" in reached, order


def test_skip_link_moves_focus_to_the_main_content(pages: Any) -> None:
    page = pages.open("en")
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    assert a11y.focus_is_visible(page)
    box = page.locator(".skip-link").bounding_box()
    assert box is not None and box["y"] >= 0, "the skip link shows when focused"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert a11y.focus_is_visible(page)


def test_home_in_english_fits_a_phone(pages: Any) -> None:
    page = pages.open("en", viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "Something wrong in the city? Tell us."
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # The menu folds behind one button, so nothing runs off the side; opened, every link is a full row
    # at least 44 px high, still inside the screen's width.
    toggle = page.locator(".menu-toggle")
    assert toggle.is_visible() and not page.locator(".main-nav a").first.is_visible()
    shot(page, "home-en-phone")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    for link in page.locator(".main-nav a").all():
        box = link.bounding_box()
        assert box and box["height"] >= 44 and box["x"] + box["width"] <= PHONE["width"], link.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "home-en-phone-menu")
    page.keyboard.press("Escape")
    assert toggle.get_attribute("aria-expanded") == "false"
    assert a11y.problems(page) == []


def test_language_switch_is_remembered(pages: Any) -> None:
    page = pages.open("zh-CN")
    page.goto("/map")
    page.get_by_role("link", name="English").click()
    page.wait_for_url("**/map")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "City map"
    page.goto("/")
    assert page.locator("h1").inner_text() == "Something wrong in the city? Tell us."
    page.get_by_role("link", name="简体中文").click()
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == "城市里有问题？告诉我们。"


@pytest.mark.parametrize("locale,viewport,name", [("zh-CN", None, "map-zh-desktop"), ("en", PHONE, "map-en-phone")])
def test_city_map_draws_the_districts_without_tiles(pages: Any, locale: str, viewport: Any, name: str) -> None:
    page = pages.open(locale, viewport=viewport)
    page.goto("/map")
    page.wait_for_selector("#city-map[data-areas-loaded]")
    assert page.get_attribute("#city-map", "data-areas-loaded") == "9"
    assert page.locator("#city-map path.leaflet-interactive").count() >= 9
    assert page.locator("#city-map .leaflet-tile").count() == 0
    # Names sit on the districts wide enough for them on this screen: on a phone, the big outer ones.
    label = "岳麓区" if locale == "zh-CN" else "Liuyang City"
    assert page.locator(".area-label", has_text=label).count() == 1
    if viewport:
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    # A full-page screenshot resizes a phone's viewport while it is taken, which redraws Leaflet
    # mid-shot; the visible screen is what a person sees anyway.
    shot(page, name, full_page=viewport is None)
    assert a11y.problems(page) == []


def test_staff_login_by_keyboard_and_logout(pages: Any) -> None:
    page = pages.open("zh-CN")
    pages.allow_error("status of 401 (Unauthorized)")  # the wrong password below, on purpose
    page.goto("/login")
    shot(page, "login-zh")
    assert a11y.problems(page) == []
    # The username field has focus on arrival; everything else is reachable with Tab.
    assert page.evaluate("document.activeElement.id") == "username"
    page.keyboard.type("chengguan-lead")
    page.keyboard.press("Tab")
    page.keyboard.type("wrong-password")
    page.keyboard.press("Enter")
    page.wait_for_selector("[role=alert]")
    assert page.locator("[role=alert]").inner_text() == "用户名或密码错误。"
    assert page.input_value("#username") == "chengguan-lead"
    shot(page, "login-zh-error")
    assert page.evaluate("document.activeElement.id") == "password"
    page.keyboard.type(DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/staff")
    assert page.locator("#department").inner_text() == "市城市管理和综合执法局"
    assert "处置人员" in page.locator("#roles").inner_text() and "督办" in page.locator("#roles").inner_text()
    shot(page, "staff-desk-zh")
    assert a11y.problems(page) == []
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["wecity_session"]["httpOnly"] and cookies["wecity_session"]["sameSite"] == "Lax"
    page.get_by_role("button", name="退出登录").click()
    page.wait_for_url("**/")
    assert "wecity_session" not in {c["name"] for c in page.context.cookies()}
    page.goto("/staff")
    page.wait_for_url("**/login?next=%2Fstaff")


def test_staff_desk_in_english_on_a_phone(pages: Any) -> None:
    page = pages.open("en", viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/login")
    page.fill("#username", "dispatcher")
    page.fill("#password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/staff")
    assert page.locator("#department").inner_text().startswith("12345 Hotline")
    assert "Dispatcher" in page.locator("#roles").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "staff-desk-en-phone")
    assert a11y.problems(page) == []


def test_no_page_refers_to_another_origin(pages: Any) -> None:
    page = pages.open("en")
    for path in ("/", "/map", "/login", "/report", "/track", "/my"):
        page.goto(path)
        page.wait_for_load_state("networkidle")
        urls = page.evaluate("""() => Array.from(document.querySelectorAll('[src],[href],[action]'))
            .map(e => e.getAttribute('src') || e.getAttribute('href') || e.getAttribute('action'))""")
        outside = [u for u in urls if u.startswith(("http:", "https:", "//")) and not u.startswith(pages.base)]
        assert outside == [], (path, outside)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("path", ["/report", "/track", "/my"])
def test_citizen_pages_are_accessible_and_fit_a_phone(pages: Any, locale: str, path: str) -> None:
    page = pages.open(locale, viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto(path)
    page.wait_for_load_state("networkidle")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert a11y.problems(page) == []


def test_report_form_works_from_the_keyboard(pages: Any) -> None:
    page = pages.open("en")
    page.goto("/report")
    page.wait_for_selector("#report-map[data-areas-loaded]")
    order = " ".join(a11y.tab_order(page, 40))
    for reached in ("input|category-search", "Put the pin at the map centre", "Send the report"):
        assert reached in order, reached
    # Radio buttons of a group are reached with Tab and chosen with the arrow keys, as usual.
    page.focus("input[name=service_code][value=manhole]")
    page.keyboard.press("Space")
    assert page.is_checked("input[name=service_code][value=manhole]")
    assert page.is_visible("#attr-manhole-cover_state")
    page.get_by_role("button", name="Put the pin at the map centre").press("Enter")
    assert page.get_attribute("#report-map", "data-pinned") == "true"


def test_the_queue_shows_new_cases_without_a_reload(pages: Any) -> None:
    from tests.e2e.test_loop import TEXT, _drop_pin, _log_in

    t = TEXT["zh-CN"]
    handler = pages.open("zh-CN")
    handler.clock.install()
    _log_in(handler, "chengguan", t)
    handler.goto("/staff/queue")
    before = handler.locator(".case-card").count()

    citizen = pages.open("zh-CN")
    citizen.goto("/report")
    citizen.locator("label.choice", has_text="路灯故障").click()
    _drop_pin(citizen, 28.2282, 112.9388)
    citizen.get_by_role("button", name="提交反映").click()
    citizen.wait_for_url("**/track/**")
    case_id = citizen.locator("#case-number").inner_text().strip()

    assert handler.locator(f"a[href='/staff/cases/{case_id}']").count() == 0
    handler.clock.run_for("01:05")  # a minute later: htmx fetches the list again
    handler.wait_for_selector(f"a[href='/staff/cases/{case_id}']")
    assert handler.locator(".case-card").count() == before + 1
    assert handler.locator(f".case-card:has(a[href='/staff/cases/{case_id}']) .countdown").inner_text().startswith("剩余")


def test_api_docs_render_swagger_ui_from_the_platform(pages: Any) -> None:
    page = pages.open("en")
    page.goto("/docs")
    page.wait_for_selector(".opblock-tag", timeout=20000)  # Swagger UI started (the CSP let its scripts run)
    # Every domain's tag is listed (folded); opening one shows its operations.
    tags = [t.strip() for t in page.locator(".opblock-tag").all_inner_texts()]
    assert {"ngsi-ld", "cases", "open311", "services", "departments"} <= {t.split("\n")[0] for t in tags}, tags
    page.locator(".opblock-tag", has_text="open311").first.click()
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() >= 5
    assert "WeCity API" in page.locator(".title").first.inner_text()
    shot(page, "api-docs-en", full_page=False)
