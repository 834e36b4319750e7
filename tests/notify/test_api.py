"""The administrators' outbox API: dead letters listed and retried by admins only, each retry audited."""

from __future__ import annotations

import sqlalchemy as sa

from wecity.core import outbox
from wecity.core.context import AppContext
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.models import audit_log

from ..conftest import City, make_client


def _token(client: object, username: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_admin_lists_and_retries_dead_letters(city: City, ctx: AppContext) -> None:
    dead, alive = ctx.db.write_sync(lambda c: [outbox.enqueue(c, channel="webhook", target=f"https://x.example/{i}",
                                                              payload={}, now=ctx.clock.now()) for i in range(2)])
    ctx.db.write_sync(lambda c: c.execute(sa.text(f"UPDATE outbox_messages SET status='dead', attempts=8, "
                                                  f"last_error='HTTP 503' WHERE id={dead}")))
    with make_client(city) as client:
        admin = _token(client, "admin")
        r = client.get("/api/v1/admin/outbox", headers=admin)
        assert r.status_code == 200
        body = r.json()
        assert body["counts"] == {"pending": 1, "delivered": 0, "dead": 1}
        assert [(m["id"], m["status"], m["attempts"], m["last_error"]) for m in body["messages"]] == [
            (dead, "dead", 8, "HTTP 503")]
        assert [m["id"] for m in client.get("/api/v1/admin/outbox?status=pending", headers=admin).json()["messages"]] \
            == [alive]

        assert client.post(f"/api/v1/admin/outbox/{dead}/retry", headers=admin).json() == {"id": dead,
                                                                                             "status": "pending"}
        again = client.post(f"/api/v1/admin/outbox/{dead}/retry", headers=admin)
        assert again.status_code == 409 and again.json()["code"] == "outbox.not_dead"
        assert client.post("/api/v1/admin/outbox/999999/retry", headers=admin).status_code == 404

        dispatcher = _token(client, "dispatcher")
        assert client.get("/api/v1/admin/outbox", headers=dispatcher).status_code == 403
        assert client.post(f"/api/v1/admin/outbox/{alive}/retry", headers=dispatcher).status_code == 403
        client.cookies.clear()  # signing in also set a session cookie
        assert client.get("/api/v1/admin/outbox").status_code == 401
        bad = client.get("/api/v1/admin/outbox", params={"status": "lost"}, headers=admin)
        assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem+json")
    assert ctx.db.read_sync(outbox.counts) == {"pending": 2, "delivered": 0, "dead": 0}
    audits = ctx.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.target, audit_log.c.outcome)
                                                  .where(audit_log.c.action == "outbox.retry")).all())
    assert [tuple(a) for a in audits] == [("outbox.retry", f"outbox:{dead}", "ok")]


def test_the_list_masks_citizens_addresses_and_is_on_the_audit_record(city: City, ctx: AppContext) -> None:
    now = ctx.clock.now()

    def seed(c: sa.Connection) -> list[int]:
        return [outbox.enqueue(c, channel="email", target="citizen@example.org", payload={}, now=now),
                outbox.enqueue(c, channel="in_app", target="citizen:Qar_cLzVWdGkrztc", payload={}, now=now),
                outbox.enqueue(c, channel="webhook", target="sms", payload={"phone": "13912345678"}, now=now),
                outbox.enqueue(c, channel="in_app", target="department:2:supervisor", payload={}, now=now)]

    ids = ctx.db.write_sync(seed)
    ctx.db.write_sync(lambda c: c.execute(sa.text(
        "UPDATE outbox_messages SET status='dead', attempts=1, "
        "last_error='recipient refused: {''citizen@example.org'': (550, ''no such user'')}'")))
    with make_client(city) as client:
        r = client.get("/api/v1/admin/outbox", headers=_token(client, "admin"))
    assert r.status_code == 200
    for secret in ("citizen@example.org", "Qar_cLzVWdGkrztc", "13912345678"):
        assert secret not in r.text
    shown = {m["id"]: (m["target"], m["last_error"]) for m in r.json()["messages"]}
    assert shown[ids[0]][0] == "c***@example.org" and "c***@example.org" in shown[ids[0]][1]
    assert shown[ids[1]][0] == "citizen:Qar***"
    assert shown[ids[2]][0] == "sms" and shown[ids[3]][0] == "department:2:supervisor"
    looked = ctx.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.target, audit_log.c.detail).where(
        audit_log.c.action == "personal_data.view")).all())
    assert [(t, d["messages"]) for t, d in looked] == [("outbox", 4)]
