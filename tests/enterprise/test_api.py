"""Enterprise services' HTTP API: every endpoint's rights (the enterprise's agent, another citizen, staff by
role, anonymous), the public policies, the enterprise's home, 快申快享, the register, dry run and take-up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from wecity.geo.service import get_jurisdiction, set_jurisdiction
from wecity.identity.applicants import sign_citizen
from wecity.identity.models import audit_log, users
from wecity.identity.service import start_session

from ..conftest import City, make_client
from .conftest import POLICIES, RETENTION, uscc

AGENT, STRANGER = "13800000001", "13900009999"


def citizen(city: City, phone: str) -> dict[str, str]:
    expires = int(city.clock.now().timestamp()) + 600
    return {"Authorization": f"Bearer {sign_citizen(city.settings.secret_key, phone, expires)}"}


def staff(city: City, username: str) -> dict[str, str]:
    def run(c: sa.Connection) -> str:
        return start_session(c, c.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one(),
                             city.clock.now())
    return {"Authorization": f"Bearer {city.db.write_sync(run)}"}


@pytest.fixture
def api(policy_city: City) -> Iterator[TestClient]:
    with make_client(policy_city) as client:
        yield client


def test_policies_are_public(api: TestClient) -> None:
    listed = api.get("/api/v1/policies")
    assert listed.status_code == 200
    codes = {p["code"]: p for p in listed.json()["policies"]}
    assert set(codes) == {"t-wengang", "t-rent"}
    assert codes["t-wengang"]["automatic"] and codes["t-wengang"]["in_force"]
    assert codes["t-wengang"]["conditions"][0]["clause"] == "第一条（一）"
    one = api.get("/api/v1/policies/t-wengang").json()
    assert one["versions"][0]["version"] == 1 and one["parameters"] == {"sme_rate": 0.6, "large_rate": 0.3}
    assert api.get("/api/v1/policies/nope").status_code == 404


def test_a_policy_is_in_force_by_the_city_s_own_day(api: TestClient, policy_city: City) -> None:
    """t-wengang runs to 2026-12-31: at 02:00 UTC on 1 January it has ended in China, not yet in New York."""
    policy_city.clock.at = datetime(2027, 1, 1, 2, 0, tzinfo=UTC)

    def in_force() -> bool:
        listed = {p["code"]: p for p in api.get("/api/v1/policies").json()["policies"]}
        one = api.get("/api/v1/policies/t-wengang").json()
        assert one["in_force"] == listed["t-wengang"]["in_force"]
        return bool(one["in_force"])

    assert not in_force()  # the test city's zone is China's

    def move_to_new_york(conn: sa.Connection) -> None:
        row = get_jurisdiction(conn)
        set_jurisdiction(conn, id=row.id, name_zh=row.name_zh, name_en=row.name_en, adcode=row.adcode,
                         timezone="America/New_York")

    policy_city.db.write_sync(move_to_new_york)
    assert in_force()


def test_the_enterprise_home_and_quick_apply(api: TestClient, policy_city: City, firm: dict[str, object]) -> None:
    applicant = firm["applicant_id"]
    home = api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, AGENT))
    assert home.status_code == 200, home.text
    outcomes = {p["code"]: p for p in home.json()["policies"]}
    assert outcomes["t-wengang"]["outcome"] == "eligible" and outcomes["t-wengang"]["amount"] == 31200.0
    assert outcomes["t-rent"]["outcome"] == "unknown" and outcomes["t-rent"]["missing"] == ["rent_paid"]
    assert [t["id"] for t in outcomes["t-wengang"]["trace"]] == ["insured", "layoffs", "honest", "benefit"]
    # Another citizen: not listed for this enterprise.
    assert api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, STRANGER)).status_code == 403
    assert api.get(f"/api/v1/enterprise/{applicant}").status_code == 401
    draft = api.post(f"/api/v1/enterprise/{applicant}/policies/t-rent/apply", headers=citizen(policy_city, AGENT))
    assert draft.status_code == 201, draft.text
    assert draft.json()["to_fill"] == ["rent_paid"]
    assert api.post(f"/api/v1/enterprise/{applicant}/policies/t-rent/apply",
                    headers=citizen(policy_city, STRANGER)).status_code == 403


def test_the_register_is_read_by_staff_and_written_by_supervisors(api: TestClient, policy_city: City,
                                                                   firm: dict[str, object]) -> None:
    assert api.get("/api/v1/enterprises").status_code == 401
    listed = api.get("/api/v1/enterprises", params={"q": "数智"}, headers=staff(policy_city, "chengguan"))
    assert listed.status_code == 200 and listed.json()["total"] == 1
    one = api.get(f"/api/v1/enterprises/{firm['id']}", headers=staff(policy_city, "chengguan"))
    assert one.status_code == 200 and one.json()["enterprise"]["size_class_derived"] == "small"
    change = {"facts": {"rent_paid": 90000}}
    assert api.patch(f"/api/v1/enterprises/{firm['id']}", json=change,
                     headers=staff(policy_city, "chengguan")).status_code == 403
    done = api.patch(f"/api/v1/enterprises/{firm['id']}", json=change, headers=staff(policy_city, "supervisor"))
    assert done.status_code == 200 and done.json()["changed"] is True
    good = uscc("91430102MA4T00019")
    wrong = good[:17] + ("0" if good[17] != "0" else "1")  # a check character that does not add up
    bad = api.post("/api/v1/enterprises", json={"credit_code": wrong, "name": "x"},
                   headers=staff(policy_city, "admin"))
    assert bad.status_code == 400 and "check character" in bad.text, bad.text
    csv = ("统一社会信用代码,企业名称,行业代码,从业人员\n"
           f"{uscc('91430102MA4T00012')},长沙甲公司,C3981,120\n"
           f"{uscc('91430102MA4T00013')},长沙乙公司,Z99,abc\n").encode()
    refused = api.post("/api/v1/enterprises/import", files={"file": ("e.csv", csv, "text/csv")},
                       headers=staff(policy_city, "admin"))
    assert refused.status_code in (400, 422)
    errors = refused.json()["errors"] if "errors" in refused.json() else refused.json()["details"]["errors"]
    assert {(e["row"], e["field"]) for e in errors} == {(3, "industry_code"), (3, "employees")}
    assert api.get("/api/v1/enterprises", params={"q": "长沙甲"},
                   headers=staff(policy_city, "admin")).json()["total"] == 0  # nothing written
    fixed = csv.replace(b"Z99,abc", b"I6513,8")
    assert api.post("/api/v1/enterprises/import", files={"file": ("e.csv", fixed, "text/csv")},
                    headers=staff(policy_city, "chengguan")).status_code == 403
    ok = api.post("/api/v1/enterprises/import", files={"file": ("e.csv", fixed, "text/csv")},
                  headers=staff(policy_city, "admin"))
    assert ok.status_code == 200 and ok.json() == {"added": 2, "changed": 0, "unchanged": 0}


def test_policy_import_dry_run_and_take_up(api: TestClient, policy_city: City, firm: dict[str, object]) -> None:
    assert api.post("/api/v1/policies", json=POLICIES).status_code == 401
    assert api.post("/api/v1/policies", json=POLICIES, headers=staff(policy_city, "chengguan-lead")).status_code == 403
    # Nor may another department's supervisor take 人社's policy over by writing its own name into it.
    taken = {**RETENTION, "department": "chengguan", "amount": "unemployment_insurance_paid * 10"}
    refused = api.post("/api/v1/policies", json={"format": "wecity-policies/1", "policies": [taken]},
                       headers=staff(policy_city, "chengguan-lead"))
    assert refused.status_code == 403 and refused.json()["code"] == "enterprise.not_allowed"
    assert api.post("/api/v1/policies", json=POLICIES, headers=staff(policy_city, "admin")).json() == \
        {"added": 0, "changed": 0, "unchanged": 2}
    run = api.post("/api/v1/policies/t-wengang/dry-run", json={}, headers=staff(policy_city, "chengguan"))
    assert run.status_code == 200, run.text
    assert run.json()["outcomes"] == {"eligible": 1, "ineligible": 0, "unknown": 0}
    assert run.json()["amount_total"] == 31200.0
    stricter = {**RETENTION, "conditions": [{**RETENTION["conditions"][0], "rule": "unemployment_insurance_months >= 48"},
                                            *RETENTION["conditions"][1:]]}
    tried = api.post("/api/v1/policies/t-wengang/dry-run", json={"policy": stricter},
                     headers=staff(policy_city, "chengguan")).json()
    assert tried["outcomes"]["ineligible"] == 1 and tried["failed_by"] == {"insured": 1}
    assert api.post("/api/v1/policies/t-wengang/dry-run", json={}).status_code == 401
    taken = api.get("/api/v1/policies/t-wengang/take-up", headers=staff(policy_city, "chengguan")).json()
    assert taken["eligible"] == 1 and taken["not_taken_up"] == 1 and taken["granted_without_application"] == 0


def test_a_policy_grants_only_under_a_matter_of_its_own_department(api: TestClient, policy_city: City) -> None:
    """城管's supervisor may import 城管's policies, not one whose grants would be 人社's decisions (T-WG)."""
    theirs = {**RETENTION, "code": "t-borrowed", "department": "chengguan"}
    for user in ("chengguan-lead", "admin"):
        refused = api.post("/api/v1/policies", json={"format": "wecity-policies/1", "policies": [theirs]},
                           headers=staff(policy_city, user))
        assert refused.status_code == 400 and refused.json()["code"] == "enterprise.bad_policy", refused.text
        assert "事项 T-WG 属于部门 renshe" in refused.json()["title"], refused.text
    assert api.get("/api/v1/policies/t-borrowed").status_code == 404


def test_a_refused_or_malformed_policy_import_never_takes_the_writer(api: TestClient, policy_city: City,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The rights and the document are checked in a read transaction, before the database's one writer is
    asked for."""
    headers = {user: staff(policy_city, user) for user in ("chengguan-lead", "admin")}
    writes: list[object] = []
    real_write = policy_city.db.write

    async def counted(*args: object, **kwargs: object) -> object:
        writes.append(args[0])
        return await real_write(*args, **kwargs)

    monkeypatch.setattr(policy_city.db, "write", counted)
    refused = api.post("/api/v1/policies", json=POLICIES, headers=headers["chengguan-lead"])
    assert refused.status_code == 403
    broken = {"format": "wecity-policies/1", "policies": [{**RETENTION, "conditions": [
        {**RETENTION["conditions"][0], "rule": "no_such_variable > 1"}]}]}
    assert api.post("/api/v1/policies", json=broken, headers=headers["admin"]).status_code == 400
    assert writes == []
    assert api.post("/api/v1/policies", json=POLICIES, headers=headers["admin"]).status_code == 200
    assert len(writes) == 1


def test_dry_runs_are_rate_limited_per_staff_member(api: TestClient, policy_city: City,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Each evaluates the whole register: the API's and the policy page's count together."""
    from wecity.core.limits import parse_rule
    from wecity.enterprise import api as enterprise_api

    monkeypatch.setattr(enterprise_api, "DRY_RUN_LIMIT", parse_rule("2/minute"))
    headers = staff(policy_city, "chengguan")
    assert api.post("/api/v1/policies/t-wengang/dry-run", json={}, headers=headers).status_code == 200
    assert api.get("/staff/policies/t-wengang", headers=headers).status_code == 200
    over = api.post("/api/v1/policies/t-wengang/dry-run", json={}, headers=headers)
    assert over.status_code == 429 and "Retry-After" in over.headers
    assert api.get("/staff/policies/t-wengang", headers=headers).status_code == 429
    # Another staff member has their own.
    assert api.post("/api/v1/policies/t-wengang/dry-run", json={}, headers=staff(policy_city, "admin")).status_code == 200


def test_enterprise_requests_go_through_the_one_intake(api: TestClient, policy_city: City, firm: dict[str, object]) -> None:
    from wecity.enterprise.appeals import seed_business_categories
    from wecity.identity.service import add_department

    def seed(c: sa.Connection) -> None:
        add_department(c, code="gongxin", name_zh="市工业和信息化局", name_en="Industry and Information Technology")
        seed_business_categories(c)

    policy_city.db.write_sync(seed)
    applicant = firm["applicant_id"]
    categories = api.get("/api/v1/enterprise/request-categories").json()["categories"]
    assert [c["code"] for c in categories][:1] == ["ent-policy"] and categories[0]["resolve_hours"] == 40
    body = {"service_code": "ent-policy", "description": "稳岗返还资金尚未到账"}
    assert api.post(f"/api/v1/enterprise/{applicant}/requests", json=body,
                    headers=citizen(policy_city, STRANGER)).status_code == 403
    assert api.post(f"/api/v1/enterprise/{applicant}/requests", json={**body, "service_code": "manhole"},
                    headers=citizen(policy_city, AGENT)).status_code == 400
    filed = api.post(f"/api/v1/enterprise/{applicant}/requests", json=body, headers=citizen(policy_city, AGENT))
    assert filed.status_code == 201, filed.text
    case_id = filed.json()["case_id"]

    def case(c: sa.Connection) -> tuple[object, ...]:
        from wecity.cases.models import cases, reports
        from wecity.identity.models import departments
        row = c.execute(sa.select(cases.c.category_code, cases.c.resolve_due_at, cases.c.created_at,
                                  departments.c.code).join(departments, departments.c.id == cases.c.department_id)
                        .where(cases.c.id == case_id)).one()
        channel = c.execute(sa.select(reports.c.channel).where(reports.c.case_id == case_id)).scalar_one()
        return (*row, channel)

    category, due, created, department, channel = policy_city.db.read_sync(case)
    assert (category, department, channel) == ("ent-policy", "gongxin", "enterprise")
    assert due > created  # its own target: 40 working hours
    listed = api.get(f"/api/v1/enterprise/{applicant}/requests", headers=citizen(policy_city, AGENT)).json()["requests"]
    assert [(r["case_id"], r["description"]) for r in listed] == [(case_id, "稳岗返还资金尚未到账")]
    assert api.get(f"/api/v1/enterprise/{applicant}/requests", headers=citizen(policy_city, STRANGER)).status_code == 403


def test_the_staff_view_of_an_enterprise_carries_no_tracking_code_and_is_audited(
        api: TestClient, policy_city: City, firm: dict[str, object]) -> None:
    """A 诉求's tracking code is the reporter's credential: the enterprise sees it, no staff member does."""
    from wecity.enterprise.appeals import seed_business_categories
    from wecity.identity.service import add_department

    def seed(c: sa.Connection) -> None:
        add_department(c, code="gongxin", name_zh="市工业和信息化局", name_en="Industry and Information Technology")
        seed_business_categories(c)

    policy_city.db.write_sync(seed)
    applicant = firm["applicant_id"]
    filed = api.post(f"/api/v1/enterprise/{applicant}/requests", json={"service_code": "ent-policy", "description": "钱没到"},
                     headers=citizen(policy_city, AGENT))
    assert filed.status_code == 201, filed.text
    token = filed.json()["token"]
    own = api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, AGENT)).json()
    assert [r["token"] for r in own["requests"]] == [token]
    one = api.get(f"/api/v1/enterprises/{firm['id']}", headers=staff(policy_city, "chengguan"))
    assert one.status_code == 200, one.text
    assert [r["case_id"] for r in one.json()["requests"]] == [filed.json()["case_id"]]
    assert token not in one.text and all("token" not in r for r in one.json()["requests"])
    looks = policy_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.actor).where(
        audit_log.c.action == "personal_data.view", audit_log.c.target == f"enterprise:{firm['credit_code']}")).all())
    assert [r.actor for r in looks] == ["user:chengguan"]


def test_the_legal_representative_authorises_and_withdraws_agents(api: TestClient, policy_city: City,
                                                                  firm: dict[str, object]) -> None:
    applicant, helper = firm["applicant_id"], "13900001234"
    assert api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, helper)).status_code == 403
    added = api.post(f"/api/v1/enterprise/{applicant}/agents", json={"phone": helper}, headers=citizen(policy_city, AGENT))
    assert added.status_code == 201 and added.json()["role"] == "agent" and added.json()["phone"] == "139****1234"
    # The agent now acts for the enterprise, but does not change who its agents are.
    assert api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, helper)).status_code == 200
    assert api.post(f"/api/v1/enterprise/{applicant}/agents", json={"phone": STRANGER},
                    headers=citizen(policy_city, helper)).status_code == 403
    people = api.get(f"/api/v1/enterprise/{applicant}/agents", headers=citizen(policy_city, helper)).json()["agents"]
    assert [p["role"] for p in people] == ["legal_representative", "agent"]
    lead = people[0]["citizen_id"]
    assert api.delete(f"/api/v1/enterprise/{applicant}/agents/{lead}", headers=citizen(policy_city, AGENT)).status_code == 409
    agent_id = added.json()["citizen_id"]
    # The agent applies for the enterprise; withdrawn, they no longer see or act on that application.
    draft = api.post(f"/api/v1/enterprise/{applicant}/policies/t-rent/apply", headers=citizen(policy_city, helper))
    assert draft.status_code == 201, draft.text
    app_path = f"/api/v1/applications/{draft.json()['application_id']}"
    assert api.get(app_path, headers=citizen(policy_city, helper)).status_code == 200
    assert api.delete(f"/api/v1/enterprise/{applicant}/agents/{agent_id}",
                      headers=citizen(policy_city, AGENT)).status_code == 204
    assert api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, helper)).status_code == 403
    assert api.get(app_path, headers=citizen(policy_city, helper)).status_code == 404
    assert api.post(f"{app_path}/withdraw", headers=citizen(policy_city, helper)).status_code == 404
    assert api.get(app_path, headers=citizen(policy_city, AGENT)).status_code == 200  # the enterprise's still
    assert api.post(f"/api/v1/enterprise/{applicant}/agents", json={"phone": "12"},
                    headers=citizen(policy_city, AGENT)).status_code in (400, 422)


def test_enterprise_categories_are_not_offered_to_other_channels(api: TestClient, policy_city: City) -> None:
    from wecity.enterprise.appeals import seed_business_categories
    from wecity.identity.service import add_department

    def seed(c: sa.Connection) -> None:
        add_department(c, code="gongxin", name_zh="市工业和信息化局", name_en="Industry and Information Technology")
        seed_business_categories(c)

    policy_city.db.write_sync(seed)
    services = {s["service_code"] for s in api.get("/open311/v2/services.json").json()}
    assert "manhole" in services and not services & {"ent-policy", "ent-approval"}
    refused = api.post("/open311/v2/requests.json", data={
        "api_key": policy_city.api_key, "service_code": "ent-policy", "lat": "28.196", "long": "112.977",
        "description": "政策资金未到账"})
    assert refused.status_code == 400 and "not offered through this channel" in refused.text
    assert "惠企政策兑现问题" not in api.get("/report", headers={"Accept-Language": "zh-CN"}).text


def test_a_new_legal_representative_in_the_register_replaces_the_old_one(api: TestClient, policy_city: City,
                                                                         firm: dict[str, object]) -> None:
    """The register decides who the legal representative is: an agent named there is raised to it, and the
    former one no longer acts for the enterprise (nor can anyone else withdraw them)."""
    from wecity.enterprise import register
    from wecity.identity.applicants import legal_representative

    applicant, helper = firm["applicant_id"], "13900001234"
    added = api.post(f"/api/v1/enterprise/{applicant}/agents", json={"phone": helper}, headers=citizen(policy_city, AGENT))
    assert added.status_code == 201
    policy_city.db.write_sync(lambda c: register.update_facts(c, int(str(firm["id"])),
                                                              {"legal_representative_phone": helper},
                                                              now=policy_city.clock.now()))
    people = api.get(f"/api/v1/enterprise/{applicant}/agents", headers=citizen(policy_city, helper)).json()["agents"]
    assert [(p["phone"], p["role"]) for p in people] == [("139****1234", "legal_representative")]
    assert api.get(f"/api/v1/enterprise/{applicant}", headers=citizen(policy_city, AGENT)).status_code == 403
    assert policy_city.db.read_sync(lambda c: legal_representative(c, int(str(applicant)))) == \
        added.json()["citizen_id"]


@pytest.mark.parametrize("url", ["javascript:alert(document.cookie)", "data:text/html,<script>x()</script>",
                                 "//evil.example/p", "https:///nohost", "http://[::1", "https://a.example/ x"])
def test_a_policy_s_basis_url_is_an_http_address(api: TestClient, policy_city: City, url: str) -> None:
    """The public policy page links to it: only http(s) is imported, refused in both languages."""
    policy = {**RETENTION, "basis": {**RETENTION["basis"], "url": url}}
    refused = api.post("/api/v1/policies", json={"format": "wecity-policies/1", "policies": [policy]},
                       headers=staff(policy_city, "admin"))
    assert refused.status_code == 400 and refused.json()["code"] == "enterprise.bad_policy"
    assert "basis.url" in refused.json()["title"] and "网址" in refused.json()["title"]
    english = api.post("/api/v1/policies", json={"format": "wecity-policies/1", "policies": [policy]},
                       headers={**staff(policy_city, "admin"), "Accept-Language": "en"})
    assert "must be an http or https address" in english.json()["title"]


def test_a_policy_with_an_http_basis_url_links_to_it(api: TestClient, policy_city: City) -> None:
    url = "https://www.example.gov.cn/zcwj/2026/1.html"
    policy = {**RETENTION, "basis": {**RETENTION["basis"], "url": url}}
    done = api.post("/api/v1/policies", json={"format": "wecity-policies/1", "policies": [policy]},
                    headers=staff(policy_city, "admin"))
    assert done.status_code == 200 and done.json()["changed"] == 1
    assert f'href="{url}"' in api.get("/policies/t-wengang").text
