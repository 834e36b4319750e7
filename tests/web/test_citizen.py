"""Citizen pages: reporting with a photo and a pin, nearby open cases, tracking, rating."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image

from tests.web.conftest import csrf_token
from wecity.cases import engine
from wecity.identity.service import authenticate

# 五一广场, 芙蓉区 (WGS-84)
LAT, LONG = 28.19567, 112.97170


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 40)).save(buffer, "JPEG")
    return buffer.getvalue()


def _report(web: Any, **fields: Any) -> Any:
    token = csrf_token(web.get("/report").text)
    data = {"csrf_token": token, "service_code": "garbage", "lat": str(LAT), "long": str(LONG),
            "description": "路口垃圾堆了三天", "phone": "13912345678", **fields}
    files = [("photo", ("p.jpg", _jpeg(), "image/jpeg"))]
    return web.post("/report", data=data, files=files, follow_redirects=False)


def _tracking_token(response: Any) -> str:
    match = re.match(r"/track/([^?]+)\?new=(case|merged)", response.headers["location"])
    assert match, response.headers.get("location")
    return match.group(1)


def test_report_form_lists_categories_grouped_with_labels(web: Any) -> None:
    html = web.get("/report").text
    assert "<legend>市政设施</legend>" in html and "井盖缺失/破损" in html
    assert 'capture="environment"' in html and '<label for="photo-file">' in html
    assert 'hx-get="/report/nearby"' in html


def test_a_report_with_photo_and_pin_gets_a_tracking_page(web: Any) -> None:
    r = _report(web)
    assert r.status_code == 303
    token = _tracking_token(r)
    page = web.get(r.headers["location"]).text
    assert token in page and "您的反映已受理" in page
    assert "垃圾堆积" in page and "市城市管理和综合执法局" in page and "芙蓉区" in page
    assert re.search(r'<img src="/media/[^"]+/thumbnail"', page)
    assert "13912345678" not in page  # personal data stays out of public pages


def test_the_same_problem_nearby_is_shown_before_sending_and_merges(web: Any) -> None:
    first = _tracking_token(_report(web))
    case_link = re.search(r"/cases/(\d+)", web.get(f"/track/{first}").text)
    fragment = web.get("/report/nearby", params={"service_code": "garbage", "lat": LAT + 0.0002, "long": LONG}).text
    assert "附近已经有人反映了吗？" in fragment and "相距 22 米" in fragment
    assert case_link and f'href="/cases/{case_link.group(1)}"' in fragment  # "follow it instead" links to it
    other = web.get("/report/nearby", params={"service_code": "noise", "lat": LAT, "long": LONG}).text
    assert "附近没有正在办理的同类案件。" in other
    second = _report(web, lat=str(LAT + 0.0002))
    assert second.headers["location"].endswith("?new=merged")
    merged_page = web.get(second.headers["location"]).text
    assert f'id="case-number">{case_link.group(1)}<' in merged_page and "您的反映已并入该案件" in merged_page


def test_report_errors_come_back_on_the_form_in_the_readers_language(web: Any) -> None:
    r = _report(web, service_code="")
    assert r.status_code == 400 and "请选择问题类别。" in r.text
    assert "路口垃圾堆了三天" in r.text  # what was typed is kept
    assert 'id="error-category"' in r.text and 'href="#step-category"' in r.text  # beside the field, linked
    outside = _report(web, lat="39.9", long="116.4")
    assert outside.status_code == 400 and "该位置不在长沙市范围内" in outside.text
    assert 'id="error-where"' in outside.text and 'aria-invalid="true" aria-describedby="error-where"' in outside.text
    web.cookies.set("lang", "en")
    en = _report(web, lat="39.9", long="116.4")
    assert "That place is outside Changsha: move the pin" in en.text


def test_report_errors_name_no_api_fields(web: Any) -> None:
    """The intake speaks to API clients ("address_string", "attribute[cover_state]"); the form does not."""
    nowhere = _report(web, lat="", long="", address="")
    assert nowhere.status_code == 400 and "请说明位置：在地图上放置标记，或填写地址、地标。" in nowhere.text
    unanswered = _report(web, service_code="manhole")
    assert unanswered.status_code == 400 and "请填写“井盖情况”。" in unanswered.text
    assert 'id="error-attr-manhole-cover_state"' in unanswered.text
    wordless = _report(web, service_code="other", description="")
    assert wordless.status_code == 400 and "请描述问题：这一类问题需要用文字说明。" in wordless.text
    for page in (nowhere, unanswered, wordless):
        assert "address_string" not in page.text and "attribute[" not in page.text.split("<form")[0]
    # The photo's field carries the photo's error.
    token = csrf_token(web.get("/report").text)
    bad = web.post("/report", data={"csrf_token": token, "service_code": "garbage", "lat": str(LAT),
                                    "long": str(LONG)}, files=[("photo", ("x.jpg", b"not a jpeg", "image/jpeg"))])
    assert bad.status_code == 400 and 'id="error-photo"' in bad.text


def test_report_refuses_a_file_that_is_not_an_image(web: Any, sqlite_city: Any) -> None:
    token = csrf_token(web.get("/report").text)
    r = web.post("/report", data={"csrf_token": token, "service_code": "garbage", "lat": str(LAT), "long": str(LONG)},
                 files=[("photo", ("x.jpg", b"not really a jpeg", "image/jpeg"))], follow_redirects=False)
    assert r.status_code == 400 and 'role="alert"' in r.text
    assert list((sqlite_city.settings.media_dir).rglob("*.*")) == []


def test_report_without_csrf_is_refused(web: Any) -> None:
    web.get("/report")
    r = web.post("/report", data={"service_code": "garbage", "lat": str(LAT), "long": str(LONG)},
                 follow_redirects=False)
    assert r.status_code == 403


def test_tracking_by_code_and_unknown_codes(web: Any) -> None:
    token = _tracking_token(_report(web))
    r = web.get("/track", params={"code": f"  {token} "}, follow_redirects=False)
    assert r.headers["location"] == f"/track/{token}"
    missing = web.get("/track/no-such-code")
    assert missing.status_code == 404 and "没有与该查询码对应的诉求" in missing.text


def resolve_case_of(city: Any, token: str, *, handler: str = "chengguan") -> int:
    """Acknowledge and resolve (with an evidence photo) the case behind a tracking code, as its handler."""
    from sqlalchemy import select

    from wecity.cases.models import reports
    from wecity.media.images import inspect_image
    from wecity.media.service import media_store, store_image

    now = city.clock.now()
    checked = inspect_image(_jpeg(), max_bytes=city.settings.max_upload_bytes, max_pixels=city.settings.max_image_pixels)

    def run(conn: Any) -> int:
        case_id = conn.execute(select(reports.c.case_id).where(reports.c.token == token)).scalar_one()
        actor = engine.Actor.staff(authenticate(conn, handler, "wecity-demo"))
        engine.acknowledge(conn, case_id, actor, now)
        evidence = store_image(conn, media_store(city.settings), checked, now=now)
        engine.resolve(conn, case_id, actor, now, note="已清运", evidence_media_id=evidence.id)
        return int(case_id)

    return int(city.db.write_sync(run))


def test_rating_after_resolution_confirms_the_fix(web_city: Any) -> None:
    web, sqlite_city = web_city
    token = _tracking_token(_report(web))
    assert 'id="rate-title"' not in web.get(f"/track/{token}").text  # nothing to rate before it is resolved
    case_id = resolve_case_of(sqlite_city, token)
    page = web.get(f"/track/{token}").text
    # Citizens read plain words for the state (已办结 is the office's word): fixed, and being checked.
    assert 'id="rate-title"' in page and "已处理，待核实" in page and "责任部门上传的处置结果照片" in page
    # A comment over the form's 1,000 characters is refused, not cut short, and the case is not rated.
    long = web.post(f"/track/{token}/rate", data={"csrf_token": csrf_token(page), "stars": "5",
                                                  "comment": "很" * 1001}, follow_redirects=False)
    assert long.status_code == 400 and "内容过长：最多 1000 字（提交了 1001 字）" in long.text
    assert 'id="rate-title"' in web.get(f"/track/{token}").text
    r = web.post(f"/track/{token}/rate", data={"csrf_token": csrf_token(page), "stars": "5",
                                               "tags": ["fast", "bogus"], "comment": "很快"}, follow_redirects=False)
    assert r.status_code == 303
    after = web.get(r.headers["location"]).text
    assert "感谢您的评价。" in after and "您的评价：5 星" in after and '<span class="badge status-verified" id="case-status">已解决</span>' in after
    again = web.post(f"/track/{token}/rate", data={"csrf_token": csrf_token(page), "stars": "4"},
                     follow_redirects=False)
    assert again.status_code == 409 and "该诉求已评价" in again.text
    public = web.get(f"/cases/{case_id}").text
    assert 'id="case-status">已解决<' in public and "13912345678" not in public and "很快" in public


def test_sending_the_same_form_twice_makes_one_report(web: Any, sqlite_city: Any) -> None:
    from sqlalchemy import func, select

    from wecity.cases.models import reports

    form = web.get("/report").text
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', form)
    assert key
    data = {"csrf_token": csrf_token(form), "idempotency_key": key.group(1), "service_code": "garbage",
            "lat": str(LAT), "long": str(LONG), "description": "双击提交"}
    first = web.post("/report", data=data, files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))], follow_redirects=False)
    second = web.post("/report", data=data, files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))], follow_redirects=False)
    assert first.headers["location"] == second.headers["location"]
    count = sqlite_city.db.read_sync(lambda c: c.execute(select(func.count()).select_from(reports)).scalar())
    assert count == 1
    changed = web.post("/report", data={**data, "description": "别的内容"}, follow_redirects=False)
    assert changed.status_code == 400 and "该表单已提交过不同的内容" in changed.text


def test_a_text_field_larger_than_a_form_is_refused_though_the_form_takes_photos(web: Any, sqlite_city: Any) -> None:
    """The report form's body may be as large as its photos; a text field in it, only as large as a form."""
    from sqlalchemy import func, select

    from wecity.cases.models import reports

    big = "x" * (sqlite_city.settings.max_form_bytes + 1)
    r = _report(web, junk=big)
    assert r.status_code == 400 and "照片过大或表单内容损坏。" in r.text
    assert sqlite_city.db.read_sync(lambda c: c.execute(select(func.count()).select_from(reports)).scalar()) == 0
    token = _tracking_token(_report(web))
    page = web.get(f"/track/{token}").text
    r = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": "又多了", "junk": big},
                 files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))])
    assert r.status_code == 400 and "照片过大或表单内容损坏。" in r.text


def test_typed_fields_are_counted_as_the_browser_counts_and_refused_over_the_limit(web: Any, sqlite_city: Any) -> None:
    """A description the browser allowed (4,000 characters, its line breaks sent as CR LF) is kept whole;
    longer text, or a category answer longer than its field, is refused beside the field, never cut."""
    from sqlalchemy import func, select

    from wecity.cases.models import reports

    def stored() -> list[Any]:
        return sqlite_city.db.read_sync(lambda c: c.execute(
            select(reports.c.description, reports.c.attributes).order_by(reports.c.id)).all())

    description = ("x" * 39 + "\r\n") * 99 + "y" * 37 + "END"
    assert len(description.replace("\r\n", "\n")) == 4000
    assert _report(web, description=description).status_code == 303
    assert stored()[-1].description == description.replace("\r\n", "\n")

    too_long = _report(web, description="很" * 4001)
    assert too_long.status_code == 400 and 'id="error-description"' in too_long.text
    assert "内容过长：最多 4000 字（提交了 4001 字），请删减。" in too_long.text
    assert "很" * 4001 in too_long.text  # what was typed is kept, to be shortened
    phone = _report(web, phone="1" * 41)
    assert phone.status_code == 400 and 'id="error-phone"' in phone.text and 'href="#phone"' in phone.text
    answer = _report(web, service_code="streetlight", description="路灯不亮", **{"attribute[pole_number]": "P" * 201})
    assert answer.status_code == 400 and 'id="error-attr-streetlight-pole_number"' in answer.text
    assert "最多 200 字（提交了 201 字）" in answer.text
    web.cookies.set("lang", "en")
    english = _report(web, address="长沙" * 251)
    assert english.status_code == 400 and 'id="error-where"' in english.text
    assert "Too long: at most 500 characters (502 sent). Shorten it." in english.text
    assert sqlite_city.db.read_sync(lambda c: c.execute(select(func.count()).select_from(reports)).scalar()) == 1

    fine = _report(web, service_code="streetlight", description="路灯不亮", **{"attribute[pole_number]": "P" * 200})
    assert fine.status_code == 303 and stored()[-1].attributes == {"pole_number": "P" * 200}
