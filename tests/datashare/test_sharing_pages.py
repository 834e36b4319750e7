"""The data sharing pages through the HTTP stack, in both languages: a department requests a dataset from
its catalogue page, the provider's supervisor grants part of it on the request page, each side sees it
in its lists, the coordinating department sees the overview (and nobody else does), and a citizen sees
who read their record."""

from __future__ import annotations

import re

import sqlalchemy as sa

from wecity.datashare.models import data_requests
from wecity.identity.applicants import sign_citizen
from wecity.identity.deps import CITIZEN_COOKIE

from ..conftest import City, make_client
from ..web.conftest import csrf_token, log_in
from .test_sharing import FURONG, _district, _index, _report

EN, ZH = {"Accept-Language": "en"}, {"Accept-Language": "zh-CN"}


def test_request_grant_and_see_it_on_every_side(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as api:
        case_id = _report(api, city, FURONG, "13911110001")
    furong = _district(city, case_id)
    with make_client(city) as requester:
        assert log_in(requester, "zhujian").status_code == 303
        dataset = requester.get("/data/city-cases", headers=EN).text
        assert 'href="/data/city-cases/request"' in dataset and "Shared on conditions" in dataset
        form = requester.get("/data/city-cases/request", headers=ZH)
        assert form.status_code == 200 and "5 个工作日内答复" in form.text
        token = csrf_token(form.text)
        # Nothing chosen: the error is on the page, what was typed is kept.
        empty = requester.post("/data/city-cases/request", headers=EN, data={
            "csrf_token": token, "purpose": "排查道路塌陷隐患", "days": "30"})
        assert empty.status_code == 400 and "排查道路塌陷隐患" in empty.text and 'id="request-error"' in empty.text
        sent = requester.post("/data/city-cases/request", headers=EN, follow_redirects=False, data={
            "csrf_token": token, "purpose": "排查道路塌陷隐患", "basis": "住建部门安全巡查职责",
            "fields": ["case_id", "district", "reporter_phone"], "clear_fields": ["reporter_phone"],
            "filter_district": f"{furong}", "days": "30"})
        assert sent.status_code == 303, sent.text
        path = sent.headers["location"].split("?")[0]
        request_id = int(path.rsplit("/", 1)[1])
        mine = requester.get("/sharing", headers=EN).text
        assert f'href="/sharing/requests/{request_id}"' in mine and "Awaiting decision" in mine
        # The requester may not decide its own request.
        page = requester.get(path, headers=EN).text
        assert 'id="grant-form"' not in page and 'id="withdraw"' in page
        refused = requester.post(f"{path}/decide", headers=EN, data={"csrf_token": csrf_token(page),
                                                                     "decision": "grant", "reasons": "x"})
        assert refused.status_code == 403

    with make_client(city) as provider:
        assert log_in(provider, "supervisor").status_code == 303
        incoming = provider.get("/sharing", headers=ZH).text
        assert 'id="incoming-requests"' in incoming and "待审核" in incoming
        page = provider.get(path, headers=EN).text
        assert 'id="grant-form"' in page and 'id="refuse-form"' in page
        granted = provider.post(f"{path}/decide", headers=EN, follow_redirects=False, data={
            "csrf_token": csrf_token(page), "decision": "grant", "fields": ["case_id", "reporter_phone"],
            "clear_fields": ["reporter_phone"], "filter_district": furong, "days": "30",
            "reasons": "最小必要：仅案件编号与联系电话"})
        assert granted.status_code == 303, granted.text
        decided = provider.get(path, headers=EN).text
        assert 'id="grant-state"' in decided and "In force" in decided and 'id="revoke-form"' in decided
        grant_id = int(re.search(r"Grant</span>|Grant #(\d+)", decided).group(1))  # type: ignore[union-attr]

    with make_client(city) as requester:
        log_in(requester, "zhujian")
        held = requester.get("/sharing", headers=EN).text
        assert f"/api/v1/data/city-cases?grant={grant_id}" in held
        rows = requester.get(f"/api/v1/data/city-cases?grant={grant_id}").json()
        assert rows["rows"] == [{"case_id": case_id, "reporter_phone": "13911110001"}]

    with make_client(city) as provider:
        log_in(provider, "supervisor")
        used = provider.get("/sharing", headers=EN).text
        assert 'id="accesses"' in used and "user:zhujian" in used
        # The dispatch centre is not the coordinating department in this city: no overview for it.
        assert provider.get("/sharing/overview", headers=EN).status_code == 403
    with make_client(city, data_coordinator="dispatch") as coordinator:
        log_in(coordinator, "supervisor")
        overview = coordinator.get("/sharing/overview", headers=ZH)
        assert overview.status_code == 200 and 'id="request-counts"' in overview.text and "全市数据共享情况" in overview.text

    _index(city)
    with make_client(city) as citizen:
        expires = int(city.clock.now().timestamp()) + 3600
        citizen.cookies.set(CITIZEN_COOKIE, sign_citizen(city.settings.secret_key, "13911110001", expires))
        uses = citizen.get("/my/data-uses", headers=ZH).text
        assert 'id="data-uses"' in uses and "排查道路塌陷隐患" in uses and f"您的反映（案件 {case_id}）" in uses
        citizen.cookies.set(CITIZEN_COOKIE, sign_citizen(city.settings.secret_key, "13911119999", expires))
        assert 'id="no-uses"' in citizen.get("/my/data-uses", headers=EN).text
    with make_client(city) as stranger:
        assert stranger.get("/my/data-uses", follow_redirects=False).headers["location"] == "/my?next=/my/data-uses"
        assert stranger.get(path, follow_redirects=False).status_code in (302, 303)
    with make_client(city) as other:
        log_in(other, "shuiwu")
        assert other.get(path, headers=EN).status_code == 403


def test_open_data_shows_a_sample_and_not_shared_data_no_request_button(catalogued: City) -> None:
    with make_client(catalogued) as client:
        log_in(client, "zhujian")
        areas = client.get("/data/district-boundaries", headers=EN).text
        assert 'id="sample"' in areas and "芙蓉区" in areas and 'id="request-data"' not in areas
        marriage = client.get("/data/marriage-registrations", headers=EN).text
        assert 'id="sample"' not in marriage and 'id="request-data"' not in marriage
        assert "not shared with other departments" in marriage


def test_unticking_a_field_drops_its_clear_box_and_a_filter_by_name_is_refused(catalogued: City) -> None:

    city = catalogued
    with make_client(city) as requester:
        log_in(requester, "zhujian")
        form = requester.get("/data/city-cases/request", headers=EN).text
        assert 'type="checkbox" name="fields" value="case_id" checked' not in form  # nothing asked for by default
        assert 'name="filter_district" value="430102"' in form  # districts offered by name
        sent = requester.post("/data/city-cases/request", headers=EN, follow_redirects=False, data={
            "csrf_token": csrf_token(form), "purpose": "道路安全巡查", "fields": ["case_id", "reporter_phone"],
            "clear_fields": ["reporter_phone", "description"], "days": "30"})
        assert sent.status_code == 303, sent.text
        path = sent.headers["location"].split("?")[0]
    with make_client(city) as provider:
        log_in(provider, "supervisor")
        page = provider.get(path, headers=EN).text
        granted = provider.post(f"{path}/decide", headers=EN, follow_redirects=False, data={
            "csrf_token": csrf_token(page), "decision": "grant", "fields": ["case_id"],
            "clear_fields": ["reporter_phone"], "days": "30", "reasons": "只需案件编号"})
        assert granted.status_code == 303, granted.text
        shown = provider.get(path, headers=EN).text
        assert "In force" in shown
    with make_client(city) as api:
        zhujian = {"Authorization": "Bearer " + _session_token(city, "zhujian")}
        wrong = api.post("/api/v1/data-requests", headers=zhujian, json={
            "dataset": "city-cases", "purpose": "道路安全巡查", "fields": ["case_id"], "days": 30,
            "row_filter": {"district": ["芙蓉区"]}})
        assert wrong.status_code == 400 and wrong.json()["code"] == "datashare.bad_filter"
        assert "430102" in wrong.text


def _session_token(city: City, username: str) -> str:
    import sqlalchemy as sa

    from wecity.identity.models import users
    from wecity.identity.service import start_session

    return city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))


def test_an_over_long_purpose_is_refused_and_kept_on_the_form(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as requester:
        log_in(requester, "zhujian")
        form = requester.get("/data/city-cases/request", headers=ZH).text
        purpose = "排查道路塌陷隐患" * 251  # 2,008 characters: the form allows 2,000
        refused = requester.post("/data/city-cases/request", headers=ZH, data={
            "csrf_token": csrf_token(form), "purpose": purpose, "basis": "住建部门安全巡查职责",
            "fields": ["case_id"], "days": "30"})
        assert refused.status_code == 400 and "内容过长：最多 2000 字（提交了 2008 字）" in refused.text
        assert purpose in refused.text  # shown again, so that it can be shortened
    assert city.db.read_sync(lambda c: c.execute(data_requests.select()).all()) == []


def test_who_used_my_data_is_paged_with_its_real_total_on_the_api_and_the_page(catalogued: City) -> None:

    from wecity.datashare import access
    from wecity.datashare.models import data_disclosures
    from wecity.datashare.queries import dataset
    from wecity.identity.audit import record_audit
    from wecity.web.my_reports import USES_PAGE

    city = catalogued
    phone = "13911119999"
    subject = access.subject_key(city.settings.secret_key, phone)
    readings = USES_PAGE + 5

    def read_often(conn: sa.Connection) -> None:
        d = dataset(conn, "city-cases")
        audit_id = record_audit(conn, at=city.clock.now(), actor="user:t", action="data.read",
                                       target="dataset:city-cases")
        access_id = access._access_row(conn, d, audit_id=audit_id, at=city.clock.now(), grant_id=None,
                                       reader="dispatch", actor="user:t", kind="publisher", purpose="own", rows=1,
                                       outcome="ok", fields=["case_id"])
        conn.execute(data_disclosures.insert(), [{"access_id": access_id, "subject": subject, "record": f"case:{i}"}
                                                 for i in range(readings)])

    city.db.write_sync(read_often)
    token = sign_citizen(city.settings.secret_key, phone, int(city.clock.now().timestamp()) + 3600)
    with make_client(city) as client:
        headers = {"Authorization": f"Bearer {token}"}
        first = client.get("/api/v1/my/data-uses", params={"limit": 100}, headers=headers).json()
        rest = client.get("/api/v1/my/data-uses", params={"limit": 100, "offset": 100}, headers=headers).json()
        assert (first["count"], len(first["uses"]), rest["count"], len(rest["uses"])) == (readings, 100, readings, 5)
        client.cookies.set(CITIZEN_COOKIE, token)
        shown = client.get("/my/data-uses", headers=EN).text
        assert shown.count('class="case-card"') == USES_PAGE and f"of {readings}" in shown
        assert f'href="/my/data-uses?offset={USES_PAGE}"' in shown
        earlier = client.get(f"/my/data-uses?offset={USES_PAGE}", headers=EN).text
        assert earlier.count('class="case-card"') == 5 and 'id="earlier-uses"' not in earlier


def test_a_field_chosen_to_limit_rows_by_is_asked_for_with_the_rest(catalogued: City) -> None:
    """The request form's district filter without the district field ticked: rows can be limited only by a
    field the grant shows, so the field is asked for too, not refused with an error about the form."""
    city = catalogued
    with make_client(city) as api:
        case_id = _report(api, city, FURONG, "13911110002")
    furong = _district(city, case_id)
    with make_client(city) as requester:
        assert log_in(requester, "zhujian").status_code == 303
        form = requester.get("/data/city-cases/request", headers=EN)
        sent = requester.post("/data/city-cases/request", headers=EN, follow_redirects=False, data={
            "csrf_token": csrf_token(form.text), "purpose": "排查道路塌陷隐患", "basis": "住建部门安全巡查职责",
            "fields": ["case_id", "category"], "filter_district": f"{furong}", "days": "30"})
        assert sent.status_code == 303, sent.text[-800:]
        # With no field ticked nothing is added: the officer asked for no data, and is told so.
        none = requester.post("/data/city-cases/request", headers=EN, data={
            "csrf_token": csrf_token(form.text), "purpose": "排查道路塌陷隐患", "basis": "住建部门安全巡查职责",
            "filter_district": f"{furong}", "days": "30"})
        assert none.status_code == 400 and 'id="request-error"' in none.text
    fields = city.db.read_sync(lambda c: c.execute(sa.select(data_requests.c.fields)
                                                   .order_by(data_requests.c.id.desc()).limit(1)).scalar_one())
    assert list(fields) == ["case_id", "category", "district"]


def test_an_older_open_request_stays_on_the_provider_s_to_do_list_and_every_list_is_paged(catalogued: City) -> None:
    from wecity.web.sharing import SHARING_PAGE

    from .test_sharing import ASKED, _staff

    city = catalogued
    with make_client(city) as api:
        made = api.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian"))
        assert made.status_code == 201, made.text
    open_id = made.json()["id"]
    answered = 200 + 1  # newer than the open one, and more than a list used to show

    def answer_many(conn: sa.Connection) -> None:
        row = dict(conn.execute(data_requests.select().where(data_requests.c.id == open_id)).one()._mapping)
        del row["id"]
        conn.execute(data_requests.insert(), [{**row, "state": "refused", "decided_at": row["submitted_at"],
                                               "decided_by": "supervisor", "reasons": "不符合"}] * answered)

    city.db.write_sync(answer_many)
    with make_client(city) as provider:
        log_in(provider, "supervisor")
        shown = provider.get("/sharing", headers=EN).text
        to_decide = shown.split('id="incoming-requests"')[1].split("</table>")[0]
        assert f'href="/sharing/requests/{open_id}"' in to_decide
        assert f"Requests we have answered ({answered})" in shown
        decided = shown.split('id="decided-requests"')[1].split("</table>")[0]
        assert decided.count("<tr") == SHARING_PAGE + 1  # the heading's row and one page
        assert f'href="/sharing?decided={SHARING_PAGE}#answered"' in shown
        last = provider.get(f"/sharing?decided={answered - 1}", headers=ZH).text
        assert last.split('id="decided-requests"')[1].split("</table>")[0].count("<tr") == 2
        assert 'id="decided-earlier"' not in last and 'href="/sharing#answered"' in last
    with make_client(city) as requester:
        log_in(requester, "zhujian")
        ours = requester.get("/sharing", headers=EN).text
        assert f"1 to {SHARING_PAGE} of {answered + 1}, newest first." in ours
        assert f'href="/sharing?made={SHARING_PAGE}#ours"' in ours


def test_a_refusal_for_a_field_outside_the_grant_or_a_filter_on_a_masked_one_is_named_in_the_access_log(
        catalogued: City) -> None:
    from .test_grant_scope import _granted

    city = catalogued
    with make_client(city) as api:
        zhujian, grant_id = _granted(api, city, {
            "dataset": "city-cases", "purpose": "道路安全巡查", "fields": ["case_id", "reporter_phone"], "days": 30},
            {"decision": "grant", "reasons": "符合条件"})
        outside = api.get("/api/v1/data/city-cases", params={"fields": "case_id,category"}, headers=zhujian)
        masked = api.get("/api/v1/data/city-cases", params={"reporter_phone": "13911110001"}, headers=zhujian)
        assert (outside.status_code, masked.status_code) == (403, 403)
    with make_client(city) as provider:
        log_in(provider, "supervisor")
        used = provider.get("/sharing", headers=EN).text.split('id="accesses"')[1]
        assert "refused: field outside the grant" in used and "refused: filter on a masked field" in used
        assert "outside_grant" not in used and "masked_filter" not in used


def test_sharing_pages_answer_404_for_an_id_past_the_database_s_integers(catalogued: City) -> None:
    from .test_sharing import ASKED, _staff

    city = catalogued
    with make_client(city) as api:
        made = api.post("/api/v1/data-requests", json=ASKED, headers=_staff(city, "zhujian"))
        assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    with make_client(city) as provider:
        log_in(provider, "supervisor")
        token = csrf_token(provider.get(f"/sharing/requests/{request_id}", headers=EN).text)
        for huge in (2**31, 3_000_000_000, 2**63):
            assert provider.get(f"/sharing/requests/{huge}", headers=EN).status_code == 404
            assert provider.post(f"/sharing/requests/{huge}/withdraw", headers=EN,
                                 data={"csrf_token": token}).status_code == 404
            for action, form in (("revoke", {"reason": "停止共享"}), ("delay", {"days": "30", "basis": "侦查需要"})):
                r = provider.post(f"/sharing/requests/{request_id}/{action}", headers=EN,
                                  data={"csrf_token": token, "grant": str(huge), **form})
                assert r.status_code == 404, (action, huge, r.status_code)
