"""The authorization matrix: every staff and citizen endpoint, for every kind of caller.

Callers: anonymous; a citizen with their own tracking code; another citizen (someone else's code is not
theirs to use, and they have no staff session); a handler of the responsible department (城管 for a
manhole); a handler of another department (住建); the dispatcher; a supervisor; an admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.models import reports
from wecity.identity.models import audit_log, users
from wecity.identity.service import get_user, start_session

from ..cases.conftest import open_case
from ..conftest import SEED_TIME, City, make_client

CALLERS = ["anonymous", "citizen", "other_citizen", "handler", "other_handler", "dispatcher", "supervisor", "admin"]
STAFF_USERNAMES = {"handler": "chengguan", "other_handler": "zhujian", "dispatcher": "dispatcher",
                   "supervisor": "supervisor", "admin": "admin"}


@dataclass
class World:
    city: City
    case_id: int
    resolved_case_id: int
    twin_case_id: int  # another open case of the department, to merge with
    token: str
    other_token: str
    headers: dict[str, dict[str, str]]


@pytest.fixture
def world(sqlite_city: City) -> Iterator[World]:
    city = sqlite_city
    case_id = open_case(city, phone="13912345678", first_name="小明", last_name="王")
    other_case = open_case(city, code="noise", lat=28.23)
    resolved = open_case(city, lat=28.21)
    twin = open_case(city, lat=28.22)

    def resolve(conn: sa.Connection) -> None:
        # Resolved by the department's handler, so that every other caller may verify it (separation of duties).
        handler = get_user(conn, conn.execute(sa.select(users.c.id).where(users.c.username == "chengguan"))
                           .scalar_one())
        actor = engine.Actor.staff(handler)
        engine.acknowledge(conn, resolved, actor, SEED_TIME)
        engine.resolve(conn, resolved, actor, SEED_TIME, note="ok", evidence_media_id="p")

    city.db.write_sync(resolve)
    tokens = city.db.read_sync(lambda c: dict(c.execute(sa.select(reports.c.case_id, reports.c.token)).all()))
    headers: dict[str, dict[str, str]] = {"anonymous": {}, "citizen": {}, "other_citizen": {}}
    for caller, username in STAFF_USERNAMES.items():
        def session(conn: sa.Connection, username: str = username) -> str:
            uid = conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one()
            return start_session(conn, uid, SEED_TIME)

        headers[caller] = {"Authorization": f"Bearer {city.db.write_sync(session)}"}
    yield World(city, case_id, resolved, twin, tokens[case_id], tokens[other_case], headers)


OK, DENIED, UNAUTHENTICATED = 200, 403, 401
ALL_STAFF_OK = {"anonymous": UNAUTHENTICATED, "citizen": UNAUTHENTICATED, "other_citizen": UNAUTHENTICATED}

# endpoint -> (method, path, json body, expected status per caller)
MATRIX = {
    "department queue": ("GET", "/api/v1/cases", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": OK, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "case detail": ("GET", "/api/v1/cases/{case}", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "reporter contacts": ("GET", "/api/v1/cases/{case}/contacts", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "acknowledge": ("POST", "/api/v1/cases/{case}/acknowledge", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": OK}),
    "return": ("POST", "/api/v1/cases/{case}/return", {"reason": "not_our_area"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": OK}),
    "transfer": ("POST", "/api/v1/cases/{case}/transfer", {"department_code": "zhujian", "note": "属住建"}, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK,
        "admin": OK}),
    # Both cases are the handler's department's: it may merge them; another department's handler may not.
    "merge": ("POST", "/api/v1/cases/{twin}/merge", {"into_case_id": "{case}"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK,
        "admin": OK}),
    "priority": ("POST", "/api/v1/cases/{case}/priority", {"priority": "urgent"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "assignees": ("GET", "/api/v1/cases/{case}/assignees", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "assign": ("POST", "/api/v1/cases/{case}/assign", {"user_id": "{lead}"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    # Within the department's own categories (streetlight is 城管's too); the dispatch centre re-files any.
    "recategorise": ("POST", "/api/v1/cases/{case}/recategorise", {"category_code": "streetlight"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": DENIED,
        "admin": OK}),
    # 来电催办 is the dispatch centre's; allowed, it is still too soon for a case just reported (409).
    "a caller's urge": ("POST", "/api/v1/cases/{case}/urge", {"note": "来电"}, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": 409, "supervisor": 409,
        "admin": 409}),
    "inbox": ("GET", "/api/v1/inbox", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": OK, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "reply templates for a case": ("GET", "/api/v1/cases/{case}/reply-templates", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "every reply template": ("GET", "/api/v1/reply-templates", None, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": OK}),
    "add a reply template": ("POST", "/api/v1/reply-templates",
                             {"name": "t", "locale": "en", "use": "resolve", "body": "Done: {{what}}"}, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": 201}),
    "change a reply template": ("PUT", "/api/v1/reply-templates/1",
                                {"name": "t", "locale": "en", "use": "resolve", "body": "Done: {{what}}"}, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": OK}),
    "remove a reply template": ("DELETE", "/api/v1/reply-templates/1", None, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": DENIED, "supervisor": DENIED,
        "admin": 204}),
    "verify": ("POST", "/api/v1/cases/{resolved}/verify", None, {
        **ALL_STAFF_OK, "handler": DENIED, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK,
        "admin": OK}),
    "internal note": ("POST", "/api/v1/cases/{case}/notes", {"note": "已联系现场"}, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": DENIED, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    "my notifications": ("GET", "/api/v1/me/notifications", None, {
        **ALL_STAFF_OK, "handler": OK, "other_handler": OK, "dispatcher": OK, "supervisor": OK, "admin": OK}),
    # Citizens: a tracking code is the key to one's own report; nobody else's code is guessable.
    "track own report": ("GET", "/api/v1/track/{own_token}", None, {c: OK for c in CALLERS}),
    "rate a report still open": ("POST", "/api/v1/track/{own_token}/rating", {"stars": 5}, {
        c: 409 for c in CALLERS}),
    "track with a made-up code": ("GET", "/api/v1/track/not-a-token", None, {c: 404 for c in CALLERS}),
    # 催办 by the code alone: too soon for a report just made, whoever asks; a made-up code names nothing.
    "urge a report just made": ("POST", "/api/v1/track/{own_token}/urge", None, {c: 409 for c in CALLERS}),
    "urge with a made-up code": ("POST", "/api/v1/track/not-a-token/urge", None, {c: 404 for c in CALLERS}),
}


def _fill(text: str, world: World, caller: str) -> str:
    own = world.other_token if caller == "other_citizen" else world.token
    if "{lead}" in text:  # a handler of the case's department, to assign it to
        text = text.replace("{lead}", str(world.city.db.read_sync(lambda c: c.execute(
            sa.select(users.c.id).where(users.c.username == "chengguan-lead")).scalar_one())))
    return (text.replace("{case}", str(world.case_id)).replace("{resolved}", str(world.resolved_case_id))
            .replace("{twin}", str(world.twin_case_id))
            .replace("{own_token}", own))


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_authorization_matrix(world: World, endpoint: str, caller: str) -> None:
    method, path, body, expected = MATRIX[endpoint]
    json_body = None
    if body is not None:
        json_body = {k: (int(_fill(v, world, caller)) if isinstance(v, str) and v.startswith("{") else v)
                     for k, v in body.items()}
    with make_client(world.city) as client:
        response = client.request(method, _fill(path, world, caller), json=json_body, headers=world.headers[caller])
    assert response.status_code == expected[caller], response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"


def test_contacts_are_masked_in_detail_and_revealed_only_with_an_audit_entry(world: World) -> None:
    with make_client(world.city) as client:
        detail = client.get(f"/api/v1/cases/{world.case_id}", headers=world.headers["handler"]).json()
        report = detail["reports"][0]
        assert report["phone"] == "139****5678" and report["name"] == "王**"
        queue = client.get("/api/v1/cases", headers=world.headers["handler"]).text
        assert "13912345678" not in queue and "小明" not in queue
        contacts = client.get(f"/api/v1/cases/{world.case_id}/contacts", headers=world.headers["handler"]).json()
    assert contacts[0]["phone"] == "13912345678"
    entry = world.city.db.read_sync(lambda c: c.execute(
        sa.select(audit_log).where(audit_log.c.action == "personal_data.view")).one())
    assert entry.target == f"case:{world.case_id}" and entry.actor.startswith("user:")


def test_refused_actions_are_audited(world: World) -> None:
    with make_client(world.city) as client:
        client.post(f"/api/v1/cases/{world.case_id}/acknowledge", headers=world.headers["other_handler"])
    entry = world.city.db.read_sync(lambda c: c.execute(
        sa.select(audit_log).where(audit_log.c.outcome == "refused")).one())
    assert entry.action == "case.acknowledge" and entry.detail == {"code": "case.not_your_department"}


def test_queue_is_sorted_by_urgency_with_countdowns(world: World) -> None:
    with make_client(world.city) as client:
        queue = client.get("/api/v1/cases", headers=world.headers["handler"]).json()
    dues = [c["next_due_at"] for c in queue if c["next_due_at"]]
    assert dues == sorted(dues)
    assert all(isinstance(c["seconds_left"], int) for c in queue if c["next_due_at"])
