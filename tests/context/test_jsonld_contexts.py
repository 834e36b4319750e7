"""/jsonldContexts (clause 5.13): hosted, cached and implicitly created @contexts, their details, tenants,
delete and reload; remote @contexts that are not ones; the broker's identity (/info/sourceIdentity)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import City
from tests.context.conftest import BASE, LD, entity, prop
from wecity.core.outbound import NotJson

REMOTE = "https://contexts.example.org/manhole.jsonld"
NOT_JSON = "https://contexts.example.org/broken.jsonld"
NOT_CONTEXT = "https://contexts.example.org/note.json"
DOC = {"@context": {"tilt": "https://example.org/manhole#tiltAngle"}}
ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
CONTEXTS = f"{BASE}/jsonldContexts"


def _link(url: str) -> dict[str, str]:
    return {"Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}


class Remote:
    """The documents the broker's fetcher finds; `up` False: nothing answers."""

    def __init__(self) -> None:
        self.up = True
        self.doc: Any = DOC
        self.fetched: list[str] = []

    def __call__(self, url: str) -> Any:
        self.fetched.append(url)
        if not self.up:
            raise OSError("unreachable")
        if url == REMOTE:
            return self.doc
        if url == NOT_JSON:
            raise NotJson("the answer is not JSON")
        if url == NOT_CONTEXT:
            return {"note": "no context member here"}
        raise OSError("unreachable")


@pytest.fixture
def remote() -> Remote:
    return Remote()


@pytest.fixture
def ngsi(city: City, remote: Remote) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app

    app = create_app(city.settings, clock=city.clock, db=city.db)
    app.state.ctx.services["ngsild_fetcher"] = remote
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        yield client


def _details(ngsi: Any, context_id: str, **headers: str) -> Any:
    return ngsi.get(f"{CONTEXTS}/{context_id}", params={"details": "true"}, headers=headers)


def test_a_remote_context_that_is_none_is_bad_request_data_and_writes_nothing(ngsi: Any) -> None:
    for url in (NOT_JSON, NOT_CONTEXT):
        r = ngsi.post(f"{BASE}/entities", json=entity(tilt=prop(1)), headers=_link(url))
        assert (r.status_code, r.json()["type"]) == (400, ERRORS + "BadRequestData"), url
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1").status_code == 404


def test_hosted_context_kind_details_and_hits(ngsi: Any, remote: Remote) -> None:
    r = ngsi.post(CONTEXTS, json=DOC)
    assert r.status_code == 201 and r.content == b""
    location = r.headers["location"]
    assert location.startswith("/ngsi-ld/v1/jsonldContexts/")  # usable as a relative @context too
    local = location.rsplit("/", 1)[1]
    details = _details(ngsi, local).json()
    assert details["kind"] == "Hosted" and details["numberOfHits"] == 0 and "lastUsage" not in details
    assert details["URL"].endswith(location) and details["localId"].endswith(local)
    assert _details(ngsi, local).json()["numberOfHits"] == 0  # reading the details is no use of it
    assert ngsi.get(location).json() == DOC
    body = {**entity(tilt=prop(3)), "@context": location}
    assert ngsi.post(f"{BASE}/entities", json=body, headers={"Content-Type": LD}).status_code == 201
    assert ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:1", headers=_link(details["URL"])).json()["tilt"] == prop(3)
    details = _details(ngsi, local).json()
    assert details["numberOfHits"] == 3 and "lastUsage" in details  # served, then the creation and the retrieval
    listed = ngsi.get(CONTEXTS, params={"kind": "Hosted", "details": "true"}).json()
    assert [d["localId"] for d in listed] == [details["localId"]]
    assert remote.fetched == []


@pytest.mark.parametrize("query", [{"kind": "hosted"}, {"kind": "other"}, {"details": "yes"}])
def test_listing_takes_the_kinds_as_the_spec_spells_them(ngsi: Any, query: dict[str, str]) -> None:
    r = ngsi.get(CONTEXTS, params=query)
    assert (r.status_code, r.json()["type"]) == (400, ERRORS + "BadRequestData")


@pytest.mark.parametrize(("body", "kind"), [({"A1": "urn:a"}, "InvalidRequest"), ({"@context": 7}, "BadRequestData"),
                                            ({"@context": ["https://example.org/c", 7]}, "BadRequestData")])
def test_a_body_that_is_no_context_is_refused(ngsi: Any, body: Any, kind: str) -> None:
    r = ngsi.post(CONTEXTS, json=body)
    assert (r.status_code, r.json()["type"]) == (400, ERRORS + kind) and "location" not in r.headers
    assert ngsi.get(CONTEXTS).json() == []


def test_adding_a_context_that_lists_urls_fetches_nothing_yet(ngsi: Any, remote: Remote) -> None:
    remote.up = False
    assert ngsi.post(CONTEXTS, json={"@context": [REMOTE, {"A1": "urn:a"}]}).status_code == 201
    assert remote.fetched == []


def test_hosted_contexts_are_private_to_their_tenant(ngsi: Any) -> None:
    a, b = {"NGSILD-Tenant": "tenanta"}, {"NGSILD-Tenant": "tenantb"}
    local = ngsi.post(CONTEXTS, json=DOC, headers=a).headers["location"].rsplit("/", 1)[1]
    assert ngsi.get(f"{CONTEXTS}/{local}", headers=b).status_code == 404
    assert _details(ngsi, local, **b).status_code == 404
    assert local not in ngsi.get(CONTEXTS, headers=b).text and local not in ngsi.get(CONTEXTS).text
    assert ngsi.delete(f"{CONTEXTS}/{local}", headers=b).status_code == 404
    assert ngsi.get(f"{CONTEXTS}/{local}", headers=a).json() == DOC
    assert ngsi.delete(f"{CONTEXTS}/{local}", headers=a).status_code == 204
    assert ngsi.get(f"{CONTEXTS}/{local}", headers=a).status_code == 404


def test_cached_context_is_everyones_and_reloads(ngsi: Any, remote: Remote) -> None:
    assert ngsi.post(f"{BASE}/entities", json=entity(tilt=prop(1)), headers=_link(REMOTE)).status_code == 201
    details = _details(ngsi, REMOTE, **{"NGSILD-Tenant": "anyone"}).json()
    assert (details["kind"], details["URL"], details["numberOfHits"]) == ("Cached", REMOTE, 1)
    assert ngsi.get(CONTEXTS, params={"kind": "Cached"}).json() == [REMOTE]
    remote.up = False  # a reload that fails keeps the cached copy
    r = ngsi.delete(f"{CONTEXTS}/{REMOTE}", params={"reload": "true"})
    assert (r.status_code, r.json()["type"]) == (504, ERRORS + "LdContextNotAvailable")
    assert ngsi.get(f"{CONTEXTS}/{REMOTE}").json() == DOC
    remote.up, remote.doc = True, {"@context": {"tilt": "https://example.org/v2#tilt"}}
    assert ngsi.delete(f"{CONTEXTS}/{REMOTE}", params={"reload": "true"}).status_code == 204
    assert ngsi.get(f"{CONTEXTS}/{REMOTE}").json() == remote.doc
    got = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "attrs": "tilt"}, headers=_link(REMOTE))
    assert got.json() == []  # the new document's tilt is another attribute
    assert ngsi.delete(f"{CONTEXTS}/{REMOTE}").status_code == 204
    assert ngsi.get(f"{CONTEXTS}/{REMOTE}").status_code == 404


def test_delete_and_reload_rules(ngsi: Any) -> None:
    core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
    local = ngsi.post(CONTEXTS, json=DOC).headers["location"].rsplit("/", 1)[1]
    for context_id, reload, status in ((core, None, 400), (core, "false", 400), (core, "true", 204),
                                       ("unknown", "true", 400), ("unknown", "xxx", 400), ("unknown", None, 404),
                                       (local, "true", 400)):
        params = {"reload": reload} if reload else {}
        assert ngsi.delete(f"{CONTEXTS}/{context_id}", params=params).status_code == status, (context_id, reload)
    assert _details(ngsi, core).json()["kind"] == "Cached"
    assert ngsi.get(f"{CONTEXTS}/{local}").json() == DOC  # still there after the refused reload


def test_a_subscription_with_several_contexts_names_an_implicitly_created_one(ngsi: Any, remote: Remote) -> None:
    context = [REMOTE, {"Manhole": "https://example.org/Manhole"}]
    sub = {"id": "urn:ngsi-ld:Subscription:1", "type": "Subscription", "entities": [{"type": "Manhole"}],
           "notification": {"endpoint": {"uri": "https://subscriber.example.org/notify"}}, "@context": context}
    assert ngsi.post(f"{BASE}/subscriptions", json=sub, headers={"Content-Type": LD}).status_code == 201
    url = ngsi.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:1").json()["jsonldContext"]
    local = url.rsplit("/", 1)[1]
    assert ngsi.get(f"{CONTEXTS}/{local}").json() == {"@context": context}
    assert _details(ngsi, local).json()["kind"] == "ImplicitlyCreated"
    assert [d["URL"] for d in ngsi.get(CONTEXTS, params={"kind": "ImplicitlyCreated", "details": "true"}).json()] == [url]
    assert REMOTE in ngsi.get(CONTEXTS, params={"kind": "Cached"}).json()
    one = {**sub, "id": "urn:ngsi-ld:Subscription:2", "@context": REMOTE}
    assert ngsi.post(f"{BASE}/subscriptions", json=one, headers={"Content-Type": LD}).status_code == 201
    assert "jsonldContext" not in ngsi.get(f"{BASE}/subscriptions/urn:ngsi-ld:Subscription:2").json()
    assert ngsi.delete(f"{CONTEXTS}/{local}").status_code == 204


DURATION = re.compile(r"^P(?!$)(\d+D)?(T(?!$)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")


def test_source_identity_has_one_alias_per_tenant(ngsi: Any) -> None:
    default = ngsi.get(f"{BASE}/info/sourceIdentity").json()
    assert default["type"] == "ContextSourceIdentity" and default["id"].startswith("urn:")
    assert DURATION.match(default["contextSourceUptime"])
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$", default["contextSourceTimeAt"])
    a = ngsi.get(f"{BASE}/info/sourceIdentity", headers={"NGSILD-Tenant": "alias-a"}).json()
    b = ngsi.get(f"{BASE}/info/sourceIdentity", headers={"NGSILD-Tenant": "alias-b"}).json()
    again = ngsi.get(f"{BASE}/info/sourceIdentity", headers={"NGSILD-Tenant": "alias-a"}).json()
    aliases = {default["contextSourceAlias"], a["contextSourceAlias"], b["contextSourceAlias"]}
    assert len(aliases) == 3 and again["contextSourceAlias"] == a["contextSourceAlias"]
    assert a["id"] == default["id"]


def test_uptime_is_an_iso_8601_duration() -> None:
    from datetime import UTC, datetime, timedelta

    from wecity.context.routes_info import uptime

    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [uptime(start, start + timedelta(seconds=s)) for s in (0, 61.5, 90061)] == ["PT0S", "PT1M1.5S", "P1DT1H1M1S"]


def test_a_subscription_whose_context_is_gone_is_passed_over_and_writes_go_on(ngsi: Any, remote: Remote,
                                                                             caplog: Any) -> None:
    """Matching runs inside the write: it never fetches. A subscription whose @context was deleted from the
    cache (and whose source is down) no longer fails every write to the entities it watches."""
    assert ngsi.post(f"{BASE}/entities", json=entity(tilt=prop(1)), headers=_link(REMOTE)).status_code == 201
    made = ngsi.post(f"{BASE}/subscriptions", headers=_link(REMOTE), json={
        "type": "Subscription", "entities": [{"type": "Manhole"}], "q": "tilt>5",
        "notification": {"endpoint": {"uri": "http://receiver.test/notify"}}})
    assert made.status_code == 201
    assert ngsi.delete(f"{CONTEXTS}/{REMOTE}").status_code == 204
    remote.up = False
    fetched = len(remote.fetched)
    changed = ngsi.patch(f"{BASE}/entities/urn:ngsi-ld:Manhole:1/attrs", json={"tilt": prop(9)},
                         headers={"Link": '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld>; '
                                          'rel="http://www.w3.org/ns/json-ld#context"'})
    assert changed.status_code == 204, changed.text
    assert len(remote.fetched) == fetched  # nothing fetched while writing
    assert "passed over" in caplog.text


def test_a_subscription_made_in_another_process_is_matched_with_the_context_the_database_keeps(
        city: City, caplog: Any) -> None:
    """Two servers on one database: the one that did not make the subscription finds its @context in the
    database (it was fetched and kept by the other), without fetching it, and notifies."""
    import sqlalchemy as sa
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app
    from wecity.core.models import outbox_messages as outbox

    def app(remote: Remote) -> Any:
        made = create_app(city.settings, clock=city.clock, db=city.db)
        made.state.ctx.services["ngsild_fetcher"] = remote
        return made

    here, elsewhere = Remote(), Remote()
    elsewhere.up = False  # the second server could not fetch it: it must find it kept
    with TestClient(app(here)) as first, TestClient(app(elsewhere)) as second:
        for client in (first, second):
            client.headers["Authorization"] = f"Bearer {city.api_key}"
        assert first.post(f"{BASE}/entities", json=entity(tilt=prop(1)), headers=_link(REMOTE)).status_code == 201
        assert first.post(f"{BASE}/subscriptions", headers=_link(REMOTE), json={
            "type": "Subscription", "entities": [{"type": "Manhole"}], "q": "tilt>5",
            "notification": {"endpoint": {"uri": "http://receiver.test/notify"}}}).status_code == 201
        changed = second.patch(f"{BASE}/entities/urn:ngsi-ld:Manhole:1/attrs",
                               json={"https://example.org/manhole#tiltAngle": prop(9)})
        assert changed.status_code == 204, changed.text
    assert elsewhere.fetched == [] and "passed over" not in caplog.text
    queued = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(outbox).where(
        outbox.c.target == "http://receiver.test/notify")).scalar_one())
    assert queued == 1


class ManyRemotes(Remote):
    """Serves a @context at any URL under contexts.example.org, as a caller's own server would."""

    def __call__(self, url: str) -> Any:
        self.fetched.append(url)
        name = url.rsplit("/", 1)[1].split(".")[0]
        return {"@context": {"tilt": f"https://example.org/{name}#tilt"}}


def _remote(i: int) -> str:
    return f"https://contexts.example.org/c{i}.jsonld"


def test_cached_contexts_are_bounded_and_those_subscriptions_name_stay(ngsi: Any, city: City, monkeypatch: Any,
                                                                       caplog: Any) -> None:
    """A caller naming ever new @context URLs fills neither the database nor the memory: past the bound the
    least recently used cached ones are forgotten, except those a subscription names (matched inside writes,
    which never fetch); a forgotten one is fetched again when named."""
    import sqlalchemy as sa

    from wecity.context import ldcontext, protocol
    from wecity.core.models import outbox_messages as outbox

    monkeypatch.setattr(protocol, "MAX_CACHED_CONTEXTS", 10)
    monkeypatch.setattr(ldcontext, "MAX_REMOTE_DOCUMENTS", 5)
    remote = ManyRemotes()
    ngsi.app.state.ctx.services["ngsild_contexts"].fetcher = remote
    # its @context is a hosted one, which names the remote one
    hosted = ngsi.post(CONTEXTS, json={"@context": [_remote(0), {"Manhole": "https://example.org/Manhole"}]})
    sub = {"id": "urn:ngsi-ld:Subscription:kept", "type": "Subscription", "entities": [{"type": "Manhole"}],
           "notification": {"endpoint": {"uri": "https://subscriber.example.org/notify"}}}
    assert ngsi.post(f"{BASE}/subscriptions", json=sub, headers=_link(hosted.headers["location"])).status_code == 201
    for i in range(1, 30):  # a caller naming ever new URLs
        assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=_link(_remote(i))).status_code == 200
    cached = ngsi.get(CONTEXTS, params={"kind": "Cached"}).json()
    assert len(cached) <= 10 and _remote(0) in cached and _remote(29) in cached and _remote(1) not in cached
    store = ngsi.app.state.ctx.services["ngsild_contexts"]
    assert len([u for u in store.documents if u.startswith("https://contexts.example.org/")]) == 5
    # the subscription still matches a write (no fetch inside it): its @context comes from the database
    remote.fetched.clear()
    body = {"id": "urn:ngsi-ld:Manhole:2", "type": "https://example.org/Manhole",
            "https://example.org/c0#tilt": prop(2)}  # full names: the write itself names no @context
    for url in list(store.documents):  # as in a process that has forgotten them (or never had them)
        store.documents.pop(url)
    store._maps.clear()
    assert ngsi.post(f"{BASE}/entities", json=body).status_code == 201
    queued = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(outbox).where(
        outbox.c.target == "https://subscriber.example.org/notify")).scalar_one())
    assert queued == 1 and remote.fetched == [] and "passed over" not in caplog.text
    # one forgotten is fetched again when named (once its term map is gone too), and kept again
    store._maps.clear()
    got = ngsi.get(f"{BASE}/entities/urn:ngsi-ld:Manhole:2", headers=_link(_remote(1)))
    assert got.status_code == 200 and remote.fetched == [_remote(1)]
    assert _remote(1) in ngsi.get(CONTEXTS, params={"kind": "Cached"}).json()


class NamingRemotes(ManyRemotes):
    """As ManyRemotes, and c0 names c1 in turn (a Smart Data Models @context names others)."""

    def __call__(self, url: str) -> Any:
        if url == _remote(0):
            self.fetched.append(url)
            return {"@context": [_remote(1), {"Manhole": "https://example.org/Manhole"}]}
        return super().__call__(url)


def test_a_subscription_keeps_in_the_database_the_contexts_it_names_and_those_they_name(
        ngsi: Any, city: City, monkeypatch: Any) -> None:
    """A @context this process holds in memory but the database forgot (bounded, least recently used first)
    is kept again when a subscription names it, and with it the @contexts it names; those stay however many
    others callers name after."""
    import sqlalchemy as sa

    from wecity.context import protocol
    from wecity.context.models import contexts

    monkeypatch.setattr(protocol, "MAX_CACHED_CONTEXTS", 10)
    remote = NamingRemotes()
    ngsi.app.state.ctx.services["ngsild_contexts"].fetcher = remote
    assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=_link(_remote(0))).status_code == 200
    city.db.write_sync(lambda c: c.execute(contexts.delete().where(contexts.c.kind == "Cached")))  # forgotten
    sub = {"type": "Subscription", "entities": [{"type": "Manhole"}],
           "notification": {"endpoint": {"uri": "https://subscriber.example.org/notify"}}}
    assert ngsi.post(f"{BASE}/subscriptions", json=sub, headers=_link(_remote(0))).status_code == 201
    kept = city.db.read_sync(lambda c: set(c.execute(sa.select(contexts.c.url)).scalars()))
    assert {_remote(0), _remote(1)} <= kept
    for i in range(2, 30):  # a caller naming ever new URLs
        assert ngsi.get(f"{BASE}/entities", params={"type": "Manhole"}, headers=_link(_remote(i))).status_code == 200
    cached = ngsi.get(CONTEXTS, params={"kind": "Cached"}).json()
    assert len(cached) <= 10 and _remote(0) in cached and _remote(1) in cached
