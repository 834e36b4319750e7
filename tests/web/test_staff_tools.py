"""The case page's tools for handlers and dispatchers: category, priority, assignment, standard replies,
several evidence photos, navigation and the audited call link, merge candidates, the inbox and the
administrators' page of standard replies."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from tests.web.conftest import csrf_token, log_in
from tests.web.test_citizen import LAT, LONG, _jpeg, _report, _tracking_token
from tests.web.test_staff import _act, _case_id, _status
from wecity.ai.models import ai_duplicates
from wecity.cases.models import cases, reply_templates
from wecity.identity.models import audit_log, users


def _row(city: Any, case_id: int) -> Any:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases).where(cases.c.id == case_id)).one())


def _template_id(city: Any, name: str) -> int:
    return int(city.db.read_sync(lambda c: c.execute(sa.select(reply_templates.c.id)
                                                     .where(reply_templates.c.name == name)).scalar_one()))


def _log_out(web: Any) -> None:
    web.post("/logout", data={"csrf_token": csrf_token(web.get("/staff").text)})


def test_a_handler_refiles_prioritises_and_assigns_from_the_case_page(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))  # garbage: 城管's
    log_in(web, "chengguan")
    page = web.get(f"/staff/cases/{case_id}").text
    assert 'name="category_code"' in page and 'value="streetlight"' in page
    assert 'value="pothole"' not in page  # another department's category is not offered to a handler
    assert _act(web, case_id, "recategorise", category_code="streetlight").status_code == 303
    assert _row(sqlite_city, case_id).category_code == "streetlight"
    refused = _act(web, case_id, "recategorise", category_code="pothole")
    assert refused.status_code == 403 and "请退单至派遣中心" in refused.text
    assert _act(web, case_id, "priority", priority="urgent").status_code == 303
    lead = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(users.c.id).where(
        users.c.username == "chengguan-lead")).scalar_one())
    assert _act(web, case_id, "assign", user_id=str(lead)).status_code == 303
    row = _row(sqlite_city, case_id)
    assert row.priority == "urgent" and row.assignee_id == lead
    page = web.get(f"/staff/cases/{case_id}").text
    for label in ("改为其他类别", "优先级已调整", "已指派处置人员", "特急", "城管科长 刘洋"):
        assert label in page
    queue = web.get("/staff/queue?sort=priority").text
    assert 'data-priority="urgent"' in queue
    # "Assigned to me" is the lead's, not this handler's.
    assert f'href="/staff/cases/{case_id}"' not in web.get("/staff/queue?mine=1").text
    _log_out(web)
    log_in(web, "chengguan-lead")
    assert f'href="/staff/cases/{case_id}"' in web.get("/staff/queue?mine=1").text


def test_another_departments_handler_may_not_use_the_tools(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "zhujian")
    token = csrf_token(web.get("/staff").text)
    for action, data in (("priority", {"priority": "urgent"}), ("recategorise", {"category_code": "streetlight"}),
                         ("assign", {"user_id": "1"}), ("merge", {"into_case_id": "1"})):
        r = web.post(f"/staff/cases/{case_id}/{action}", data={"csrf_token": token, **data}, follow_redirects=False)
        assert r.status_code == 403, action
    row = _row(sqlite_city, case_id)
    assert row.priority == "normal" and row.category_code == "garbage" and row.status == "dispatched"


def test_forms_without_the_csrf_token_change_nothing(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")
    r = web.post(f"/staff/cases/{case_id}/priority", data={"priority": "urgent"}, follow_redirects=False)
    assert r.status_code == 403 and _row(sqlite_city, case_id).priority == "normal"
    r = web.post(f"/staff/cases/{case_id}/call", data={"report_id": "1"}, follow_redirects=False)
    assert r.status_code == 403 and "location" not in r.headers


def test_a_standard_reply_is_sent_only_with_every_field_filled(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")
    assert _act(web, case_id, "acknowledge").status_code == 303
    template = _template_id(sqlite_city, "通用办结回复")
    page = web.get(f"/staff/cases/{case_id}?resolve_template={template}").text
    # Its fields are inputs the browser requires; the page needs no JavaScript to offer them.
    assert 'name="field:处置措施"' in page and 'name="field:完成时间"' in page
    assert re.search(r'name="field:完成时间"[^>]*required', page)
    photo = [("evidence", ("after.jpg", _jpeg(), "image/jpeg"))]
    token = csrf_token(page)
    r = web.post(f"/staff/cases/{case_id}/resolve", data={
        "csrf_token": token, "template_id": str(template), "field:处置措施": "已清运", "field:完成时间": " "},
        files=photo, follow_redirects=False)
    assert r.status_code == 400 and "请填写：完成时间" in r.text
    assert _status(sqlite_city, case_id) == "acknowledged"
    r = web.post(f"/staff/cases/{case_id}/resolve", data={
        "csrf_token": token, "template_id": str(template), "field:处置措施": "已清运", "field:完成时间": "今天 15:00"},
        files=photo, follow_redirects=False)
    assert r.status_code == 303 and _status(sqlite_city, case_id) == "resolved"
    assert _row(sqlite_city, case_id).status_notes.startswith("您反映的问题已处理。处置措施：已清运；完成时间：今天 15:00。")


def test_a_public_note_from_a_template_and_english_templates_in_english(web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    log_in(web, "chengguan")
    _act(web, case_id, "acknowledge")
    web.cookies.set("lang", "en")
    page = web.get(f"/staff/cases/{case_id}").text
    assert "Acknowledged</option>" in page and "已签收告知" not in page
    template = _template_id(sqlite_city, "Acknowledged")
    r = _act(web, case_id, "note", template_id=str(template), **{"field:team": "Street team 3"})
    assert r.status_code == 400 and "fill in: visit time" in r.text
    r = _act(web, case_id, "note", template_id=str(template),
             **{"field:team": "Street team 3", "field:visit time": "4 pm"})
    assert r.status_code == 303
    assert _row(sqlite_city, case_id).status_notes == ("Street team 3 has taken on the problem you reported and "
                                                       "will be on site by 4 pm.")


def test_several_evidence_photos_are_shown_to_staff_and_to_the_citizen(web: Any, sqlite_city: Any) -> None:
    token = _tracking_token(_report(web))
    case_id = _case_id(sqlite_city, token)
    log_in(web, "chengguan")
    _act(web, case_id, "acknowledge")
    photos = [("evidence", (f"after{i}.jpg", _jpeg(), "image/jpeg")) for i in range(3)]
    assert _act(web, case_id, "resolve", note="已清运", files=photos).status_code == 303
    ids = _row(sqlite_city, case_id).evidence_media_ids
    assert len(ids) == 3
    assert web.get(f"/staff/cases/{case_id}").text.count("data-evidence") == 3
    assert web.get(f"/track/{token}").text.count("data-evidence") == 3
    assert web.get(ids[2] and f"/media/{ids[2]}/thumbnail").status_code == 200
    case_id = _case_id(sqlite_city, _tracking_token(_report(web, description="另一处", lat=str(LAT + 0.01))))
    _act(web, case_id, "acknowledge")
    seven = [("evidence", (f"a{i}.jpg", _jpeg(), "image/jpeg")) for i in range(7)]
    r = _act(web, case_id, "resolve", note="x", files=seven)
    assert r.status_code == 400 and _status(sqlite_city, case_id) == "acknowledged"


def test_navigation_links_and_a_call_that_reveals_the_number_only_through_the_audit_log(
        web: Any, sqlite_city: Any) -> None:
    case_id = _case_id(sqlite_city, _tracking_token(_report(web)))
    report_id = sqlite_city.db.read_sync(lambda c: c.execute(sa.text(
        "SELECT id FROM reports WHERE case_id = :c"), {"c": case_id}).scalar_one())
    log_in(web, "chengguan")
    page = web.get(f"/staff/cases/{case_id}").text
    assert f'href="geo:{LAT:.6f},{LONG:.6f}?q={LAT:.6f},{LONG:.6f}"' in page
    assert f"https://uri.amap.com/marker?position={LONG:.6f},{LAT:.6f}&amp;coordinate=wgs84" in page
    assert "13912345678" not in page and "139****5678" in page
    r = web.post(f"/staff/cases/{case_id}/call", data={"csrf_token": csrf_token(page), "report_id": str(report_id)},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "tel:13912345678"
    entry = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log).where(
        audit_log.c.action == "personal_data.view")).one())
    assert entry.outcome == "ok" and entry.target == f"case:{case_id}" and entry.detail["purpose"] == "call"
    _log_out(web)
    # Supervisors see every case, but reporters' numbers stay with the department and the dispatch centre.
    log_in(web, "chengguan-lead")
    other = _case_id(sqlite_city, _tracking_token(_report(web, service_code="pothole", description="坑")))
    other_report = sqlite_city.db.read_sync(lambda c: c.execute(sa.text(
        "SELECT id FROM reports WHERE case_id = :c"), {"c": other}).scalar_one())
    page = web.get(f"/staff/cases/{other}").text
    assert f'id="call-{other_report}"' not in page
    r = web.post(f"/staff/cases/{other}/call", data={"csrf_token": csrf_token(page), "report_id": str(other_report)},
                 follow_redirects=False)
    assert r.status_code == 403 and "tel:" not in r.headers.get("location", "")
    denied = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log).where(
        audit_log.c.action == "personal_data.view", audit_log.c.outcome == "denied")).one())
    assert denied.target == f"case:{other}"


def test_duplicate_candidates_are_merged_in_one_click(web: Any, sqlite_city: Any) -> None:
    older = _case_id(sqlite_city, _tracking_token(_report(web)))
    # 120 m north: outside intake's own merge radius, within the candidates' 300 m.
    newer = _case_id(sqlite_city, _tracking_token(_report(web, description="垃圾没人清", lat=str(LAT + 0.0011))))
    assert older != newer
    log_in(web, "chengguan")
    page = web.get(f"/staff/cases/{newer}").text
    assert f'data-candidate="{older}"' in page and "/thumbnail" in page
    assert re.search(rf'name="from_case_id" value="{newer}"><input type="hidden" name="into_case_id" value="{older}"',
                     page)
    r = web.post(f"/staff/cases/{newer}/merge", data={"csrf_token": csrf_token(page), "from_case_id": str(newer),
                                                       "into_case_id": str(older)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/staff/cases/{older}?done=merge"
    assert _status(sqlite_city, newer) == "merged"


def test_merging_through_the_api_settles_the_ai_proposal(client: Any, city: Any) -> None:
    from tests.cases.conftest import open_case

    older, newer = open_case(city), open_case(city, lat=28.2100)
    city.db.write_sync(lambda c: c.execute(ai_duplicates.insert().values(
        case_id=newer, candidate_id=older, score=0.5, text_similarity=0.8, photo_similarity=None, distance_m=100.0,
        same_category=True, state="proposed", found_at=city.clock.now())))
    token = client.post("/api/v1/auth/token", json={"username": "chengguan", "password": "wecity-demo"}).json()["token"]
    r = client.post(f"/api/v1/cases/{newer}/merge", json={"into_case_id": older},
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["id"] == older
    proposal = city.db.read_sync(lambda c: c.execute(sa.select(ai_duplicates)).one())
    assert proposal.state == "merged" and proposal.decided_by.startswith("user:")


def test_the_inbox_lists_escalations_and_low_ratings_with_a_count_in_the_menu(web: Any, sqlite_city: Any) -> None:
    escalated = _case_id(sqlite_city, _tracking_token(_report(web)))
    sqlite_city.db.write_sync(lambda c: c.execute(cases.update().where(cases.c.id == escalated)
                                                  .values(ack_escalated=True)))
    log_in(web, "chengguan")
    page = web.get("/staff/inbox").text
    assert f'href="/staff/cases/{escalated}"' in page and "催办（1）" in page
    assert 'data-count="1"' in web.get("/staff/queue").text
    assert 'data-count="1"' in web.get("/staff").text
    _log_out(web)
    log_in(web, "zhujian")  # another department: nothing of theirs
    page = web.get("/staff/inbox").text
    assert f'href="/staff/cases/{escalated}"' not in page and "data-count" not in page
    _log_out(web)
    log_in(web, "supervisor")
    assert f'href="/staff/cases/{escalated}"' in web.get("/staff/inbox").text
    assert web.get("/staff/inbox", follow_redirects=False).status_code == 200
    _log_out(web)
    assert web.get("/staff/inbox", follow_redirects=False).status_code == 303  # to the login page


def test_administrators_manage_standard_replies_and_nobody_else(web: Any, sqlite_city: Any) -> None:
    log_in(web, "chengguan")
    assert web.get("/staff/replies").status_code == 403
    token = csrf_token(web.get("/staff").text)
    r = web.post("/staff/replies/new", data={"csrf_token": token, "name": "x", "locale": "zh_CN", "use": "resolve",
                                             "body": "x"}, follow_redirects=False)
    assert r.status_code == 403
    _log_out(web)
    log_in(web, "admin")
    page = web.get("/staff/replies").text
    assert "通用办结回复" in page and "Progress update" in page
    data = {"csrf_token": csrf_token(page), "name": "路灯修复", "locale": "zh_CN", "use": "resolve",
            "category_code": "streetlight", "status": "", "body": "路灯已修复：{{更换部件}}", "active": "1"}
    assert web.post("/staff/replies/new", data=data, follow_redirects=False).status_code == 303
    template = _template_id(sqlite_city, "路灯修复")
    bad = web.post(f"/staff/replies/{template}", data={**data, "body": "未闭合 {{更换部件"}, follow_redirects=False)
    assert bad.status_code == 400 and "字段须写作" in bad.text
    assert web.post(f"/staff/replies/{template}-delete", data={"csrf_token": data["csrf_token"]},
                    follow_redirects=False).status_code == 303
    assert "路灯修复" not in web.get("/staff/replies").text
    actions = sqlite_city.db.read_sync(lambda c: [r.action for r in c.execute(
        sa.select(audit_log.c.action).where(audit_log.c.target == f"reply_template:{template}"))])
    assert actions == ["reply_template.create", "reply_template.delete"]
