"""The service loop's HTTP API: every verb's rights (the applicant, another applicant, a reviewer of another
department, anonymous), its errors as problem+json, and the public catalogue and certificate check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.identity.applicants import sign_citizen
from wecity.identity.models import audit_log
from wecity.identity.service import StaffUser, start_session

from ..conftest import make_client
from .conftest import CREDIT_CODE, Services


def citizen_headers(s: Services, phone: str) -> dict[str, str]:
    expires = int(s.city.clock.now().timestamp()) + 600
    return {"Authorization": f"Bearer {sign_citizen(s.city.settings.secret_key, phone, expires)}"}


def staff_headers(s: Services, user: StaffUser) -> dict[str, str]:
    token = s.city.db.write_sync(lambda c: start_session(c, user.id, s.city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as client:
        yield client


def _licence(api: TestClient, s: Services) -> str:
    me = citizen_headers(s, "13912345678")
    app = api.post("/api/v1/applications", json={"matter_code": "T-BIZ"}, headers=me).json()
    api.patch(f"/api/v1/applications/{app['id']}", json={"form_data": {"business_name": "明记小吃",
                                                                      "credit_code": CREDIT_CODE}}, headers=me)
    assert api.post(f"/api/v1/applications/{app['id']}/submit", headers=me).status_code == 200
    r = api.post(f"/api/v1/department/applications/{app['id']}/accept", headers=staff_headers(s, s.market))
    assert r.status_code == 200, r.text
    r = api.post(f"/api/v1/department/applications/{app['id']}/decide", json={"outcome": "approve"},
                 headers=staff_headers(s, s.market_lead))
    assert r.status_code == 200 and r.json()["status"] == "approved", r.text
    return str(r.json()["certificates"][0]["number"])


def _submitted_sign(api: TestClient, s: Services) -> dict[str, Any]:
    me = citizen_headers(s, "13912345678")
    app = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers={**me, "Idempotency-Key": "a"})
    assert app.status_code == 201, app.text
    again = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers={**me, "Idempotency-Key": "a"})
    assert again.json()["id"] == app.json()["id"]
    app_id = app.json()["id"]
    r = api.patch(f"/api/v1/applications/{app_id}", json={"form_data": {"address": "五一大道 1 号", "width_m": 4}},
                  headers=me)
    assert r.status_code == 200, r.text
    png = _png()
    r = api.post(f"/api/v1/applications/{app_id}/materials/design", files={"files": ("d.png", png, "image/png")},
                 headers=me)
    assert r.status_code == 200 and r.json()["materials"]["design"]["state"] == "uploaded", r.text
    r = api.post(f"/api/v1/applications/{app_id}/submit", headers=me)
    assert r.status_code == 200 and r.json()["status"] == "submitted", r.text
    return dict(r.json())


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 100, 50)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_public_catalogue_and_matter(api: TestClient, services: Services) -> None:
    found = api.get("/api/v1/matters", params={"q": "招牌"}).json()
    assert [m["code"] for m in found] == ["T-SIGN"]
    assert [m["code"] for m in api.get("/api/v1/matters", params={"q": "sign"}).json()] == ["T-SIGN"]
    assert api.get("/api/v1/matters", params={"q": "%"}).json() == []  # a wildcard is a character
    detail = api.get("/api/v1/matters/T-SIGN").json()
    assert detail["promised_limit_days"] == 5 and detail["form"]["type"] == "object"
    missing = api.get("/api/v1/matters/NOPE")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    exported = api.get("/api/v1/catalogue").json()
    assert {m["code"] for m in exported["matters"]} == {"T-BIZ", "T-SIGN"}


def test_anonymous_callers_are_refused_before_anything_is_done(api: TestClient, services: Services) -> None:
    for method, path in [("post", "/api/v1/applications"), ("get", "/api/v1/applications"),
                         ("get", "/api/v1/applications/1"), ("post", "/api/v1/applications/1/submit"),
                         ("get", "/api/v1/certificates"), ("get", "/api/v1/department/applications"),
                         ("post", "/api/v1/department/applications/1/accept"),
                         ("post", "/api/v1/certificates/X/revoke")]:
        r = api.request(method, path, json={"matter_code": "T-SIGN", "reason": "x"})
        assert r.status_code == 401, (method, path, r.status_code)
    expired = {"Authorization": f"Bearer {sign_citizen(services.city.settings.secret_key, '13912345678', 1)}"}
    assert api.get("/api/v1/applications", headers=expired).status_code == 401
    forged = {"Authorization": "Bearer 13912345678.9999999999.deadbeef"}
    assert api.get("/api/v1/applications", headers=forged).status_code == 401


def test_rights_of_every_verb(api: TestClient, services: Services) -> None:
    s = services
    number = _licence(api, s)
    app = _submitted_sign(api, s)
    app_id = app["id"]
    assert app["prefill"]["business_name"]["via"] == number and app["documents_spared"] == 1
    me, other = citizen_headers(s, "13912345678"), citizen_headers(s, "13987654321")
    # Another citizen: the application does not exist for them, whatever the verb.
    for method, path, body in [("get", "", None), ("patch", "", {"form_data": {}}), ("post", "/submit", None),
                               ("post", "/supply", {"form_data": {}}), ("post", "/withdraw", None),
                               ("post", "/rating", {"level": 5})]:
        r = api.request(method, f"/api/v1/applications/{app_id}{path}", json=body, headers=other)
        assert r.status_code == 404, (method, path, r.text)
    assert api.get("/api/v1/applications", headers=other).json() == []
    assert api.get(f"/api/v1/certificates/{number}/signed", headers=other).status_code == 404
    # Staff of an unrelated department may neither read nor act; reviewers may read but not accept.
    market, transport = staff_headers(s, s.market), staff_headers(s, s.transport)
    assert api.get(f"/api/v1/department/applications/{app_id}", headers=market).status_code == 403
    assert api.post(f"/api/v1/department/applications/{app_id}/accept", headers=market).status_code == 403
    assert api.post(f"/api/v1/department/applications/{app_id}/accept", headers=transport).status_code == 403
    accepting = staff_headers(s, s.accepting)
    assert api.get("/api/v1/department/applications", params={"queue": "accept"},
                   headers=accepting).json()[0]["id"] == app_id
    r = api.post(f"/api/v1/department/applications/{app_id}/accept", headers=accepting)
    assert r.status_code == 200 and r.json()["status"] == "in_review"
    assert api.get(f"/api/v1/department/applications/{app_id}", headers=transport).status_code == 200
    assert [a["id"] for a in api.get("/api/v1/department/applications", params={"queue": "review"},
                                     headers=transport).json()] == [app_id]
    r = api.post(f"/api/v1/department/applications/{app_id}/review", json={"outcome": "approve"}, headers=market)
    assert r.status_code == 403
    r = api.post(f"/api/v1/department/applications/{app_id}/review", json={"outcome": "maybe"}, headers=transport)
    assert r.status_code == 400
    for who in (transport, staff_headers(s, s.police)):
        assert api.post(f"/api/v1/department/applications/{app_id}/review", json={"outcome": "approve"},
                        headers=who).status_code == 200
    assert api.post(f"/api/v1/department/applications/{app_id}/decide", json={"outcome": "approve"},
                    headers=accepting).status_code == 403  # a handler does not decide
    r = api.post(f"/api/v1/department/applications/{app_id}/decide", json={"outcome": "approve"},
                 headers=staff_headers(s, s.lead))
    assert r.status_code == 200 and r.json()["status"] == "approved"
    permit = r.json()["certificates"][0]["number"]
    # The certificate: public check, holder's export and PDF, revocation by the issuing department only.
    assert api.get(f"/api/v1/certificates/verify/{permit}").json()["status"] == "valid"
    signed = api.get(f"/api/v1/certificates/{permit}/signed", headers=me).json()
    assert api.post("/api/v1/certificates/verify", json={"document": signed["document"],
                                                         "signature": signed["signature"]}).json()["status"] == "valid"
    tampered = {**signed["document"], "fields": {**signed["document"]["fields"], "width_m": 40}}
    assert api.post("/api/v1/certificates/verify", json={"document": tampered,
                                                         "signature": signed["signature"]}).json()["status"] == "forged"
    pdf = api.get(f"/api/v1/certificates/{permit}/pdf", headers=me)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert api.post(f"/api/v1/certificates/{permit}/revoke", json={"reason": "x"}, headers=transport).status_code == 403
    refused = api.post(f"/api/v1/certificates/{permit}/revoke", json={"reason": "招牌已拆除"}, headers=accepting)
    assert refused.status_code == 403 and refused.json()["code"] == "govservice.role"  # a handler: not theirs to do
    refusals = s.city.db.read_sync(lambda c: [tuple(r) for r in c.execute(sa.select(
        audit_log.c.actor, audit_log.c.outcome, audit_log.c.detail).where(
        audit_log.c.action == "certificate.revoke", audit_log.c.target == f"certificate:{permit}"))])
    assert (f"user:{s.accepting.username}", "denied", {"code": "govservice.role"}) in refusals
    empty = api.post(f"/api/v1/certificates/{permit}/revoke", json={"reason": ""}, headers=staff_headers(s, s.lead))
    assert empty.status_code == 400 and empty.headers["content-type"].startswith("application/problem+json")
    r = api.post(f"/api/v1/certificates/{permit}/revoke", json={"reason": "招牌已拆除"}, headers=staff_headers(s, s.lead))
    assert r.status_code == 200 and r.json()["status"] == "revoked"
    # Rating: the applicant only, once.
    assert api.post(f"/api/v1/applications/{app_id}/rating", json={"level": 1, "tags": ["slow"]},
                    headers=me).status_code == 200
    assert api.post(f"/api/v1/applications/{app_id}/rating", json={"level": 5}, headers=me).status_code == 409
    rects = api.get("/api/v1/department/rectifications", headers=accepting).json()
    assert [r["application_id"] for r in rects] == [app_id]
    assert api.post(f"/api/v1/department/rectifications/{rects[0]['id']}/close",
                    json={"callback_note": "x", "measures": "y"}, headers=transport).status_code == 403


def test_a_cookie_signed_in_citizen_needs_the_csrf_header_for_changes(api: TestClient, services: Services) -> None:
    token = sign_citizen(services.city.settings.secret_key, "13912345678", int(services.city.clock.now().timestamp()) + 600)
    api.cookies.set("wecity_citizen", token)
    assert api.get("/api/v1/applications").status_code == 200
    r = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"})
    assert r.status_code == 403 and r.json()["code"] == "auth.csrf"


def test_bad_input_is_a_problem_with_the_fields_named(api: TestClient, services: Services) -> None:
    me = citizen_headers(services, "13987654321")
    app = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=me).json()
    r = api.patch(f"/api/v1/applications/{app['id']}", json={"form_data": {"width_m": "wide"}}, headers=me)
    assert r.status_code == 400
    body = r.json()
    assert body["code"] == "govservice.form_invalid" and body["details"]["fields"][0]["field"] == "width_m"
    # A field the form does not ask for is refused, not kept: the certificate signs the form's answers, and
    # no reviewer would see it.
    r = api.patch(f"/api/v1/applications/{app['id']}", json={"form_data": {"licensed_scope": "全市任意经营"}},
                  headers=me)
    assert r.status_code == 400 and r.json()["details"]["fields"] == [
        {"field": "licensed_scope", "message": "the form does not ask for 'licensed_scope'",
         "message_zh": "表单中没有字段「licensed_scope」"}]
    assert "licensed_scope" not in api.get(f"/api/v1/applications/{app['id']}", headers=me).json()["form_data"]
    r = api.post(f"/api/v1/applications/{app['id']}/submit", headers=me)
    assert r.status_code == 400 and {"business_name", "address"} <= {f["field"] for f in r.json()["details"]["fields"]}
    assert api.get(f"/api/v1/applications/{app['id']}", headers=me).json()["status"] == "draft"  # nothing half-done


def test_an_app_applies_in_one_call_and_a_replay_is_answered_alike(api: TestClient, services: Services) -> None:
    s = services
    _licence(api, s)
    me = {**citizen_headers(s, "13912345678"), "Idempotency-Key": "one-call"}
    body = {"matter_code": "T-SIGN", "form_data": {"address": "五一大道 2 号", "width_m": 3}, "submit": True}
    # The drawing is not held anywhere: one call cannot submit without it, and nothing is left half-done.
    r = api.post("/api/v1/applications", json=body, headers=me)
    assert r.status_code == 400 and r.json()["code"] == "govservice.materials_missing"
    assert [a["status"] for a in api.get("/api/v1/applications", headers=me).json()] == ["approved"]
    biz = api.post("/api/v1/applications", json={"matter_code": "T-BIZ", "submit": True, "form_data": {
        "business_name": "明记二店", "credit_code": CREDIT_CODE}}, headers=me)
    assert biz.status_code == 201 and biz.json()["status"] == "submitted", biz.text
    again = api.post("/api/v1/applications", json={"matter_code": "T-BIZ", "submit": True, "form_data": {
        "business_name": "明记二店", "credit_code": CREDIT_CODE}}, headers=me)
    assert again.status_code == 201 and again.json()["id"] == biz.json()["id"]


DEPARTMENT_VERBS = [
    ("post", "/accept", None), ("post", "/not-accept", {"reason": "x", "legal_basis": "y"}),
    ("post", "/supplement", {"note": "x"}), ("post", "/review", {"outcome": "approve"}),
    ("post", "/decide", {"outcome": "approve"}), ("post", "/special", {"kind": "inspection", "reason": "x"}),
    ("post", "/special/end", None), ("post", "/extend", {"days": 2, "reason": "x"}), ("get", "", None),
]
APPLICANT_VERBS = [
    ("get", "", None), ("patch", "", {"form_data": {}}), ("post", "/submit", None),
    ("post", "/supply", {"form_data": {}}), ("post", "/withdraw", None), ("post", "/rating", {"level": 3}),
]


def test_the_rights_matrix_of_every_verb(api: TestClient, services: Services) -> None:
    """Anonymous callers, the other applicant, staff of an unrelated department and a citizen's token on
    staff verbs (and a staff token on applicant verbs) are refused by every verb, and nothing changes."""
    s = services
    _licence(api, s)
    app_id = _submitted_sign(api, s)["id"]
    citizen, other = citizen_headers(s, "13912345678"), citizen_headers(s, "13987654321")
    unrelated = staff_headers(s, s.market)
    for method, path, body in DEPARTMENT_VERBS:
        url = f"/api/v1/department/applications/{app_id}{path}"
        assert api.request(method, url, json=body).status_code == 401, (path, "anonymous")
        assert api.request(method, url, json=body, headers=citizen).status_code == 401, (path, "a citizen")
        assert api.request(method, url, json=body, headers=unrelated).status_code == 403, (path, "other department")
    for method, path, body in APPLICANT_VERBS:
        url = f"/api/v1/applications/{app_id}{path}"
        assert api.request(method, url, json=body).status_code == 401, (path, "anonymous")
        assert api.request(method, url, json=body, headers=other).status_code == 404, (path, "other applicant")
        assert api.request(method, url, json=body, headers=unrelated).status_code == 401, (path, "staff")
    # A reviewing department may review, but not take the owning department's steps.
    api.post(f"/api/v1/department/applications/{app_id}/accept", headers=staff_headers(s, s.accepting))
    transport = staff_headers(s, s.transport)
    for path, body in [("/not-accept", {"reason": "x", "legal_basis": "y"}), ("/decide", {"outcome": "approve"}),
                       ("/special", {"kind": "inspection", "reason": "x"}), ("/extend", {"days": 2, "reason": "x"})]:
        r = api.post(f"/api/v1/department/applications/{app_id}{path}", json=body, headers=transport)
        assert r.status_code == 403, (path, r.text)
    # Each refusal is on the audit record, though the step's own transaction rolled back.
    refused = s.city.db.read_sync(lambda c: [(r.action, r.outcome) for r in c.execute(
        sa.select(audit_log.c.action, audit_log.c.outcome).where(
            audit_log.c.actor == f"user:{s.transport.username}", audit_log.c.target == f"application:{app_id}"))])
    assert refused == [("application.not_accept", "denied"), ("application.decide", "denied"),
                       ("application.start_special_procedure", "denied"), ("application.extend", "denied")]
    v = api.get(f"/api/v1/applications/{app_id}", headers=citizen).json()
    assert v["status"] == "in_review" and v["extended_days"] == 0 and v["pauses"] == []


def test_补正_during_an_inspection_keeps_the_clock_stopped_until_both_end(api: TestClient, services: Services) -> None:
    """Two uncounted spells overlap: an inspection, and 补正 asked for meanwhile. The applicant's answer
    ends the 补正 only; the clock stays stopped until the inspection ends too, and the due date then moves
    on by the working days it stood still, counted once."""
    from wecity.geo.service import city_calendar
    from wecity.govservice.clock import add_working_days

    s = services
    _licence(api, s)
    app_id = _submitted_sign(api, s)["id"]
    accepted = api.post(f"/api/v1/department/applications/{app_id}/accept", headers=staff_headers(s, s.accepting))
    due = date.fromisoformat(accepted.json()["due_on"])
    s.city.clock.advance(days=1)
    assert api.post(f"/api/v1/department/applications/{app_id}/special", json={"kind": "inspection", "reason": "现场勘验"},
                    headers=staff_headers(s, s.accepting)).status_code == 200
    assert api.post(f"/api/v1/department/applications/{app_id}/supplement", json={"note": "补充效果图"},
                    headers=staff_headers(s, s.transport)).status_code == 200
    api.post(f"/api/v1/department/applications/{app_id}/review", json={"outcome": "approve"},
             headers=staff_headers(s, s.police))
    s.city.clock.advance(days=1)
    supplied = api.post(f"/api/v1/applications/{app_id}/supply", json={"form_data": {}},
                        headers=citizen_headers(s, "13912345678")).json()
    assert [p["kind"] for p in supplied["pauses"] if p["ended_at"] is None] == ["inspection"]
    assert date.fromisoformat(supplied["due_on"]) == due  # still stopped: the inspection runs on
    s.city.clock.advance(days=6)
    ended = api.post(f"/api/v1/department/applications/{app_id}/special/end", headers=staff_headers(s, s.accepting))
    assert ended.status_code == 200, ended.text
    calendar = s.city.db.read_sync(city_calendar)
    stood_still = {p["kind"]: p["working_days"] for p in ended.json()["pauses"]}
    assert stood_still["supplement"] == 1 and stood_still["inspection"] >= 4
    assert date.fromisoformat(ended.json()["due_on"]) == add_working_days(calendar, due, stood_still["inspection"])


def test_an_applicant_clears_an_answer_with_null(api: TestClient, services: Services) -> None:
    """A wrong optional answer, or a pre-filled value that is not right, can be removed, not only replaced."""
    me = citizen_headers(services, "13987654321")
    app = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=me).json()
    saved = api.patch(f"/api/v1/applications/{app['id']}", json={"form_data": {"address": "五一大道 9 号", "width_m": 2}},
                      headers=me).json()
    assert saved["form_data"]["width_m"] == 2
    cleared = api.patch(f"/api/v1/applications/{app['id']}", json={"form_data": {"width_m": None}}, headers=me)
    assert cleared.status_code == 200 and "width_m" not in cleared.json()["form_data"]
    assert cleared.json()["form_data"]["address"] == "五一大道 9 号"


def test_an_upload_s_text_field_holds_at_most_a_form(api: TestClient, services: Services) -> None:
    """The files may be megabytes; a text field beside them is a form's worth, not the photo limit."""
    me = citizen_headers(services, "13912345678")
    app_id = api.post("/api/v1/applications", json={"matter_code": "T-SIGN"}, headers=me).json()["id"]
    big = api.post(f"/api/v1/applications/{app_id}/materials/design", headers=me,
                   files={"files": ("d.png", _png(), "image/png")}, data={"note": "x" * (200 * 1024)})
    assert big.status_code == 400 and big.headers["content-type"].startswith("application/problem+json")
    fine = api.post(f"/api/v1/applications/{app_id}/materials/design", headers=me,
                    files={"files": ("d.png", _png(), "image/png")}, data={"note": "a short note"})
    assert fine.status_code == 200, fine.text


def test_a_search_while_the_catalogue_is_imported_does_not_keep_the_old_catalogue(
        api: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search between the import transaction's own cache drop and its commit loads the catalogue as it
    was; the cache is dropped again once the import is committed, so the change shows at once."""
    import copy

    from wecity.govservice import catalogue, queries

    from .conftest import CATALOGUE, staff

    s = services
    real = catalogue.import_catalogue

    def import_while_someone_searches(conn: sa.Connection, document: Any, *, now: Any) -> dict[str, int]:
        counts = real(conn, document, now=now)
        s.city.db.read_sync(queries.catalogue_summaries)  # another request, seeing what is committed
        return counts

    monkeypatch.setattr(catalogue, "import_catalogue", import_while_someone_searches)
    document = copy.deepcopy(CATALOGUE)
    document["matters"][1]["name_zh"] = "户外招牌设置"
    done = api.post("/api/v1/catalogue", json=document, headers=staff_headers(s, staff(s.city, "admin")))
    assert done.status_code == 200 and done.json()["updated"] == 1, done.text
    assert [m["code"] for m in api.get("/api/v1/matters", params={"q": "户外招牌"}).json()] == ["T-SIGN"]
