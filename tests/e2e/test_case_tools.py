"""A handler's tools on the case page, in both languages: re-files a case under the right category, resolves
it with a standard reply (stopped while a field is empty, sent once filled), merges a duplicate offered
beside the case in one click, and finds the escalated cases (催办) in the inbox, counted in the menu."""

from __future__ import annotations

import io
import random
import re
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e import a11y
from tests.e2e.conftest import shot
from wecity.demo.changsha import DEMO_PASSWORD

TEXT = {
    "zh-CN": {"log_in": "登录", "acknowledge": "签收", "recategorise": "更改类别", "category": "占道经营",
              "template": "通用办结回复", "fields": ("处置措施", "完成时间"), "resolve": "办结",
              "unfilled": "请填写回复中的所有字段", "resolved": "已办结", "merged": "已并单",
              "where": (28.2050, 112.9900), "escalated": "催办", "unmerge": "撤销并单（不是同一问题）",
              "why": "两处垃圾不是同一堆", "acknowledged": "已签收", "dispatched": "已派遣"},
    "en-US": {"log_in": "Log in", "acknowledge": "Acknowledge", "recategorise": "Change the category",
              "category": "Street vending on the road", "template": "General resolution",
              "fields": ("measures", "finished at"), "resolve": "Resolve", "unfilled": "Fill in every field of the reply",
              "resolved": "Resolved", "merged": "Merged", "where": (28.1700, 112.9900), "escalated": "Escalated",
              "unmerge": "Take out of the merge (not the same problem)", "why": "Two different piles",
              "acknowledged": "Acknowledged", "dispatched": "Dispatched"},
}


def _noise(seed: int) -> bytes:
    """A photo of its own: random blocks, so no two reports' photos look alike to the duplicate finder."""
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 48))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(64 * 48)])
    buffer = io.BytesIO()
    image.resize((640, 480), Image.NEAREST).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _report(base: str, lat: float, lon: float, description: str, seed: int) -> int:
    """A citizen's report through the portal's form; the number of the case it opened."""
    with httpx.Client(base_url=base, headers={"Accept-Language": "zh-CN"}) as client:
        token = re.search(r'name="csrf_token" value="([0-9a-f]{64})"', client.get("/report").text)
        assert token
        sent = client.post("/report", data={"csrf_token": token.group(1), "service_code": "garbage",
                                            "lat": str(lat), "long": str(lon), "description": description},
                           files=[("photo", ("p.jpg", _noise(seed), "image/jpeg"))], follow_redirects=True)
        number = re.search(r'id="case-number"[^>]*>\s*(\d+)', sent.text)
        assert number, sent.text[:2000]
        return int(number.group(1))


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_handler_refiles_replies_merges_and_reads_the_inbox(pages: Any, locale: str) -> None:
    t = TEXT[locale]
    tag = "zh" if locale == "zh-CN" else "en"
    lat, lon = t["where"]
    older = _report(pages.base, lat, lon, "桥下垃圾堆积，散发臭味", seed=1 + len(tag))
    newer = _report(pages.base, lat + 0.0011, lon, "垃圾没人清理，好几天了", seed=11 + len(tag))  # ~120 m north
    misfiled = _report(pages.base, lat - 0.01, lon, "流动摊贩占了人行道", seed=21 + len(tag))

    handler = pages.open(locale)
    handler.goto("/login")
    handler.fill("#username", "chengguan")
    handler.fill("#password", DEMO_PASSWORD)
    handler.get_by_role("button", name=t["log_in"], exact=True).click()
    handler.wait_for_url("**/staff")

    # 1. A street vendor filed as rubbish: the handler files it under the right category.
    handler.goto(f"/staff/cases/{misfiled}")
    form = handler.locator("form[data-action=recategorise]")
    form.locator("select[name=category_code]").select_option(label=t["category"])
    form.get_by_role("button", name=t["recategorise"]).click()
    handler.wait_for_url("**?done=recategorise")
    assert t["category"] in handler.locator("h1").inner_text()

    # 2. Acknowledges it and resolves it with a standard reply: with a field empty the page stops it.
    handler.get_by_role("button", name=t["acknowledge"], exact=True).click()
    handler.wait_for_url("**?done=acknowledge")
    handler.locator("#template-resolve").select_option(label=t["template"])
    handler.wait_for_url(re.compile(r"resolve_template=\d+"))
    form = handler.locator("form[data-action=resolve]")
    first, second = t["fields"]
    form.locator(f"input[data-field='{first}']").fill("已清理占道摊点" if tag == "zh" else "Moved the stalls on")
    form.locator("input[type=file]").set_input_files(files=[
        {"name": "after-1.jpg", "mimeType": "image/jpeg", "buffer": _noise(31)},
        {"name": "after-2.jpg", "mimeType": "image/jpeg", "buffer": _noise(32)}])
    form.get_by_role("button", name=t["resolve"], exact=True).click()
    error = form.locator(".reply-error")
    error.wait_for(state="visible")
    assert t["unfilled"] in error.inner_text() and second in error.inner_text()
    assert "done=" not in handler.url and handler.locator("#case-status").inner_text() != t["resolved"]
    assert form.locator(f"input[data-field='{second}']").evaluate("e => e === document.activeElement")
    shot(handler, f"tools-{tag}-1-reply-field-empty")
    form.locator(f"input[data-field='{second}']").fill("今天 15:00" if tag == "zh" else "today 3 pm")
    assert ("今天 15:00" if tag == "zh" else "today 3 pm") in form.locator(".reply-preview").inner_text()
    form.get_by_role("button", name=t["resolve"], exact=True).click()
    handler.wait_for_url("**?done=resolve")
    assert handler.locator("#case-status").inner_text() == t["resolved"]
    assert handler.locator("img[data-evidence]").count() == 2
    timeline = handler.locator("main").inner_text()
    assert ("已清理占道摊点" if tag == "zh" else "Moved the stalls on") in timeline
    shot(handler, f"tools-{tag}-2-resolved-with-reply")
    assert a11y.problems(handler) == []

    # 3. The newer rubbish report is offered the older one beside it, with its photo: merged in one click.
    handler.goto(f"/staff/cases/{newer}")
    row = handler.locator(f"tr[data-candidate='{older}']")
    assert row.locator("img.thumb").count() == 1
    shot(handler, f"tools-{tag}-3-merge-candidates")
    assert a11y.problems(handler) == []
    row.locator("button.merge-candidate").click()
    # The runner's duplicate finder may have proposed the pair by the time the page was drawn: the row then
    # merges through the proposal (done=merge-proposal), otherwise as a nearby case (done=merge).
    handler.wait_for_url(re.compile(rf"/staff/cases/{older}\?done=merge(-proposal)?$"))
    handler.goto(f"/staff/cases/{newer}")
    assert handler.locator("#case-status").inner_text() == t["merged"]

    # 4. It was not the same pile after all: the handler takes it out of the merge, saying why.
    form = handler.locator("form[data-action=unmerge]")
    form.locator("[name=note]").fill(t["why"])
    shot(handler, f"tools-{tag}-4-unmerge")
    form.get_by_role("button", name=t["unmerge"]).click()
    handler.wait_for_url(f"**/staff/cases/{newer}?done=unmerge")
    assert handler.locator("#case-status").inner_text() in (t["dispatched"], t["acknowledged"])
    assert handler.locator("form[data-action=unmerge]").count() == 0
    assert t["why"] not in handler.locator("#case-status").inner_text()

    # 5. The inbox holds the department's escalated cases, and the menu says how many wait.
    handler.goto("/staff/inbox")
    escalated = handler.locator("#escalated .case-card")
    assert escalated.count() >= 1
    assert t["escalated"] in escalated.first.inner_text()
    count = handler.locator(".main-nav .nav-count")
    assert int(count.get_attribute("data-count") or 0) >= escalated.count()
    shot(handler, f"tools-{tag}-5-inbox")
    assert a11y.problems(handler) == []
