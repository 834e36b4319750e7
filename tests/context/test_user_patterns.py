"""Patterns callers write (q's `~=`, idPattern in queries and subscriptions) run in time linear in the
value: `^(a+)+$` against 28 characters held the whole process for about 20 seconds on Python's re."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import City
from tests.context.conftest import BASE, entity, prop
from tests.context.test_subscriptions import SUBS, _pending, subscription
from tests.crash.test_kill9 import Server

ERRORS = "https://uri.etsi.org/ngsi-ld/errors/"
EVIL = '"^(a+)+$"'
NEAR_MISS = "a" * 27 + "!"  # 28 characters: every way of splitting the a's is tried before failing


def _seed(client: Any, values: list[str]) -> None:
    items = [entity(f"urn:ngsi-ld:Manhole:{i}", name=prop(v)) for i, v in enumerate(values)]
    r = client.post(f"{BASE}/entityOperations/create", json=items)
    assert r.status_code == 201, r.text


def test_a_catastrophic_q_pattern_answers_at_once_and_right(ngsi: Any) -> None:
    _seed(ngsi, [NEAR_MISS, "a" * 28, "b"])
    started = time.perf_counter()
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": f"name~={EVIL}"})
    elapsed = time.perf_counter() - started
    assert r.status_code == 200, r.text
    assert [e["id"] for e in r.json()] == ["urn:ngsi-ld:Manhole:1"]
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "q": f"name!~={EVIL}"})
    assert sorted(e["id"] for e in r.json()) == ["urn:ngsi-ld:Manhole:0", "urn:ngsi-ld:Manhole:2"]
    assert elapsed < 1.0


def test_a_catastrophic_id_pattern_answers_at_once(ngsi: Any) -> None:
    r = ngsi.post(f"{BASE}/entityOperations/create", json=[entity(f"urn:ngsi-ld:Manhole:{NEAR_MISS}")])
    assert r.status_code == 201, r.text
    started = time.perf_counter()
    r = ngsi.get(f"{BASE}/entities", params={"type": "Manhole", "idPattern": ":(a+)+$"})
    assert r.status_code == 200 and r.json() == []
    body = {"type": "Query", "entities": [{"type": "Manhole", "idPattern": ":(a+)+$"}]}
    r = ngsi.post(f"{BASE}/entityOperations/query", json=body)
    assert r.status_code == 200 and r.json() == []
    assert time.perf_counter() - started < 1.0


def test_patterns_without_a_linear_time_engine_are_bad_request_data(ngsi: Any) -> None:
    # Backreferences and lookarounds cannot be matched in linear time: refused like malformed patterns.
    for params in ({"type": "Manhole", "idPattern": "(?=urn)"}, {"type": "Manhole", "q": r'name~="(a)\1"'},
                   {"type": "Manhole", "q": 'name~="(?<!x)a"'}):
        r = ngsi.get(f"{BASE}/entities", params=params)
        assert r.status_code == 400, params
        assert r.json()["type"] == ERRORS + "BadRequestData"
    r = ngsi.post(f"{BASE}/entityOperations/query",
                  json={"type": "Query", "entities": [{"type": "Manhole", "idPattern": r"(\d)\1"}]})
    assert r.status_code == 400 and r.json()["type"] == ERRORS + "BadRequestData"


def test_subscription_patterns_are_checked_and_matched_in_linear_time(broker: Any) -> None:
    for bad in (subscription(entities=[{"type": "Manhole", "idPattern": r"(\d)\1"}]),
                subscription(q=r'name~="(?=a)"')):
        r = broker.post(SUBS, json=bad)
        assert r.status_code == 400 and r.json()["type"] == ERRORS + "BadRequestData", r.text
    r = broker.post(SUBS, json=subscription(entities=[{"type": "Manhole", "idPattern": ".*:(a+)+$"}],
                                            watchedAttributes=["name"], q=f"name~={EVIL}"))
    assert r.status_code == 201, r.text
    started = time.perf_counter()
    broker.post(f"{BASE}/entities", json=entity(f"urn:ngsi-ld:Manhole:{NEAR_MISS}", name=prop(NEAR_MISS)))
    broker.post(f"{BASE}/entities", json=entity("urn:ngsi-ld:Manhole:aaaa", name=prop(NEAR_MISS)))
    assert _pending(broker) == 0
    assert time.perf_counter() - started < 1.0
    broker.patch(f"{BASE}/entities/urn:ngsi-ld:Manhole:aaaa/attrs/name", json={"value": "a" * 28})
    assert _pending(broker) == 1


def test_the_process_stays_responsive_while_a_pattern_query_runs(sqlite_city: City, tmp_path: Path) -> None:
    """/healthz of a live server, in a process of its own (a regex holding the interpreter would stop any
    client sharing it too), answered while the query with a catastrophic pattern runs."""
    env = {**os.environ, "WECITY_DATABASE_URL": sqlite_city.settings.database_url, "WECITY_VAR_DIR": str(tmp_path),
           "WECITY_MEDIA_DIR": str(tmp_path / "media"), "WECITY_SECRET_KEY": sqlite_city.settings.secret_key,
           "WECITY_RUN_BACKGROUND": "0"}
    server = Server(env, tmp_path / "server.log")
    server.start()
    try:
        headers = {"Authorization": f"Bearer {sqlite_city.api_key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
            # Long near misses: on Python's re one of them would take longer than the age of the universe.
            _seed(client, ["a" * 2000 + "!"] * 200 + ["a" * 28])
            outcome: dict[str, Any] = {}

            def query() -> None:
                started = time.perf_counter()
                params = {"type": "Manhole", "q": f"name~={EVIL}", "limit": 1000}
                try:
                    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as own:
                        outcome["ids"] = [e["id"] for e in own.get(f"{BASE}/entities", params=params).json()]
                except httpx.HTTPError as exc:
                    outcome["ids"] = exc
                outcome["seconds"] = time.perf_counter() - started

            worker = threading.Thread(target=query, daemon=True)
            worker.start()
            latencies = []
            while worker.is_alive() or not latencies:
                started = time.perf_counter()
                assert client.get("/healthz", timeout=2).status_code == 200
                latencies.append(time.perf_counter() - started)
            worker.join()
    finally:
        server.kill9()  # not a polite stop: a server stuck in a regex would not hear it
    assert outcome["ids"] == ["urn:ngsi-ld:Manhole:200"]
    assert outcome["seconds"] < 2.0
    assert max(latencies) < 0.5, latencies


def test_a_stored_q_re2_refuses_matches_nothing_instead_of_failing_writes(broker: Any) -> None:
    """A subscription kept before patterns ran on RE2 may hold a lookahead: writes go on, it never fires."""
    import sqlalchemy as sa

    from wecity.context.models import subscriptions

    r = broker.post(SUBS, json=subscription(id="urn:ngsi-ld:Subscription:old", q='name~="a"',
                                            watchedAttributes=["name"]))
    assert r.status_code == 201, r.text

    def keep_old_q(conn: sa.Connection) -> None:
        row = conn.execute(sa.select(subscriptions.c.pk, subscriptions.c.body)).one()
        conn.execute(subscriptions.update().where(subscriptions.c.pk == row.pk)
                     .values(body={**row.body, "q": 'name~="(?=a)"'}))

    broker.ctx.db.write_sync(keep_old_q)
    r = broker.post(f"{BASE}/entities", json=entity(name=prop("abc")))
    assert r.status_code == 201, r.text
    assert _pending(broker) == 0
