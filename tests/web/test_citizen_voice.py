"""The citizen after submitting: "still not fixed", an update with a photo, +1, messages in their language,
their answers shown; and the newcomer's troubles: demo codes on the page, the staff menu, plain status words."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from tests.conftest import make_client
from tests.web.conftest import csrf_token, log_in
from tests.web.test_citizen import LAT, LONG, _jpeg, _report, _tracking_token, resolve_case_of
from wecity.cases import engine, queries
from wecity.cases.models import case_followers, cases, timeline
from wecity.cases.queries import inbox_counts
from wecity.core.limits import parse_rule
from wecity.core.models import outbox_messages as outbox
from wecity.identity.models import audit_log
from wecity.identity.service import get_user, start_session
from wecity.notify.channels import with_link


def _case(city: Any, case_id: int) -> Any:
    return city.db.read_sync(lambda c: c.execute(sa.select(cases).where(cases.c.id == case_id)).one())


def _case_id(web: Any, token: str) -> int:
    match = re.search(r'href="/cases/(\d+)" id="case-number"', web.get(f"/track/{token}").text)
    assert match
    return int(match.group(1))


def _outbox(city: Any, channel: str) -> list[Any]:
    return city.db.read_sync(lambda c: c.execute(sa.select(outbox).where(outbox.c.channel == channel)
                                                 .order_by(outbox.c.id)).all())


def test_still_not_fixed_sends_a_resolved_case_back_to_the_department(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    assert 'id="reopen-title"' not in web.get(f"/track/{token}").text  # nothing to send back while open
    case_id = resolve_case_of(city, token)
    page = web.get(f"/track/{token}").text
    assert "问题仍未解决？" in page
    # Without saying what is wrong: refused, the words beside the field, the case untouched.
    empty = web.post(f"/track/{token}/reopen", data={"csrf_token": csrf_token(page), "note": "  "})
    assert empty.status_code == 400 and 'id="reopen-error"' in empty.text and "请说明仍未解决的问题" in empty.text
    assert _case(city, case_id).status == "resolved"
    r = web.post(f"/track/{token}/reopen", data={"csrf_token": csrf_token(page), "note": "垃圾还在路口"},
                 follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?new=reopened")
    row = _case(city, case_id)
    assert row.status == "dispatched" and row.reopen_count == 1 and row.resolved_at is None
    events = city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.event, timeline.c.note)
                                                   .where(timeline.c.case_id == case_id)).all())
    assert ("reopened", "垃圾还在路口") in [(e.event, e.note) for e in events]
    after = web.get(r.headers["location"]).text
    assert 'id="reopened"' in after and "已转交责任部门" in after


def test_still_not_fixed_needs_the_form_token(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = resolve_case_of(city, token)
    r = web.post(f"/track/{token}/reopen", data={"csrf_token": "forged", "note": "还在"})
    assert r.status_code == 403 and _case(city, case_id).status == "resolved"


def test_the_reporter_adds_an_update_with_a_photo_and_the_department_is_told(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    page = web.get(f"/track/{token}").text
    r = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": "又多了两袋"},
                 files=[("photo", ("n.jpg", _jpeg(), "image/jpeg"))], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?new=updated")
    event = city.db.read_sync(lambda c: c.execute(sa.select(timeline).where(
        timeline.c.case_id == case_id, timeline.c.event == "citizen_update")).one())
    assert event.note == "又多了两袋" and event.public and event.media_id
    shown = web.get(f"/track/{token}").text
    assert "市民补充了新情况" in shown and f"/media/{event.media_id}/thumbnail" in shown
    told = [m.payload for m in _outbox(city, "in_app") if m.payload.get("event") == "citizen_update"]
    assert told and told[0]["case_id"] == case_id
    # Nothing to add: refused beside the form.
    empty = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": ""})
    assert empty.status_code == 400 and "请填写新情况或添加照片" in empty.text, re.findall(r"field-error[^<]*<", empty.text)


def test_an_update_to_a_finished_case_is_refused(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    resolve_case_of(city, token)
    page = web.get(f"/track/{token}").text
    assert 'id="update-title"' not in page
    r = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": "还有"})
    assert r.status_code == 409 and "问题仍未解决" in r.text


def test_plus_one_counts_each_person_once_and_tells_them_by_email_in_their_language(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    page = web.get(f"/cases/{case_id}").text
    assert 'id="follow-button"' in page and 'id="case-followers"' not in page
    first = web.post(f"/cases/{case_id}/follow", data={"csrf_token": csrf_token(page)}, follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].endswith("followed=new")
    again = web.post(f"/cases/{case_id}/follow", data={"csrf_token": csrf_token(page)}, follow_redirects=False)
    assert again.headers["location"].endswith("followed=again")  # the same browser is one person
    with make_client(city) as neighbour:
        other = neighbour.get(f"/cases/{case_id}", headers={"Accept-Language": "en"}).text
        r = neighbour.post(f"/cases/{case_id}/follow", headers={"Accept-Language": "en"},
                           data={"csrf_token": csrf_token(other), "email": "neighbour@example.com"},
                           follow_redirects=False)
        assert r.status_code == 303
        bad = neighbour.post(f"/cases/{case_id}/follow", data={"csrf_token": csrf_token(other), "email": "nope"})
        assert bad.status_code == 400
    assert city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(case_followers)
                                                 .where(case_followers.c.case_id == case_id)).scalar()) == 2
    shown = web.get(f"/cases/{case_id}").text
    assert re.search(r'id="case-followers">2<', shown)
    log_in(web, "chengguan")
    assert "另有 2 人反映同样问题（+1）" in web.get(f"/staff/cases/{case_id}").text
    resolve_case_of(city, token)
    mails = [m for m in _outbox(city, "email") if m.target == "neighbour@example.com"]
    assert len(mails) == 1
    assert mails[0].payload["subject"] == "A problem you follow has been fixed; see the result"
    assert mails[0].payload["link"] == f"/cases/{case_id}"
    assert "neighbour@example.com" not in web.get(f"/cases/{case_id}").text


def test_plus_one_is_counted_per_address_before_any_work(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    rules = {**city.settings.rate_limits, "portal_voice": parse_rule("1/minute")}
    with make_client(city, rate_limits=rules) as limited:
        page = limited.get(f"/cases/{case_id}").text
        assert limited.post(f"/cases/{case_id}/follow", data={"csrf_token": csrf_token(page)},
                            follow_redirects=False).status_code == 303
        refused = limited.post(f"/cases/{case_id}/follow", data={"csrf_token": csrf_token(page)})
        assert refused.status_code == 429 and "Retry-After" in refused.headers


def test_messages_to_the_reporter_are_in_their_language_with_the_link(web_city: Any) -> None:
    web, city = web_city
    page = web.get("/report", headers={"Accept-Language": "en"}).text
    r = web.post("/report", headers={"Accept-Language": "en"}, data={
        "csrf_token": csrf_token(page), "service_code": "garbage", "lat": str(LAT), "long": str(LONG),
        "description": "rubbish", "phone": "13912345679", "email": "me@example.com"}, follow_redirects=False)
    token = _tracking_token(r)
    mail = [m for m in _outbox(city, "email") if m.target == "me@example.com"][0].payload
    assert mail["subject"].startswith("Your report has been sent to") and "查询码" not in mail["body"]
    sms = [m for m in _outbox(city, "webhook") if m.payload.get("phone") == "13912345679"][0].payload
    assert sms["text"].startswith("[WeCity] Your report has been sent to") and token in sms["text"]
    # The channels make the link absolute with the platform's public address.
    sent = with_link(sms, "https://wecity.example.gov.cn")
    assert sent["text"].endswith(f" https://wecity.example.gov.cn/track/{token}")
    assert with_link(mail, None)["body"].rstrip().endswith(f"/track/{token}")
    bad = web.post("/report", data={"csrf_token": csrf_token(page), "service_code": "garbage", "lat": str(LAT),
                                    "long": str(LONG), "email": "me at example"})
    assert bad.status_code == 400 and "请检查电子邮箱" in bad.text


def test_resolving_twice_the_same_round_texts_the_reporter_once(web_city: Any) -> None:
    from wecity.cases import notifications

    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = resolve_case_of(city, token)
    city.db.write_sync(lambda c: notifications.case_resolved(c, case_id=case_id, now=city.clock.now()))
    texts = [m for m in _outbox(city, "webhook") if m.payload.get("event") == "resolved"]
    assert len(texts) == 1


def test_the_citizens_answers_are_shown_to_staff_and_on_the_case_page(web_city: Any) -> None:
    web, city = web_city
    page = web.get("/report").text
    r = web.post("/report", data={"csrf_token": csrf_token(page), "service_code": "manhole", "lat": str(LAT),
                                  "long": str(LONG), "description": "井盖没了", "attribute[cover_state]": "missing"},
                 follow_redirects=False)
    token = _tracking_token(r)
    shown = web.get(f"/track/{token}").text
    assert re.search(r"<dt>井盖情况</dt><dd>缺失</dd>", shown)
    case_id = _case_id(web, token)
    assert re.search(r"<dt>State of the cover</dt><dd>Missing</dd>",
                     web.get(f"/cases/{case_id}", headers={"Accept-Language": "en"}).text)
    log_in(web, "chengguan")
    assert re.search(r"<dt>井盖情况</dt><dd>缺失</dd>", web.get(f"/staff/cases/{case_id}").text)


def test_a_demo_city_shows_the_sign_in_code_on_the_page_and_a_real_one_does_not(sqlite_city: Any) -> None:
    for demo in (True, False):
        with make_client(sqlite_city, demo=demo) as web:
            page = web.get("/my").text
            r = web.post("/my/code", data={"csrf_token": csrf_token(page), "phone": f"1390000000{int(demo)}"})
            assert r.status_code == 200
            shown = re.search(r'id="demo-code">演示城市不发送短信。您的验证码是 (\d{6})。', r.text)
            if not demo:
                assert shown is None and "验证码是" not in r.text
                continue
            assert shown
            signed_in = web.post("/my/verify", data={"csrf_token": csrf_token(r.text), "phone": "13900000001",
                                                     "code": shown.group(1)}, follow_redirects=False)
            assert signed_in.status_code == 303


def test_staff_menu_has_only_staff_links_and_citizens_only_theirs(web: Any) -> None:
    def links(html: str) -> list[str]:
        nav = html.split('<nav class="main-nav"')[1].split("</nav>")[0]
        return re.findall(r'<a href="([^"]+)"', nav)

    citizen = links(web.get("/").text)
    assert "/report" in citizen and not any(h.startswith("/staff") for h in citizen)
    log_in(web, "chengguan")
    staff = links(web.get("/staff").text)
    assert "/staff/queue" in staff and "/report" not in staff and "/" not in staff and "/ops" not in staff


def test_a_low_rating_saying_not_fixed_is_a_redo(web_city: Any) -> None:
    """不满意 because it is not fixed becomes 重办 (as 12345 does), and the supervisor's follow-up stays open."""
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = resolve_case_of(city, token)
    page = web.get(f"/track/{token}").text
    r = web.post(f"/track/{token}/rate", data={"csrf_token": csrf_token(page), "stars": "1", "tags": ["not_fixed"],
                                               "comment": "根本没清"}, follow_redirects=False)
    assert r.status_code == 303
    row = _case(city, case_id)
    assert row.status == "dispatched" and row.reopen_count == 1 and row.followup_open
    # A low rating for other reasons (slow, say) leaves the fix standing: a follow-up only.
    other = _tracking_token(_report(web, lat=str(LAT + 0.01)))
    other_id = resolve_case_of(city, other)
    page = web.get(f"/track/{other}").text
    web.post(f"/track/{other}/rate", data={"csrf_token": csrf_token(page), "stars": "2", "tags": ["slow"]})
    assert _case(city, other_id).status == "resolved" and _case(city, other_id).followup_open


def test_a_code_or_case_that_does_not_exist_changes_nothing(web_city: Any) -> None:
    """Whoever holds no tracking code (or names no case) is answered 404 on the page, nothing written."""
    web, city = web_city
    page = web.get("/report").text
    before = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(timeline)).scalar())
    for path in ("/track/nosuchcode0000000/reopen", "/track/nosuchcode0000000/update"):
        r = web.post(path, data={"csrf_token": csrf_token(page), "note": "还在"})
        assert r.status_code == 404 and "没有与该查询码对应的诉求" in r.text, path
    r = web.post("/cases/987654/follow", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 404 and "没有该案件" in r.text
    assert city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(timeline)).scalar()) == before
    assert city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(case_followers)).scalar()) == 0



def test_an_update_to_a_code_that_names_no_report_is_refused_before_its_photo_is_read(
        web: Any, decoded_photos: list[int]) -> None:
    """The code is checked first: a body that is not even multipart gets the 404, not a 400 about the body,
    and a real photo sent with a wrong code is never decoded."""
    decoded = decoded_photos
    page = web.get("/report").text
    broken = web.post("/track/nosuchcode0000000/update", content=b"not multipart",
                      headers={"Content-Type": "multipart/form-data; boundary=nothing-follows"})
    assert broken.status_code == 404 and "没有与该查询码对应的诉求" in broken.text
    photo = web.post("/track/nosuchcode0000000/update", data={"csrf_token": csrf_token(page), "note": "x"},
                     files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))])
    assert photo.status_code == 404 and decoded == []
    token = _tracking_token(_report(web))
    decoded.clear()  # the report's own photo
    taken = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": "又多了"},
                     files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))], follow_redirects=False)
    assert taken.status_code == 303 and decoded == [1]
    # A finished case takes no update: refused before its photo is decoded too.
    db = web.app.state.ctx.db
    db.write_sync(lambda c: c.execute(sa.text(
        "update cases set status = 'closed' where id = (select case_id from reports where token = :t)"), {"t": token}))
    decoded.clear()
    finished = web.post(f"/track/{token}/update", data={"csrf_token": csrf_token(page), "note": "还有"},
                        files=[("photo", ("p.jpg", _jpeg(), "image/jpeg"))], follow_redirects=False)
    assert finished.status_code == 409 and decoded == []

# -- 催办 -------------------------------------------------------------------------------------------------

def _urge(web: Any, token: str, **kw: Any) -> Any:
    page = web.get(f"/track/{token}").text
    return web.post(f"/track/{token}/urge", data={"csrf_token": csrf_token(page)}, **kw)


def test_the_reporter_urges_a_case_that_waited_and_the_department_has_it_in_its_inbox(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    # Just reported, its 30-minute acknowledge clock running: too soon, and the page says from when.
    page = web.get(f"/track/{token}").text
    assert 'id="urge-later"' in page and 'id="urge-button"' not in page
    early = _urge(web, token)
    assert early.status_code == 409 and 'id="urge-error"' in early.text and "该诉求可于" in early.text
    assert _case(city, case_id).urge_count == 0

    city.clock.advance(minutes=31)  # the acknowledge clock has run out
    assert 'id="urge-button"' in web.get(f"/track/{token}").text
    r = _urge(web, token, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].endswith("?new=urged")
    row = _case(city, case_id)
    assert row.urged_at == city.clock.now() and row.urge_count == 1
    event = city.db.read_sync(lambda c: c.execute(sa.select(timeline).where(
        timeline.c.case_id == case_id, timeline.c.event == "citizen_urged")).one())
    assert event.public and event.detail == {"count": 1, "overdue": True}
    told = {m.target for m in _outbox(city, "in_app") if m.payload.get("event") == "citizen_urged"}
    centre = city.db.read_sync(lambda c: c.execute(sa.text(
        "select id from departments where is_dispatch_centre")).scalar_one())
    assert told == {f"department:{row.department_id}", f"department:{row.department_id}:supervisor",
                    f"department:{centre}:supervisor"}  # overdue: the dispatch centre's supervisors too
    robots = [m.payload for m in _outbox(city, "staff_event") if m.payload.get("event") == "citizen_urged"]
    assert len(robots) == 1 and robots[0]["case_id"] == case_id  # the group robots that subscribe hear of it
    shown = web.get(r.headers["location"]).text
    assert 'id="urged"' in shown and "市民催办" in shown
    # Once a day: a second press is refused, and the page says the first is waiting for an answer.
    again = _urge(web, token)
    assert again.status_code == 409 and "上次催办尚待部门答复" in again.text
    assert _case(city, case_id).urge_count == 1

    with make_client(city) as staff:
        log_in(staff, "chengguan")
        inbox = staff.get("/staff/inbox").text
        assert f'href="/staff/cases/{case_id}"' in inbox.split('id="urged"')[1].split('id="followups"')[0]
        assert 'data-urged="1"' in inbox
    handler = city.db.read_sync(lambda c: get_user(c, c.execute(sa.text(
        "select id from users where username = 'chengguan'")).scalar_one()))
    assert handler is not None
    assert city.db.read_sync(lambda c: inbox_counts(c, handler))["urged"] == 1
    # The department signs for it: the urge is answered and leaves the inbox; the count stays on the case.
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, engine.Actor.staff(handler), city.clock.now()))
    assert city.db.read_sync(lambda c: inbox_counts(c, handler))["urged"] == 0
    row = _case(city, case_id)
    assert row.urged_at is None and row.urge_count == 1
    # ... and the reporter is told, by SMS too (they gave a phone), once.
    answered = [m for m in _outbox(city, "webhook") if m.payload.get("event") == "urge_answered"]
    assert len(answered) == 1 and "您的催办已有答复" in answered[0].payload["text"]
    city.db.write_sync(lambda c: engine.start(c, case_id, engine.Actor.staff(handler), city.clock.now()))
    assert len([m for m in _outbox(city, "webhook") if m.payload.get("event") == "urge_answered"]) == 1

    city.clock.advance(hours=24)
    assert _urge(web, token, follow_redirects=False).status_code == 303
    assert _case(city, case_id).urge_count == 2


def test_a_finished_case_cannot_be_urged_nor_without_the_form_token(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    city.clock.advance(hours=25)
    forged = web.post(f"/track/{token}/urge", data={"csrf_token": "forged"})
    assert forged.status_code == 403 and _case(city, case_id).urge_count == 0
    resolve_case_of(city, token)
    page = web.get(f"/track/{token}").text
    assert 'id="urge-title"' not in page
    r = web.post(f"/track/{token}/urge", data={"csrf_token": csrf_token(page)})
    assert r.status_code == 409 and 'id="urge-error"' in r.text and "该诉求已办结" in r.text
    assert _case(city, case_id).urge_count == 0


def test_the_api_urges_by_tracking_code_and_says_when_it_may(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    early = web.post(f"/api/v1/track/{token}/urge")
    assert early.status_code == 409 and early.json()["code"] == "case.urge_too_soon"
    assert "allowed_from" in early.json()["details"]
    assert web.get(f"/api/v1/track/{token}").json()["urge"]["allowed"] is False
    city.clock.advance(minutes=31)
    done = web.post(f"/api/v1/track/{token}/urge")
    assert done.status_code == 200, done.text
    assert done.json()["urge"]["count"] == 1 and done.json()["urge"]["allowed"] is False
    assert done.json()["timeline"][-1]["event"] == "citizen_urged"
    assert web.post("/api/v1/track/not-a-code/urge").status_code == 404


def _staff(city: Any, username: str) -> Any:
    user = city.db.read_sync(lambda c: get_user(c, c.execute(sa.text(
        "select id from users where username = :u"), {"u": username}).scalar_one()))
    assert user is not None
    return user


def test_an_urge_waits_for_whoever_holds_the_case_until_a_step_of_the_work_or_a_public_reply(web_city: Any) -> None:
    web, city = web_city
    handler, dispatcher = _staff(city, "chengguan"), _staff(city, "dispatcher")
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    department = _case(city, case_id).department_id
    now = city.clock.now
    city.db.write_sync(lambda c: engine.return_case(c, case_id, "not_our_duty", engine.Actor.staff(handler), now()))

    def urged_in(user: Any) -> list[int]:
        found = city.db.read_sync(lambda c: queries.inbox(c, user, now()))
        assert len(found["urged"]) == city.db.read_sync(lambda c: inbox_counts(c, user))["urged"]
        return [c["id"] for c in found["urged"]]

    # Sent back, no clock runs: it may be urged after a day (not before), and not as overdue.
    city.clock.advance(hours=23, minutes=59)
    assert _urge(web, token).status_code == 409
    city.clock.advance(minutes=1)
    assert _urge(web, token, follow_redirects=False).status_code == 303
    event = city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.detail).where(
        timeline.c.case_id == case_id, timeline.c.event == "citizen_urged")).scalar_one())
    assert event == {"count": 1, "overdue": False}
    centre = city.db.read_sync(lambda c: c.execute(sa.text(
        "select id from departments where is_dispatch_centre")).scalar_one())
    told = {m.target for m in _outbox(city, "in_app") if m.payload.get("event") == "citizen_urged"}
    assert told == {f"department:{centre}:dispatcher"}  # the centre holds it: not the department that sent it back
    assert urged_in(dispatcher) == [case_id] and urged_in(handler) == []

    # Dispatched again: handed on, not answered; the department now holds it and sees the urge.
    city.db.write_sync(lambda c: engine.dispatch(c, case_id, department, engine.Actor.staff(dispatcher), now()))
    assert urged_in(handler) == [case_id]
    # A public reply answers it.
    city.db.write_sync(lambda c: engine.add_note(c, case_id, engine.Actor.staff(handler), now(), "明早清运",
                                                 public=True))
    assert urged_in(handler) == [] and _case(city, case_id).urged_at is None
    told = [m.payload for m in _outbox(city, "in_app") if m.payload.get("event") == "urge_answered"]
    assert [m["case_id"] for m in told] == [case_id]  # the reply answered it; the dispatch did not
    # An internal note does not.
    city.clock.advance(days=1)
    assert _urge(web, token, follow_redirects=False).status_code == 303
    city.db.write_sync(lambda c: engine.add_note(c, case_id, engine.Actor.staff(handler), now(), "已联系环卫"))
    assert urged_in(handler) == [case_id] and _case(city, case_id).urge_count == 2
    assert len([m for m in _outbox(city, "in_app") if m.payload.get("event") == "urge_answered"]) == 1


def test_merging_carries_an_unanswered_urge_to_the_surviving_case(web_city: Any) -> None:
    web, city = web_city
    handler = _staff(city, "chengguan")
    older = _case_id(web, _tracking_token(_report(web, lat=str(LAT + 0.01))))
    token = _tracking_token(_report(web, lat=str(LAT + 0.02)))
    newer = _case_id(web, token)
    city.clock.advance(minutes=31)
    assert _urge(web, token, follow_redirects=False).status_code == 303  # its 30-minute clock has run out
    urged_at = _case(city, newer).urged_at
    city.clock.advance(hours=1)
    city.db.write_sync(lambda c: engine.merge(c, newer, older, engine.Actor.staff(handler), city.clock.now()))
    kept = _case(city, older)
    assert kept.urged_at == urged_at and kept.urge_count == 1
    assert not [m for m in _outbox(city, "in_app") if m.payload.get("event") == "urge_answered"]  # not answered
    assert [c["id"] for c in city.db.read_sync(lambda c: queries.inbox(c, handler, city.clock.now()))["urged"]] \
        == [older]


def test_the_dispatch_centre_takes_down_a_caller_s_urge(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    with make_client(city) as staff:
        # A handler of the department cannot: the dispatch centre takes calls.
        log_in(staff, "chengguan")
        page = staff.get(f"/staff/cases/{case_id}").text
        assert 'data-action="urge"' not in page
        refused = staff.post(f"/staff/cases/{case_id}/urge", data={"csrf_token": csrf_token(page)})
        assert refused.status_code == 403 and _case(city, case_id).urge_count == 0
        # On the record, as the staff API writes refusals.
        entry = city.db.read_sync(lambda c: c.execute(sa.select(audit_log).where(
            audit_log.c.action == "case.urge")).one())
        assert (entry.target, entry.outcome, entry.detail) == (f"case:{case_id}", "refused",
                                                               {"code": "case.role_required"})
    city.clock.advance(hours=25)
    with make_client(city) as centre:
        log_in(centre, "dispatcher")
        page = centre.get(f"/staff/cases/{case_id}").text
        assert 'data-action="urge"' in page
        r = centre.post(f"/staff/cases/{case_id}/urge", data={"csrf_token": csrf_token(page),
                                                              "note": "来电人李先生 13912345678 说垃圾还在"},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].endswith("?done=urge")
        # Once a day, whichever way it comes: the reporter's own press is refused now, and a second call too.
        assert _urge(web, token).status_code == 409
        page = centre.get(f"/staff/cases/{case_id}").text
        assert centre.post(f"/staff/cases/{case_id}/urge", data={"csrf_token": csrf_token(page)}).status_code == 409
        entries = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.outcome, audit_log.c.detail).where(
            audit_log.c.action == "case.urge").order_by(audit_log.c.id)).all())
        assert [(o, d) for o, d in entries] == [("refused", {"code": "case.role_required"}),
                                                ("ok", {"channel": "hotline"}),
                                                ("refused", {"code": "case.urge_too_soon"})]
    events = city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.event, timeline.c.channel, timeline.c.public,
                                                             timeline.c.note)
                                                   .where(timeline.c.case_id == case_id).order_by(timeline.c.id)).all())
    urged = [e for e in events if e.event == "citizen_urged"]
    assert [(e.channel, e.public, e.note) for e in urged] == [("hotline", True, None)]
    assert [e.note for e in events if e.event == "note"] == ["来电催办 / caller's words: 来电人李先生 13912345678 说垃圾还在"]
    assert [e.public for e in events if e.event == "note"] == [False]
    # The reporter's page shows the step, not the caller's words.
    shown = web.get(f"/track/{token}").text
    assert "市民催办" in shown and "13912345678" not in shown and "李先生" not in shown
    assert _case(city, case_id).urge_count == 1


def _sms(city: Any, event: str) -> list[Any]:
    return [m.payload for m in _outbox(city, "webhook") if m.target == "sms" and m.payload.get("event") == event]


def test_each_urge_answered_is_told_and_a_resolution_answering_one_is_told_again(web_city: Any) -> None:
    web, city = web_city
    handler, dispatcher = _staff(city, "chengguan"), _staff(city, "dispatcher")
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    now = city.clock.now
    # Two urges in one round, each answered by a public reply: two notices, one per urge.
    for reply in ("明早清运", "今天下午清运"):
        city.clock.advance(days=1)
        assert _urge(web, token, follow_redirects=False).status_code == 303
        city.db.write_sync(lambda c, reply=reply: engine.add_note(c, case_id, engine.Actor.staff(handler), now(),
                                                                  reply, public=True))
    assert len(_sms(city, "urge_answered")) == 2
    # Resolved, the fix rejected, urged again, resolved again: the second resolution answers the urge and is
    # texted although this round's resolution was texted before; no separate "urge answered".
    resolve_case_of(city, token)
    assert len(_sms(city, "resolved")) == 1
    city.db.write_sync(lambda c: engine.reject_resolution(c, case_id, engine.Actor.staff(dispatcher), now(), "仍有垃圾"))
    city.clock.advance(days=1)
    assert _urge(web, token, follow_redirects=False).status_code == 303
    evidence = _case(city, case_id).evidence_media_id
    city.db.write_sync(lambda c: engine.resolve(c, case_id, engine.Actor.staff(handler), now(), note="已再次清运",
                                                evidence_media_id=evidence))
    assert len(_sms(city, "resolved")) == 2 and len(_sms(city, "urge_answered")) == 2


def test_a_caller_s_urge_by_the_api_keeps_the_caller_s_words_internal(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    city.clock.advance(hours=25)
    words = "来电人王女士 13600001111 说还没人来"

    def bearer(username: str) -> dict[str, str]:
        user = _staff(city, username)
        return {"Authorization": f"Bearer {city.db.write_sync(lambda c: start_session(c, user.id, now()))}"}

    now = city.clock.now
    lead = web.post(f"/api/v1/cases/{case_id}/urge", json={"note": words}, headers=bearer("chengguan-lead"))
    assert lead.status_code == 403 and lead.json()["code"] == "case.role_required"  # a department's supervisor
    done = web.post(f"/api/v1/cases/{case_id}/urge", json={"note": words}, headers=bearer("dispatcher"))
    assert done.status_code == 200, done.text
    assert done.json()["urge_count"] == 1 and done.json()["urged_at"] is not None
    payloads = [str(m.payload) for m in _outbox(city, "in_app") + _outbox(city, "staff_event") + _outbox(city, "webhook")]
    audits = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.detail)).scalars().all())
    assert payloads and not [p for p in payloads if "13600001111" in p or "王女士" in p]
    assert not [a for a in audits if a and ("13600001111" in str(a) or "王女士" in str(a))]


def test_urge_routes_answer_bad_input_in_their_own_format_and_write_nothing(web_city: Any) -> None:
    web, city = web_city
    token = _tracking_token(_report(web))
    case_id = _case_id(web, token)
    city.clock.advance(hours=25)
    # The portal: a code that names no report is the tracking form again, with its words.
    page = web.get(f"/track/{token}").text
    unknown = web.post("/track/no-such-code/urge", data={"csrf_token": csrf_token(page)})
    assert unknown.status_code == 404 and "没有与该查询码对应的诉求" in unknown.text
    # The staff page: anonymous goes to the login; a case that does not exist is said on the page.
    with make_client(city) as anonymous:
        r = anonymous.post(f"/staff/cases/{case_id}/urge", data={"note": "x"}, follow_redirects=False)
        assert r.status_code in (302, 303) and "/login" in r.headers["location"]
    with make_client(city) as centre:
        log_in(centre, "dispatcher")
        page = centre.get(f"/staff/cases/{case_id}").text
        missing_page = centre.post("/staff/cases/999999/urge", data={"csrf_token": csrf_token(page), "note": "来电"})
        assert missing_page.status_code == 404
    # The API: problem details, nothing written.
    user = _staff(city, "dispatcher")
    bearer = {"Authorization": f"Bearer {city.db.write_sync(lambda c: start_session(c, user.id, city.clock.now()))}"}
    too_long = web.post(f"/api/v1/cases/{case_id}/urge", json={"note": "长" * 2001}, headers=bearer)
    assert too_long.status_code == 400 and too_long.headers["content-type"].startswith("application/problem+json")
    missing = web.post("/api/v1/cases/999999/urge", json={}, headers=bearer)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    unknown_code = web.post("/api/v1/track/no-such-code/urge")
    assert unknown_code.status_code == 404 and unknown_code.json()["code"] == "report.not_found"
    assert _case(city, case_id).urge_count == 0
