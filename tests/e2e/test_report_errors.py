"""The report form's errors in a real browser on a phone: said in words beside the field, checked before
sending where the browser can (photo size, the city's coverage, the category's questions), and a form the
server refuses keeps the photo the citizen chose."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e import a11y
from tests.e2e.conftest import PHONE, shot
from tests.e2e.test_loop import _drop_pin

pytestmark = pytest.mark.e2e


def _jpeg(tmp_path: Path, name: str) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 110, 140)).save(buffer, "JPEG", quality=85)
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return path


def test_the_form_says_what_is_wrong_beside_each_field(pages: Any, tmp_path: Path) -> None:
    pages.allow_error("status of 400 (Bad Request)")  # the refused form, sent in the background, is expected
    page = pages.open("zh-CN", viewport=PHONE, is_mobile=True, has_touch=True)
    page.goto("/report")
    page.wait_for_selector("#report-map[data-areas-loaded]")

    # Nothing chosen: stopped in the browser, a summary that links to the category.
    page.get_by_role("button", name="提交反映").click()
    summary = page.locator("#form-check")
    assert summary.is_visible() and "请选择问题类别。" in summary.inner_text()
    assert page.evaluate("document.activeElement.id") == "form-check"
    assert page.url.endswith("/report")

    # A manhole needs its question answered; the description counts its characters.
    page.fill("#category-search", "井盖")
    page.locator("label.choice:visible", has=page.locator("input[name=service_code]")).first.click()
    page.fill("#description", "井盖没了")
    assert page.locator("#description-counter").inner_text() == "已输入 4 / 4000 字"
    page.get_by_role("button", name="提交反映").click()
    assert "请填写“井盖情况”。" in page.locator("#form-check").inner_text()
    page.select_option("#attr-manhole-cover_state", "missing")

    # A photo larger than the city takes is refused at once, before any upload.
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * (11 * 1024 * 1024))
    page.set_input_files("#photo-file", str(big))
    assert "超过上限 10 MB" in page.locator("#check-photo-file").inner_text()
    assert page.evaluate("document.getElementById('photo-file').files.length") == 0

    # A pin outside the city's districts is said beside the map.
    page.evaluate("""() => { const lat = document.getElementById('lat'), lon = document.getElementById('long');
        lat.value = '39.9'; lon.value = '116.4'; lat.dispatchEvent(new Event('change', {bubbles: true})); }""")
    assert "该位置不在长沙市范围内" in page.locator("#where-check").inner_text()
    _drop_pin(page, 28.19567, 112.97170)
    assert page.locator("#where-check").is_hidden()

    # The server refuses the e-mail address; the chosen photo is still chosen afterwards.
    page.set_input_files("#photo-file", str(_jpeg(tmp_path, "manhole.jpg")))
    page.fill("#email", "me at example")
    page.get_by_role("button", name="提交反映").click()
    page.wait_for_selector("#error-email")
    assert "请检查电子邮箱" in page.locator("#error-email").inner_text()
    assert page.locator("#email").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.getElementById('photo-file').files.length") == 1
    assert "address_string" not in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(page, "report-errors-zh-phone")
    assert a11y.problems(page) == []
    page.fill("#email", "me@example.com")
    page.get_by_role("button", name="提交反映").click()
    page.wait_for_url(re.compile(r"/track/[^/?]+\?new=(case|merged)"))
    assert page.locator("ul.photos img").count() >= 1
