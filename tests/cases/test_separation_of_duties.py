"""Separation of duties: whoever resolved a case cannot verify or close it; outside the dispatch centre,
a case's work (transfer, verify, close, reopen, merge, notes) and its reporters' contacts stay within one's
own department."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.intake import NewReport, submit_report
from wecity.cases.models import reports, timeline
from wecity.core.errors import PermissionDenied
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.geo.service import load_area_index
from wecity.identity.models import audit_log
from wecity.identity.service import authenticate, department_id_by_code

from ..conftest import City, make_client

# 五一广场, 芙蓉区 (WGS-84)
LAT, LONG = 28.19567, 112.97170


def _case(city: City, code: str) -> int:
    return int(city.db.write_sync(lambda c: submit_report(
        c, NewReport(service_code=code, lat=LAT, long=LONG, description="x", phone="13912345678"),
        area_index=load_area_index(c), now=city.clock.now()).case_id))


def _actor(city: City, username: str) -> engine.Actor:
    return engine.Actor.staff(city.db.write_sync(authenticate, username, DEMO_PASSWORD))


def test_whoever_resolved_a_case_cannot_verify_or_close_it(city: City) -> None:
    case_id = _case(city, "streetlight")  # 城管 (chengguan)
    lead, dispatcher = _actor(city, "chengguan-lead"), _actor(city, "dispatcher")  # lead: handler and supervisor
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, case_id, lead, now))
    city.db.write_sync(lambda c: engine.resolve(c, case_id, lead, now, note="已修复", evidence_media_id="photo"))
    with pytest.raises(PermissionDenied) as refused:
        city.db.write_sync(lambda c: engine.verify(c, case_id, lead, now))
    assert refused.value.code == "case.separation_of_duties"
    city.db.write_sync(lambda c: engine.verify(c, case_id, dispatcher, now))
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.close(c, case_id, lead, now))
    city.db.write_sync(lambda c: engine.close(c, case_id, dispatcher, now))


def test_only_the_dispatch_centre_transfers_another_departments_case(city: City) -> None:
    case_id = _case(city, "pothole")  # 住建 (zhujian)
    chengguan = city.db.read_sync(department_id_by_code, "chengguan")
    lead, dispatcher = _actor(city, "chengguan-lead"), _actor(city, "dispatcher")
    now = city.clock.now()
    with pytest.raises(PermissionDenied):
        city.db.write_sync(lambda c: engine.transfer(c, case_id, chengguan, lead, now, note="归我们"))
    city.db.write_sync(lambda c: engine.transfer(c, case_id, chengguan, dispatcher, now, note="属城管职责"))


def test_contacts_are_shown_to_the_responsible_department_and_the_dispatch_centre_only(city: City) -> None:
    case_id = _case(city, "pothole")  # 住建 (zhujian)
    with make_client(city) as api:
        def contacts(username: str) -> object:
            token = api.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD}).json()
            api.cookies.clear()  # the bearer token alone says who asks
            return api.get(f"/api/v1/cases/{case_id}/contacts",
                           headers={"Authorization": f"Bearer {token['token']}"})

        refused = contacts("chengguan-lead")
        assert refused.status_code == 403 and "13912345678" not in refused.text
        for username in ("zhujian", "dispatcher"):
            shown = contacts(username)
            assert shown.status_code == 200 and shown.json()[0]["phone"] == "13912345678"
    denied = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.actor).where(
        audit_log.c.action == "personal_data.view", audit_log.c.outcome == "denied")).all())
    assert len(denied) == 1


def _bearer(city: City, username: str) -> dict[str, str]:
    """A staff session made directly (the password check is tested in tests/identity, and slow on purpose)."""
    from wecity.identity.models import users
    from wecity.identity.service import start_session

    def run(c: sa.Connection) -> str:
        user_id = c.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one()
        return start_session(c, user_id, city.clock.now())

    return {"Authorization": f"Bearer {city.db.write_sync(run)}"}


def test_a_supervisor_acts_only_on_their_own_departments_cases_the_dispatch_centre_on_any(city: City) -> None:
    noise, fumes = _case(city, "noise"), _case(city, "cooking-fumes")  # both 生态 (shengtai)
    ours = _case(city, "streetlight")  # 城管 (chengguan), the supervisor's own
    shengtai = _actor(city, "shengtai")
    now = city.clock.now()
    city.db.write_sync(lambda c: engine.acknowledge(c, noise, shengtai, now))
    city.db.write_sync(lambda c: engine.resolve(c, noise, shengtai, now, note="已处理", evidence_media_id="photo"))
    lead, centre = _bearer(city, "chengguan-lead"), _bearer(city, "dispatcher")
    with make_client(city) as api:
        def act(who: dict[str, str], verb: str, case_id: int = noise, **body: object) -> int:
            return api.post(f"/api/v1/cases/{case_id}/{verb}", headers=who, json=body or None).status_code

        assert act(lead, "notes", note="城管来的备注", public=True) == 403
        assert act(lead, "notes", note="internal") == 403
        assert act(lead, "reject", note="没修好") == 403
        assert act(lead, "verify") == 403
        assert act(centre, "verify") == 200
        assert act(lead, "close") == 403
        assert act(centre, "close") == 200
        assert act(lead, "reopen", note="市民不满意") == 403
        assert act(centre, "reopen", note="市民不满意") == 200
        # Merging takes both cases: neither may be another department's.
        assert act(lead, "merge", fumes, into_case_id=noise) == 403
        assert act(lead, "merge", ours, into_case_id=noise) == 403
        assert act(lead, "merge", noise, into_case_id=ours) == 403
        assert act(centre, "merge", fumes, into_case_id=noise) == 200
        assert act(lead, "notes", ours, note="本部门备注", public=True) == 200
    refused = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action).where(
        audit_log.c.actor.like("user:%"), audit_log.c.outcome == "refused",
        audit_log.c.target == f"case:{noise}")).scalars().all())
    assert len(refused) == 7  # every refusal on it is on the record (the merges of the other two are theirs)
    public_notes = city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.note).where(
        timeline.c.case_id == noise, timeline.c.event == "note")).scalars().all())
    assert public_notes == []


def test_staff_never_see_a_reporters_tracking_code(city: City) -> None:
    """The tracking code rates and reopens as the citizen: a handler who held it could confirm their own fix."""
    case_id = _case(city, "noise")  # 生态 (shengtai)
    token = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.token).where(
        reports.c.case_id == case_id)).scalar_one())
    handler = _bearer(city, "shengtai")
    with make_client(city) as api:
        for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/contacts"):
            shown = api.get(path, headers=handler)
            assert shown.status_code == 200 and token not in shown.text
        detail = api.get(f"/api/v1/cases/{case_id}", headers=handler).json()
        assert detail["reports"] and all("token" not in r for r in detail["reports"])
        api.cookies.set("wecity_session", handler["Authorization"].removeprefix("Bearer "))
        page = api.get(f"/staff/cases/{case_id}")
        assert page.status_code == 200 and token not in page.text
