"""Data sharing end to end: a department requests a dataset, the provider grants part of it, the data API
serves exactly the grant (fields, rows, masking, expiry, revocation, its own rate limit), every call is
logged, and the people the records are about see who read them."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.cases.models import cases
from wecity.datashare.models import data_accesses, data_requests
from wecity.geo.models import areas
from wecity.identity.applicants import sign_citizen
from wecity.identity.audit import verify_chain
from wecity.identity.models import audit_log, users
from wecity.identity.service import start_session

from ..conftest import City, make_client

FURONG = (28.1960, 112.9770)  # 五一广场, 芙蓉区
YUELU = (28.1800, 112.9000)  # 岳麓区
ASKED = {"dataset": "city-cases", "purpose": "排查城区道路塌陷隐患（住建部门安全巡查）",
         "basis": "《城镇燃气管理条例》第六条；住建部门道路安全巡查职责",
         "fields": ["case_id", "category", "district", "reporter_phone"], "clear_fields": ["reporter_phone"],
         "row_filter": {}, "days": 60}


def _staff(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def _citizen(city: City, phone: str) -> dict[str, str]:
    expires = int(city.clock.now().timestamp()) + 3600 * 24 * 90
    return {"Authorization": f"Bearer {sign_citizen(city.settings.secret_key, phone, expires)}"}


def _report(client: Any, city: City, where: tuple[float, float], phone: str) -> int:
    response = client.post("/open311/v2/requests.json", data={
        "api_key": city.api_key, "service_code": "pothole", "lat": where[0], "long": where[1],
        "description": "路面塌陷", "phone": phone})
    assert response.status_code == 200, response.text
    return int(response.json()[0]["service_request_id"])


def _index(city: City) -> None:
    """What the runner does moments after a reading: index its records under the people they are about."""
    from wecity.datashare.disclosures import index_pending

    city.db.write_sync(lambda c: index_pending(c, secret_key=city.settings.secret_key, now=city.clock.now()))


def _district(city: City, case_id: int) -> str:
    return city.db.read_sync(lambda c: c.execute(sa.select(areas.c.code).select_from(
        cases.join(areas, areas.c.id == cases.c.area_id)).where(cases.c.id == case_id)).scalar_one())


def _reports(client: Any, city: City) -> tuple[list[int], list[int]]:
    furong = [_report(client, city, FURONG, "13911110001"), _report(client, city, (28.2000, 112.9900), "+86 139 1111 0002")]
    yuelu = [_report(client, city, YUELU, "13911110003")]
    return furong, yuelu


def test_a_conditional_dataset_granted_in_part_is_served_within_the_grant_logged_and_shown_to_the_citizen(
        catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        furong, yuelu = _reports(client, city)
        furong_code = _district(city, furong[0])
        assert _district(city, yuelu[0]) != furong_code
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
        # No grant yet: refused, and the refusal is logged.
        assert client.get("/api/v1/data/city-cases", headers=zhujian).json()["details"]["reason"] == "no_grant"

        made = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian)
        assert made.status_code == 201, made.text
        request = made.json()
        assert request["state"] == "submitted" and request["provider"] == "dispatch"
        assert request["due_on"] > city.clock.now().date().isoformat()  # 5 working days for a conditional one

        # The provider may narrow what was asked, never widen it.
        wider = client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider, json={
            "decision": "grant", "reasons": "符合共享条件", "fields": ["case_id", "description"]})
        assert wider.status_code == 400 and wider.json()["code"] == "datashare.grant_wider"
        decided = client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider, json={
            "decision": "grant", "reasons": "仅限芙蓉区试点范围，字段按最小必要原则", "basis": "长沙市政务数据共享管理办法",
            "fields": ["case_id", "reporter_phone"], "clear_fields": ["reporter_phone"],
            "row_filter": {"district": [furong_code]}, "days": 30})
        assert decided.status_code == 200, decided.text
        grant = decided.json()["grant"]
        assert decided.json()["state"] == "granted" and grant["fields"] == ["case_id", "reporter_phone"]

        # The requester's call returns the two granted fields, for the one district's rows.
        served = client.get("/api/v1/data/city-cases", headers=zhujian)
        assert served.status_code == 200, served.text
        body = served.json()
        assert body["grant"] == grant["id"] and body["count"] == 2
        assert [set(r) for r in body["rows"]] == [{"case_id", "reporter_phone"}] * 2
        assert sorted(r["case_id"] for r in body["rows"]) == sorted(furong)
        assert {r["reporter_phone"] for r in body["rows"]} == {"13911110001", "+86 139 1111 0002"}
        as_lists = client.get("/api/v1/data/city-cases", params={"records_format": "lists"}, headers=zhujian).json()
        assert sorted(as_lists["rows"]) == sorted([[r["case_id"], r["reporter_phone"]] for r in body["rows"]])
        # A field outside the grant, or another district's rows, are not to be had by asking: the district
        # limits the rows but is not a granted field, so it is no search key either. Both refusals are logged.
        outside = client.get("/api/v1/data/city-cases", params={"fields": "case_id,description"}, headers=zhujian)
        assert outside.status_code == 403 and outside.json()["code"] == "datashare.outside_grant"
        other = client.get("/api/v1/data/city-cases", params={"district": _district(city, yuelu[0])}, headers=zhujian)
        assert other.status_code == 403 and other.json()["code"] == "datashare.outside_grant"

        # After the 30 days: 403, logged like every call.
        city.clock.advance(days=30, minutes=1)
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")  # sessions end sooner
        expired = client.get("/api/v1/data/city-cases", headers=zhujian)
        assert expired.status_code == 403 and expired.json()["details"]["reason"] == "expired"

        # The people the records are about see the reading; the one whose record was not read sees none.
        _index(city)
        mine = client.get("/api/v1/my/data-uses", headers=_citizen(city, "13911110002")).json()
        assert [(u["reader"], u["record"], u["dataset"]) for u in mine["uses"]] == [
            ("zhujian", f"case:{furong[1]}", "city-cases")] * 2  # two readings returned their record
        assert mine["uses"][0]["purpose"] == ASKED["purpose"] and mine["uses"][0]["reader_zh"]
        assert client.get("/api/v1/my/data-uses", headers=_citizen(city, "13911110003")).json()["count"] == 0
        assert client.get("/api/v1/my/data-uses").status_code == 401

        # The grant's access log, for the provider.
        log = client.get(f"/api/v1/data-grants/{grant['id']}", headers=provider).json()
        assert [(a["outcome"], a["rows"]) for a in log["accesses"]["items"]] == [
            ("expired", 0), ("outside_grant", 0), ("outside_grant", 0), ("ok", 2), ("ok", 2)]

    # Every call is in the audit log, chained: the refusals too.
    reads = city.db.read_sync(lambda c: [(r.outcome, (r.detail or {}).get("grant"), (r.detail or {}).get("records"))
                                         for r in c.execute(sa.select(audit_log).where(audit_log.c.action == "data.read")
                                                            .order_by(audit_log.c.id))])
    assert [r[0] for r in reads] == ["denied", "ok", "ok", "denied", "denied", "denied"]
    assert reads[1][1] == grant["id"] and sorted(reads[1][2]) == sorted(f"case:{i}" for i in furong)
    assert city.db.read_sync(verify_chain).intact
    counted = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(data_accesses)).scalar())
    assert counted == 6


def test_personal_fields_come_masked_unless_the_grant_names_them(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        _reports(client, city)
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
        asked = {**ASKED, "clear_fields": []}
        request = client.post("/api/v1/data-requests", json=asked, headers=zhujian).json()
        client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider,
                    json={"decision": "grant", "reasons": "符合条件"}).raise_for_status()
        body = client.get("/api/v1/data/city-cases", headers=zhujian).json()
        assert body["masked"] == ["reporter_phone"]
        assert sorted(r["reporter_phone"] for r in body["rows"]) == ["139****0001", "139****0002", "139****0003"]
        # A masked field is no search key: a known number would find that person's cases.
        searched = client.get("/api/v1/data/city-cases", params={"reporter_phone": "13911110003"}, headers=zhujian)
        assert searched.status_code == 403 and searched.json()["code"] == "datashare.outside_grant"
        assert "reporter_phone" in searched.json()["title"]
        # The provider's own staff read their own data in clear, and that is logged too.
        own = client.get("/api/v1/data/city-cases", headers=_staff(city, "dispatcher")).json()
        assert own["masked"] == [] and "13911110001" in {r["reporter_phone"] for r in own["rows"]}
        mine = client.get("/api/v1/data/city-cases", params={"reporter_phone": "13911110001"},
                          headers=_staff(city, "dispatcher")).json()
        assert [r["reporter_phone"] for r in mine["rows"]] == ["13911110001"]  # in clear, a filter like any
        # Times as the database writes them, the same on SQLite and PostgreSQL: ISO 8601, UTC, milliseconds.
        opened = city.clock.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["created_at"]) for r in own["rows"])
        assert own["rows"][0]["created_at"].startswith(opened) and own["rows"][0]["closed_at"] is None
        # The total, whether the page shows it (a last page) or it must be counted (a page with more after
        # it, a page past the end); none when not asked for.
        for params, count, rows in (({"limit": 1}, 3, 1), ({"limit": 1, "offset": 1}, 3, 1), ({"limit": 1, "offset": 2}, 3, 1),
                                    ({"limit": 1, "offset": 5}, 3, 0), ({"limit": 3}, 3, 3),
                                    ({"limit": 1, "include_total": "false"}, None, 1),
                                    ({"limit": 5, "include_total": "false"}, None, 3)):
            paged = client.get("/api/v1/data/city-cases", params=params, headers=zhujian).json()
            assert (paged["count"], len(paged["rows"])) == (count, rows), params


def test_refusal_needs_reasons_and_basis_and_only_the_providers_supervisors_decide(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        zhujian = _staff(city, "zhujian")
        request = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()
        path = f"/api/v1/data-requests/{request['id']}/decision"
        assert client.post(path, headers=zhujian, json={"decision": "grant", "reasons": "x"}).status_code == 403
        assert client.post(path, headers=_staff(city, "dispatcher"), json={"decision": "grant"}).status_code == 403
        bare = client.post(path, headers=_staff(city, "supervisor"), json={"decision": "refuse"})
        assert bare.status_code == 400 and bare.json()["code"] == "datashare.reasons_required"
        refused = client.post(path, headers=_staff(city, "supervisor"), json={
            "decision": "refuse", "reasons": "申请用途与所需个人信息不相称", "basis": "《个人信息保护法》第六条"})
        assert refused.status_code == 200 and refused.json()["state"] == "refused"
        assert [e["event"] for e in refused.json()["events"]] == ["submitted", "refused"]
        again = client.post(path, headers=_staff(city, "supervisor"), json={"decision": "grant", "reasons": "x"})
        assert again.status_code == 409
        # A third department sees neither the request nor the grant lists of others.
        assert client.get(f"/api/v1/data-requests/{request['id']}", headers=_staff(city, "shuiwu")).status_code == 403
        assert client.get("/api/v1/data-requests", params={"side": "all"},
                          headers=_staff(city, "shuiwu")).status_code == 403
        # Resources not shared, open data and one's own data are not requested.
        for name, code, who in (("marriage-registrations", "datashare.not_shared", zhujian),
                                ("business-licences", "datashare.open_data", zhujian),
                                ("city-cases", "datashare.own_dataset", _staff(city, "dispatcher"))):
            answer = client.post("/api/v1/data-requests", headers=who, json={**ASKED, "dataset": name,
                                                                             "fields": ["number"] if name != "city-cases" else ["case_id"],
                                                                             "clear_fields": []})
            assert answer.status_code in (404, 409) and answer.json()["code"] in (code, "not_found"), answer.text


def test_revoked_grant_is_refused_and_the_grant_has_its_own_rate_limit(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
        request = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()
        grant = client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider, json={
            "decision": "grant", "reasons": "符合条件", "rate_limit": "2/minute"}).json()["grant"]
        assert client.get("/api/v1/data/city-cases", headers=zhujian).status_code == 200
        assert client.get("/api/v1/data/city-cases", headers=zhujian).status_code == 200
        limited = client.get("/api/v1/data/city-cases", headers=zhujian)
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        city.clock.advance(minutes=1)
        path = f"/api/v1/data-grants/{grant['id']}/revoke"
        assert client.post(path, headers=zhujian, json={"reason": "x"}).status_code == 403
        revoked = client.post(path, headers=provider, json={"reason": "巡查任务已结束"})
        assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
        after = client.get("/api/v1/data/city-cases", headers=zhujian)
        assert after.status_code == 403 and after.json()["details"]["reason"] == "revoked"


def test_a_delayed_disclosure_shows_the_reading_once_the_delay_ends_and_is_itself_logged(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        _reports(client, city)
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
        request = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()
        grant = client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider, json={
            "decision": "grant", "reasons": "符合条件"}).json()["grant"]
        unbased = client.post(f"/api/v1/data-grants/{grant['id']}/delay-disclosure", headers=provider,
                              json={"days": 10, "basis": ""})
        assert unbased.status_code == 400
        delayed = client.post(f"/api/v1/data-grants/{grant['id']}/delay-disclosure", headers=provider,
                              json={"days": 10, "basis": "《刑事诉讼法》第一百五十二条：侦查期间保密"})
        assert delayed.status_code == 200
        client.get("/api/v1/data/city-cases", headers=zhujian).raise_for_status()
        _index(city)
        citizen = _citizen(city, "13911110001")
        assert client.get("/api/v1/my/data-uses", headers=citizen).json()["count"] == 0
        city.clock.advance(days=10, seconds=1)
        assert client.get("/api/v1/my/data-uses", headers=citizen).json()["count"] == 1
    logged = city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.detail).where(
        audit_log.c.action == "data_grant.delay_disclosure")).scalar_one())
    assert "刑事诉讼法" in logged["basis"]


def test_a_request_unanswered_after_its_due_day_is_escalated_to_the_coordinating_department(catalogued: City) -> None:
    from wecity.datashare.requests import check_clocks

    city = catalogued
    with make_client(city) as client:
        request = client.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian")).json()
    assert city.db.write_sync(lambda c: check_clocks(c, city.clock.now(), "dispatch")) == 0
    city.clock.advance(days=9)  # 5 working days and a weekend, and more
    assert city.db.write_sync(lambda c: check_clocks(c, city.clock.now(), "dispatch")) == 1
    assert city.db.write_sync(lambda c: check_clocks(c, city.clock.now(), "dispatch")) == 0  # once
    with make_client(city) as client:
        seen = client.get(f"/api/v1/data-requests/{request['id']}", headers=_staff(city, "supervisor")).json()
        assert seen["escalated_at"] and seen["overdue"] and [e["event"] for e in seen["events"]][-1] == "escalated"


def test_who_may_call_each_sharing_endpoint(catalogued: City) -> None:
    """The rights matrix: nobody signed in gets 401 everywhere; a third department gets 403 on what is
    between two others; the requester cannot decide, revoke or delay; the provider cannot withdraw."""
    city = catalogued
    with make_client(city) as client:
        zhujian, provider, third = _staff(city, "zhujian"), _staff(city, "supervisor"), _staff(city, "shuiwu")
        request = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()
        rid = request["id"]
        refused_first = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()["id"]
        assert client.post(f"/api/v1/data-requests/{refused_first}/withdraw", headers=provider).status_code == 403
        grant = client.post(f"/api/v1/data-requests/{rid}/decision", headers=provider,
                            json={"decision": "grant", "reasons": "符合条件"}).json()["grant"]["id"]
        calls = [
            ("POST", "/api/v1/data-requests", ASKED), ("GET", "/api/v1/data-requests", None),
            ("GET", f"/api/v1/data-requests/{rid}", None),
            ("POST", f"/api/v1/data-requests/{rid}/decision", {"decision": "refuse", "reasons": "x", "basis": "y"}),
            ("POST", f"/api/v1/data-requests/{rid}/withdraw", None), ("GET", "/api/v1/data-grants", None),
            ("GET", f"/api/v1/data-grants/{grant}", None), ("POST", f"/api/v1/data-grants/{grant}/revoke", {"reason": "x"}),
            ("POST", f"/api/v1/data-grants/{grant}/delay-disclosure", {"days": 5, "basis": "x"}),
            ("GET", "/api/v1/data-accesses", None), ("GET", "/api/v1/my/data-uses", None)]
        for method, path, body in calls:
            assert client.request(method, path, json=body).status_code == 401, path
        third_party = [c for c in calls if c[1].startswith((f"/api/v1/data-requests/{rid}", f"/api/v1/data-grants/{grant}"))]
        assert len(third_party) == 6
        for method, path, body in third_party:
            assert client.request(method, path, json=body, headers=third).status_code == 403, path
        for method, path, body in [c for c in calls if c[1].endswith(("/decision", "/revoke", "/delay-disclosure"))]:
            assert client.request(method, path, json=body, headers=zhujian).status_code == 403, path
        assert client.get("/api/v1/data-accesses", params={"side": "all"}, headers=third).status_code == 403
        assert client.get("/api/v1/data-grants", params={"side": "all"}, headers=third).status_code == 403
        # A department's own lists hold only what concerns it.
        assert client.get("/api/v1/data-requests", headers=third).json()["count"] == 0
        assert client.get("/api/v1/data-grants", headers=third).json()["count"] == 0
        mine = client.get("/api/v1/data-accesses", params={"side": "reader"}, headers=zhujian).json()
        assert mine["count"] == 0
        with make_client(city, data_coordinator="shuiwu") as coordinated:
            everything = coordinated.get("/api/v1/data-requests", params={"side": "all"}, headers=third).json()
            assert everything["count"] == 2
            assert coordinated.get(f"/api/v1/data-requests/{rid}", headers=third).status_code == 200


def test_readings_are_indexed_for_the_people_concerned_once_from_the_audit_log(catalogued: City) -> None:
    from wecity.datashare.models import data_disclosures

    city = catalogued
    with make_client(city) as client:
        furong, yuelu = _reports(client, city)
        zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
        request = client.post("/api/v1/data-requests", json=ASKED, headers=zhujian).json()
        client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=provider,
                    json={"decision": "grant", "reasons": "符合条件"}).raise_for_status()
        assert client.get("/api/v1/data/city-cases", headers=zhujian).json()["count"] == 3

    def state(conn: sa.Connection) -> tuple[list[object], list[tuple[str, str]]]:
        pending = list(conn.execute(sa.select(data_accesses.c.indexed_at).order_by(data_accesses.c.id)).scalars())
        rows = [(r.record, r.subject) for r in conn.execute(sa.select(data_disclosures).order_by(data_disclosures.c.id))]
        return pending, rows

    pending, rows = city.db.read_sync(state)
    assert pending[-1] is None and rows == []  # the answer went out; the index follows
    _index(city)
    pending, rows = city.db.read_sync(state)
    assert all(p is not None for p in pending)
    assert sorted(r for r, _ in rows) == sorted(f"case:{i}" for i in furong + yuelu)
    assert len({s for _, s in rows}) == 3 and not any("139" in s for _, s in rows)  # keyed hashes, not numbers
    _index(city)
    assert city.db.read_sync(state)[1] == rows  # indexed once


def test_the_coordinating_department_urges_an_open_request_and_nobody_else_may(catalogued: City) -> None:
    city = catalogued
    with make_client(city, data_coordinator="shuiwu") as client:
        request = client.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian")).json()
        path = f"/api/v1/data-requests/{request['id']}/urge"
        assert client.post(path, json={"note": "请尽快答复"}, headers=_staff(city, "zhujian")).status_code == 403
        urged = client.post(path, json={"note": "请尽快答复"}, headers=_staff(city, "shuiwu"))
        assert urged.status_code == 200 and urged.json()["events"][-1]["event"] == "urged"
        client.post(f"/api/v1/data-requests/{request['id']}/withdraw", headers=_staff(city, "zhujian")).raise_for_status()
        assert client.post(path, json={}, headers=_staff(city, "shuiwu")).status_code == 409


def test_masking_applies_to_tables_read_in_memory_too(catalogued: City) -> None:
    """Certificates are filtered in memory, not in SQL: their personal fields are masked all the same."""
    from wecity.govservice import certificates
    from wecity.identity.applicants import create_applicant

    city = catalogued
    now = city.clock.now()

    def issue(conn: sa.Connection) -> None:
        key = certificates.signing_key(conn, city.settings.var_dir)
        holder = create_applicant(conn, kind="citizen", display_name="王小明", phone="13911112222", now=now)
        certificates.issue(conn, key=key, type="residence_permit_endorsement", name_zh="居住证签注",
                           name_en="Residence permit endorsement", holder_id=holder.id, holder_name="王小明",
                           application_id=None, application_number=None, department_code="gongan",
                           department_name_zh="市公安局", department_name_en="Public Security Bureau",
                           fields={"holder_name": "王小明", "id_number": "430102199001011234", "district": "430102"},
                           valid_days=None, now=now)

    city.db.write_sync(issue)
    with make_client(city) as client:
        zhujian, admin = _staff(city, "zhujian"), _staff(city, "admin")
        request = client.post("/api/v1/data-requests", headers=zhujian, json={
            "dataset": "residence-permits", "purpose": "核对保障房申请人居住情况", "fields": ["number", "holder_name",
                                                                               "id_number"], "days": 10}).json()
        client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=admin,
                    json={"decision": "grant", "reasons": "保障房资格核对"}).raise_for_status()
        body = client.get("/api/v1/data/residence-permits", headers=zhujian).json()
        assert body["masked"] == ["holder_name", "id_number"]
        assert [(r["holder_name"], r["id_number"]) for r in body["rows"]] == [("王**", "4301**********1234")]
    _index(city)
    with make_client(city) as client:
        uses = client.get("/api/v1/my/data-uses", headers=_citizen(city, "13911112222")).json()["uses"]
        assert [u["record"].split(":")[0] for u in uses] == ["certificate"]


def test_the_enterprise_register_is_a_dataset_served_within_its_grant(catalogued: City) -> None:
    """Enterprise records (wecity.enterprise) through the data API: a department granted two fields for one
    district reads only those, with the derived size class; every reading names the enterprises read."""
    from wecity.enterprise.codes import uscc_check_character
    from wecity.enterprise.register import save_enterprise

    city = catalogued
    now = city.clock.now()

    def firms(conn: sa.Connection) -> None:
        for n, (district, employees) in enumerate((("430102", 40), ("430102", 5), ("430104", 300))):
            first17 = f"91{district}MA4T00{n:03d}"
            save_enterprise(conn, {"credit_code": first17 + uscc_check_character(first17), "name": f"长沙测试{n}有限公司",
                                   "industry_code": "I6513", "district": district, "employees": employees,
                                   "revenue": employees * 40.0}, now=now)

    city.db.write_sync(firms)
    with make_client(city) as client:
        renshe, admin = _staff(city, "zhujian"), _staff(city, "admin")
        assert client.get("/api/v1/data/enterprise-register", headers=renshe).status_code == 403
        request = client.post("/api/v1/data-requests", headers=renshe, json={
            "dataset": "enterprise-register", "purpose": "稳岗返还资格核对（住建领域企业）",
            "fields": ["credit_code", "size_class", "district"], "row_filter": {"district": ["430102"]},
            "days": 30}).json()
        decided = client.post(f"/api/v1/data-requests/{request['id']}/decision", headers=admin,
                              json={"decision": "grant", "reasons": "政策核对", "fields": ["credit_code", "size_class"]})
        assert decided.status_code == 200, decided.text
        body = client.get("/api/v1/data/enterprise-register", headers=renshe).json()
        assert body["fields"] == ["credit_code", "size_class"] and body["count"] == 2
        assert sorted(r["size_class"] for r in body["rows"]) == ["micro", "small"]
        assert client.get("/api/v1/data/enterprise-register", params={"fields": "revenue"},
                          headers=renshe).status_code == 403

    def last_reading(conn: sa.Connection) -> list[str]:
        detail = conn.execute(sa.select(audit_log.c.detail).where(audit_log.c.action == "data.read",
                                                                  audit_log.c.outcome == "ok")
                              .order_by(audit_log.c.id.desc()).limit(1)).scalar_one()
        return sorted(detail["records"])

    assert [r.split(":")[0] for r in city.db.read_sync(last_reading)] == ["enterprise", "enterprise"]


def test_a_grant_and_a_refusal_at_the_same_moment_are_taken_one_after_the_other(catalogued: City) -> None:
    """On PostgreSQL two supervisors answering at once: the request row is locked, so the second answer
    finds it decided (409) instead of leaving a refused request with a live grant."""
    import threading

    from wecity.core.errors import Conflict
    from wecity.datashare import requests
    from wecity.identity.service import _staff_user

    city = catalogued
    if city.backend != "postgres":
        pytest.skip("SQLite has one writer: two answers cannot overlap there")
    with make_client(city) as client:
        request_id = client.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian")).json()["id"]
    lead = city.db.read_sync(lambda c: _staff_user(c.execute(sa.select(users).where(users.c.username == "supervisor")).one()))
    now = city.clock.now()
    outcomes: list[str] = []
    first_holds = threading.Event()

    def refuse() -> None:
        first_holds.wait(10)
        try:
            city.db.write_sync(lambda c: requests.decide(c, request_id, lead, {
                "decision": "refuse", "reasons": "不符合条件", "basis": "第六条"}, now=now))
            outcomes.append("refused")
        except Conflict:
            outcomes.append("conflict")

    second = threading.Thread(target=refuse)
    second.start()
    with city.db.engine.begin() as conn:
        grant_id = requests.decide(conn, request_id, lead, {"decision": "grant", "reasons": "符合条件"}, now=now)
        first_holds.set()
        second.join(1.0)  # the refusal waits on the lock while the grant's transaction is open
        assert second.is_alive()
    second.join(10)
    assert grant_id is not None and outcomes == ["conflict"]
    state = city.db.read_sync(lambda c: c.execute(sa.select(data_requests.c.state).where(
        data_requests.c.id == request_id)).scalar_one())
    assert state == "granted"


def test_two_revocations_or_two_uploads_at_the_same_moment_are_taken_one_after_the_other(catalogued: City) -> None:
    """On PostgreSQL: the grant's (or the dataset's) row is locked, so a second revocation finds the grant
    revoked (409) and a second upload waits and replaces the rows after the first, instead of a 500."""
    import threading

    from wecity.core.errors import Conflict
    from wecity.datashare import queries, requests, uploads
    from wecity.identity.service import _staff_user

    city = catalogued
    if city.backend != "postgres":
        pytest.skip("SQLite has one writer: two writes cannot overlap there")
    with make_client(city) as client:
        made = client.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian")).json()
        grant_id = client.post(f"/api/v1/data-requests/{made['id']}/decision", headers=_staff(city, "supervisor"),
                               json={"decision": "grant", "reasons": "符合条件"}).json()["grant"]["id"]
    lead = city.db.read_sync(lambda c: _staff_user(c.execute(sa.select(users).where(users.c.username == "supervisor")).one()))
    now = city.clock.now()
    outcomes: list[str] = []
    first_holds = threading.Event()

    def revoke_too() -> None:
        first_holds.wait(10)
        try:
            city.db.write_sync(lambda c: requests.revoke(c, grant_id, lead, "第二次撤销", now=now))
            outcomes.append("revoked")
        except Conflict:
            outcomes.append("conflict")

    second = threading.Thread(target=revoke_too)
    second.start()
    with city.db.engine.begin() as conn:
        requests.revoke(conn, grant_id, lead, "第一次撤销", now=now)
        first_holds.set()
        second.join(1.0)
        assert second.is_alive()
    second.join(10)
    assert outcomes == ["conflict"]

    d = city.db.read_sync(lambda c: queries.dataset(c, "service-standards"))
    row = {f["name"]: None for f in d["fields"]}
    failures: list[Exception] = []
    first_holds.clear()

    def upload_too() -> None:
        first_holds.wait(10)
        try:
            city.db.write_sync(lambda c: uploads.replace_rows(c, d, [{**row, "category": "second"}], now=now))
        except Exception as exc:  # noqa: BLE001 -- the failure is what is asserted
            failures.append(exc)

    second = threading.Thread(target=upload_too)
    second.start()
    with city.db.engine.begin() as conn:
        uploads.replace_rows(conn, d, [{**row, "category": "first"}], now=now)
        first_holds.set()
        second.join(1.0)
        assert second.is_alive()
    second.join(10)
    assert failures == []
    assert [r["category"] for r in city.db.read_sync(lambda c: uploads.uploaded_rows(c, d["id"]))] == ["second"]
