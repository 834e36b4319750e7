"""The staff member's own page (the mobile the group robots @mention) and the administrators' robots page,
in both languages, with CSRF and rights checked."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.conftest import City
from wecity.identity.models import audit_log
from wecity.notify import robots

from .conftest import csrf_token, log_in


def test_a_staff_member_sets_the_mobile_the_robots_mention(web: Any, sqlite_city: City) -> None:
    assert web.get("/staff/me", follow_redirects=False).status_code in (302, 303)
    log_in(web, "chengguan")
    page = web.get("/staff/me")
    assert page.status_code == 200 and "我的账号与群机器人" in page.text
    assert "/staff/me" in web.get("/staff").text
    r = web.post("/staff/me", data={"mobile": "13912345678", "wecom_userid": "zhangwei",
                                    "csrf_token": csrf_token(page.text)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/staff/me?done=1"
    again = web.get("/staff/me?done=1")
    assert 'value="13912345678"' in again.text and 'id="link-saved"' in again.text
    bad = web.post("/staff/me", data={"mobile": "not a number", "csrf_token": csrf_token(again.text)})
    assert bad.status_code == 400 and "手机号" in bad.text
    stale = web.post("/staff/me", data={"mobile": "13000000000", "csrf_token": "0" * 64})
    assert stale.status_code == 403
    english = web.get("/lang?to=en&next=/staff/me")
    assert "My account and group robots" in english.text
    actions = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action).where(
        audit_log.c.action == "staff_link.set")).scalars().all())
    assert actions == ["staff_link.set"]


def test_only_administrators_see_and_change_the_robots(web: Any, sqlite_city: City) -> None:
    log_in(web, "supervisor")
    assert "/staff/robots" not in web.get("/staff").text
    assert web.get("/staff/robots").status_code == 403
    token = csrf_token(web.get("/staff/me").text)
    refused = web.post("/staff/robots", data={"name": "x", "kind": "wecom", "csrf_token": token,
                                              "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k",
                                              "events": "dispatched"})
    assert refused.status_code == 403
    assert sqlite_city.db.read_sync(robots.list_robots) == []
    web.cookies.clear()

    log_in(web, "admin")
    page = web.get("/staff/robots")
    assert page.status_code == 200 and 'id="no-robots"' in page.text
    r = web.post("/staff/robots", data={"name": "城管局值班群", "kind": "wecom", "csrf_token": csrf_token(page.text),
                                        "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=secretkey123",
                                        "departments": "2", "events": ["dispatched", "escalated"]},
                 follow_redirects=False)
    assert r.status_code == 303
    listed = web.get("/staff/robots")
    assert "城管局值班群" in listed.text and "key=secr…" in listed.text and "secretkey123" not in listed.text
    [robot] = sqlite_city.db.read_sync(robots.list_robots)
    assert robot["department_ids"] == [2] and robot["events"] == ["dispatched", "escalated"]
    hook = web.post("/staff/robots", data={"name": "网格系统", "kind": "webhook", "csrf_token": csrf_token(listed.text),
                                           "url": "https://grid.example/hook", "events": "low_rating"})
    assert hook.status_code == 200 and 'id="robot-secret"' in hook.text
    internal = web.post("/staff/robots", data={"name": "内网", "kind": "webhook", "csrf_token": csrf_token(hook.text),
                                               "url": "http://192.168.1.9/hook", "events": "low_rating"})
    assert internal.status_code == 400 and 'id="robot-error"' in internal.text
    removed = web.post(f"/staff/robots/{robot['id']}/remove", data={"csrf_token": csrf_token(internal.text)},
                       follow_redirects=False)
    assert removed.status_code == 303
    assert [r["name"] for r in sqlite_city.db.read_sync(robots.list_robots)] == ["网格系统"]
