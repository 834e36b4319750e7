"""Staff pages: queues by SLA urgency, least privilege, and every case-engine action from the case page."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from tests.web.conftest import csrf_token, log_in
from tests.web.test_citizen import _jpeg, _report, _tracking_token
from wecity.cases.models import cases, reports, timeline
from wecity.identity.models import audit_log


def _case_id(city: Any, token: str) -> int:
    return int(city.db.read_sync(lambda c: c.execute(sa.select(reports.c.case_id).where(reports.c.token == token))
                                 .scalar_one()))


def _status(city: Any, case_id: int) -> str:
    return str(city.db.read_sync(lambda c: c.execute(sa.select(cases.c.status).where(cases.c.id == case_id))
                                 .scalar_one()))


def _act(web: Any, case_id: int, action: str, **data: Any) -> Any:
    token = csrf_token(web.get(f"/staff/cases/{case_id}").text)
    files = data.pop("files", None)
    return web.post(f"/staff/cases/{case_id}/{action}", data={"csrf_token": token, **data}, files=files,
                    follow_redirects=False)


def test_queue_lists_the_departments_cases_with_countdowns(web: Any, sqlite_city: Any) -> None:
    token = _tracking_token(_report(web))
    case_id = _case_id(sqlite_city, token)
    log_in(web, "chengguan")
    html = web.get("/staff/queue").text
    assert f'href="/staff/cases/{case_id}"' in html
    assert "签收时限" in html and "剩余 " in html
    assert re.search(r'class="countdown[^"]*" data-due="[^"]+"', html)
    # Another department's handler does not see it, and may not open it.
    web.post("/logout", data={"csrf_token": csrf_token(html)})
    log_in(web, "zhujian")
    assert f'/staff/cases/{case_id}"' not in web.get("/staff/queue").text
    assert web.get(f"/staff/cases/{case_id}").status_code == 403


def test_handler_walks_a_case_to_resolved_and_the_dispatcher_verifies_and_closes(web_city: Any) -> None:
    web, sqlite_city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(sqlite_city, token)
    log_in(web, "chengguan")
    page = web.get(f"/staff/cases/{case_id}").text
    assert "139****5678" in page and "13912345678" not in page  # the phone is masked for staff
    assert _act(web, case_id, "acknowledge").status_code == 303
    assert _status(sqlite_city, case_id) == "acknowledged"
    assert _act(web, case_id, "start", note="已到现场").status_code == 303
    no_photo = _act(web, case_id, "resolve", note="已清运")
    assert no_photo.status_code == 400 and "办结须上传处置后照片" in no_photo.text
    r = _act(web, case_id, "resolve", note="已清运", files=[("evidence", ("after.jpg", _jpeg(), "image/jpeg"))])
    assert r.status_code == 303 and _status(sqlite_city, case_id) == "resolved"
    # A handler cannot verify their own work.
    assert _act(web, case_id, "verify").status_code == 403
    web.post("/logout", data={"csrf_token": csrf_token(web.get("/staff").text)})
    log_in(web, "dispatcher")
    dispatch = web.get("/staff/dispatch").text
    assert f'href="/staff/cases/{case_id}"' in dispatch
    assert _act(web, case_id, "verify", note="现场核查通过").status_code == 303
    assert _act(web, case_id, "close").status_code == 303
    assert _status(sqlite_city, case_id) == "closed"
    html = web.get(f"/staff/cases/{case_id}").text
    for label in ("责任部门已签收", "开始处置", "责任部门已办结", "核查通过", "已结案"):
        assert label in html
    actions = sqlite_city.db.read_sync(lambda c: [r.action for r in c.execute(
        sa.select(audit_log.c.action).where(audit_log.c.target == f"case:{case_id}"))])
    assert {"case.acknowledged", "case.resolved", "case.verified", "case.closed"} <= set(actions)


def test_return_transfer_and_redispatch(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")
    refused = _act(web, case_id, "return", reason="other")
    assert refused.status_code == 400 and "原因为「其他」时须说明" in refused.text
    assert _act(web, case_id, "return", reason="not_our_duty").status_code == 303
    assert _status(sqlite_city, case_id) == "returned"
    web.post("/logout", data={"csrf_token": csrf_token(web.get("/staff").text)})
    log_in(web, "dispatcher")
    assert f'/staff/cases/{case_id}"' in web.get("/staff/dispatch").text
    zhujian = re.search(r'<option value="(\d+)"[^>]*>市住房和城乡建设局', web.get(f"/staff/cases/{case_id}").text)
    assert zhujian
    assert _act(web, case_id, "dispatch", department_id=zhujian.group(1)).status_code == 303
    assert _status(sqlite_city, case_id) == "dispatched"
    chengguan = re.search(r'<option value="(\d+)">市城市管理和综合执法局', web.get(f"/staff/cases/{case_id}").text)
    assert chengguan
    assert _act(web, case_id, "transfer", department_id=chengguan.group(1), note="属城管职责").status_code == 303


def test_an_illegal_action_is_refused_with_the_engines_message(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "dispatcher")
    r = _act(web, case_id, "close")
    assert r.status_code == 409 and "不能结案" in r.text
    web.cookies.set("lang", "en")
    r = _act(web, case_id, "close")
    assert "cannot close a case that is dispatched" in r.text


def test_staff_pages_need_login(web: Any) -> None:
    for path in ("/staff/queue", "/staff/dispatch", "/staff/cases/1"):
        r = web.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    r = web.post("/staff/cases/1/acknowledge", data={}, follow_redirects=False)
    assert r.status_code == 303


def test_handler_cannot_open_the_dispatch_view(web: Any) -> None:
    log_in(web, "chengguan")
    assert web.get("/staff/dispatch").status_code == 403


def test_dispatcher_merges_a_duplicate_case(web: Any, sqlite_city: Any) -> None:
    first = _case_id(sqlite_city, _tracking_token(_report(web)))
    second = _case_id(sqlite_city, _tracking_token(_report(web, lat="28.2000", long="112.9800")))
    assert first != second
    log_in(web, "dispatcher")
    bad = _act(web, second, "merge", into_case_id=str(second))
    assert bad.status_code == 400 and "不能与自身并单" in bad.text
    assert _act(web, second, "merge", into_case_id=f"#{first}").status_code == 303
    assert _status(sqlite_city, second) == "merged"
    assert "重复案件已并入本案件" in web.get(f"/staff/cases/{first}").text


def test_an_over_long_note_is_refused_not_cut_short(web: Any, sqlite_city: Any) -> None:
    """The form says maxlength 2,000; a longer note (a script's, a hostile caller's) is an error on the page,
    and nothing is written: cutting it would keep a note other than the one sent."""
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")

    def events() -> int:
        return len(sqlite_city.db.read_sync(lambda c: c.execute(
            sa.select(timeline.c.id).where(timeline.c.case_id == case_id)).all()))

    before = events()
    refused = _act(web, case_id, "note", note="井" * 2001)
    assert refused.status_code == 400 and "内容过长：最多 2000 字（提交了 2001 字）" in refused.text
    assert events() == before
    assert _act(web, case_id, "note", note="井" * 2000).status_code == 303
    assert events() == before + 1


def test_a_note_at_the_form_s_limit_with_line_breaks_is_taken(web: Any, sqlite_city: Any) -> None:
    """The browser counts a line break as one character against maxlength and sends it as two (CR LF)."""
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")
    note = "\r\n".join(["井" * 399] * 5)  # 1,999 characters as the browser counts them, 2,003 as sent
    assert _act(web, case_id, "note", note=note).status_code == 303
    stored = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.note).where(
        timeline.c.case_id == case_id).order_by(timeline.c.id.desc())).scalars().first())
    assert stored == note.replace("\r\n", "\n")


def test_photos_are_taken_in_only_from_staff_who_may_act_on_the_case(web: Any, sqlite_city: Any,
                                                                     decoded_photos: list[int]) -> None:
    """Resolve and note take photos: whoever may not do them on this case is refused before the form is
    read (a body that is not even multipart gets the 403, not a 400 about the body), and no photo is
    decoded."""
    decoded = decoded_photos
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    decoded.clear()  # the report's own photo
    photo = [("evidence", ("after.jpg", _jpeg(), "image/jpeg"))]
    log_in(web, "dispatcher")  # sees the case, but resolving is the department's
    broken = web.post(f"/staff/cases/{case_id}/resolve", content=b"not multipart",
                      headers={"Content-Type": "multipart/form-data; boundary=nothing-follows"})
    assert broken.status_code == 403 and "只有责任部门的处置人员可以执行此操作" in broken.text
    assert _act(web, case_id, "resolve", note="已清运", files=photo).status_code == 403
    log_in(web, "zhujian")  # another department's handler
    token = csrf_token(web.get("/staff").text)
    r = web.post(f"/staff/cases/{case_id}/note", data={"csrf_token": token, "note": "看看"}, files=photo)
    assert r.status_code == 403
    assert decoded == []
    refused = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.detail).where(
        audit_log.c.target == f"case:{case_id}", audit_log.c.outcome == "refused").order_by(audit_log.c.id)).all())
    assert [r.action for r in refused] == ["case.resolve", "case.resolve", "case.note"]
    assert all(r.detail["code"] == "case.not_your_department" for r in refused)
    log_in(web, "supervisor")  # the dispatch centre notes any department's case
    assert _act(web, case_id, "note", note="已督办", files=photo).status_code == 303 and decoded == [1]
