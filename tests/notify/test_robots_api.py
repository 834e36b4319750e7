"""The group robots' administration (API and `wecity notify`) and a staff member's link: administrators only,
refused before any work, keys masked, every change audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.cli import main
from wecity.identity.models import audit_log
from wecity.notify import robots

from ..conftest import City, make_client
from .test_api import _token

ROBOT = {"name": "城管局值班群", "kind": "wecom", "departments": ["chengguan"], "events": ["dispatched", "escalated"],
         "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx6-7aoc-4bc4-97a0-0ec2sifa5aaa"}


def test_an_administrator_adds_lists_and_removes_robots_with_keys_masked(city: City) -> None:
    with make_client(city) as client:
        admin = _token(client, "admin")
        r = client.post("/api/v1/admin/robots", json=ROBOT, headers=admin)
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["url"] == "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a…"
        assert made["department_ids"] == [2] and made["events"] == ["dispatched", "escalated"]
        hook = client.post("/api/v1/admin/robots", headers=admin, json={
            "name": "网格系统", "kind": "webhook", "url": "https://grid.example/hook", "events": ["low_rating"]})
        assert hook.status_code == 201 and len(hook.json()["secret"]) > 30  # generated, shown once
        listed = client.get("/api/v1/admin/robots", headers=admin).json()
        assert [(x["name"], x["has_secret"]) for x in listed] == [("城管局值班群", False), ("网格系统", True)]
        assert all("secret" not in x and "0ec2sifa5aaa" not in x["url"] for x in listed)

        bad = client.post("/api/v1/admin/robots", headers=admin, json=ROBOT | {"url": "http://10.0.0.5/send?key=k"})
        assert bad.status_code == 400 and bad.json()["code"] == "notify.url_not_allowed"
        unknown = client.post("/api/v1/admin/robots", headers=admin, json=ROBOT | {"departments": ["nowhere"]})
        assert unknown.status_code == 404
        assert client.delete(f"/api/v1/admin/robots/{made['id']}", headers=admin).status_code == 200
        assert client.delete(f"/api/v1/admin/robots/{made['id']}", headers=admin).status_code == 404
        assert [x["name"] for x in client.get("/api/v1/admin/robots", headers=admin).json()] == ["网格系统"]
    audits = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.target).where(
        audit_log.c.action.like("robot.%")).order_by(audit_log.c.id)).all())
    assert [a.action for a in audits] == ["robot.set", "robot.set", "robot.remove"]


@pytest.mark.parametrize("username", ["dispatcher", "supervisor", "chengguan"])
def test_others_are_refused_before_any_work(city: City, username: str) -> None:
    with make_client(city) as client:
        other = _token(client, username)
        assert client.get("/api/v1/admin/robots", headers=other).status_code == 403
        # Refused before the body is looked at: a broken body still gets 403, not 422.
        assert client.post("/api/v1/admin/robots", headers=other, json={"nonsense": True}).status_code == 403
        r = client.post("/api/v1/admin/robots", headers=other, json=ROBOT)
        assert r.status_code == 403 and r.json()["code"] == "auth.admin_only"
        assert client.delete("/api/v1/admin/robots/1", headers=other).status_code == 403
        client.cookies.clear()
        assert client.get("/api/v1/admin/robots").status_code == 401
        assert client.post("/api/v1/admin/robots", json=ROBOT).status_code == 401
    assert city.db.read_sync(robots.list_robots) == []


def test_a_staff_member_links_their_mobile_for_mentions(city: City) -> None:
    with make_client(city) as client:
        me = _token(client, "chengguan")
        assert client.get("/api/v1/me/robot-link", headers=me).json() == {"mobile": None, "wecom_userid": None}
        r = client.put("/api/v1/me/robot-link", headers=me, json={"mobile": "139-1234-5678", "wecom_userid": "zhangwei"})
        assert r.json() == {"mobile": "13912345678", "wecom_userid": "zhangwei"}
        bad = client.put("/api/v1/me/robot-link", headers=me, json={"mobile": "call me"})
        assert bad.status_code == 400 and bad.json()["code"] == "notify.invalid_mobile"
        # Another staff member sees only their own.
        assert client.get("/api/v1/me/robot-link", headers=_token(client, "zhujian")).json()["mobile"] is None
        assert client.put("/api/v1/me/robot-link", headers=me, json={}).json() == {"mobile": None, "wecom_userid": None}
        client.cookies.clear()
        assert client.get("/api/v1/me/robot-link").status_code == 401
    audits = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.detail).where(
        audit_log.c.action == "staff_link.set").order_by(audit_log.c.id)).all())
    assert [a.detail for a in audits] == [{"mobile": True, "wecom_userid": True}, {"mobile": False, "wecom_userid": False}]


def test_the_command_line_adds_lists_and_removes_robots(sqlite_city: City, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    assert main(["notify", "add-robot", "督办群", "dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abcdef",
                 "--secret", "SECxyz", "--department", "chengguan", "--event", "escalated"]) == 0
    assert "access_token=abcd…" in capsys.readouterr().out
    assert main(["notify", "list-robots"]) == 0
    listed = capsys.readouterr().out
    assert "督办群\tdingtalk\ton" in listed and "abcdef" not in listed and "SECxyz" not in listed
    [robot] = sqlite_city.db.read_sync(robots.list_robots)
    assert (robot["secret"], robot["department_ids"], robot["events"]) == ("SECxyz", [2], ["escalated"])
    assert main(["notify", "remove-robot", str(robot["id"])]) == 0
    assert sqlite_city.db.read_sync(robots.list_robots) == []
    # As from the page: on the audit log, by the account that ran the command, the key not in it.
    audits = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.actor,
                                                                    audit_log.c.detail).where(
        audit_log.c.action.in_(["robot.set", "robot.remove"])).order_by(audit_log.c.id)).all())
    assert [a.action for a in audits] == ["robot.set", "robot.remove"]
    assert all(a.actor.startswith("cli:") for a in audits) and "abcdef" not in str(audits)


def test_a_webhook_added_from_the_command_line_is_audited_without_its_key(sqlite_city: City,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    assert main(["notify", "add-webhook", "sms", "https://gateway.example/send?token=TOKEN-123"]) == 0
    [entry] = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.actor, audit_log.c.detail).where(
        audit_log.c.action == "webhook.set")).all())
    assert entry.actor.startswith("cli:") and entry.detail == {"url": "https://gateway.example/send"}
