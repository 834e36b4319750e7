"""Two writes of one entity at the same moment on PostgreSQL: each is taken after the other, none is lost,
and a second creation of one id is AlreadyExists. (SQLite has one writer: they cannot overlap there.)"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tests.conftest import City
from wecity.context import rows, verbs
from wecity.context.entity import Entity, normalize_attribute
from wecity.context.env import Env
from wecity.context.ldcontext import ContextStore
from wecity.core.errors import AlreadyExists
from wecity.core.registry import Events

STORE = ContextStore()
TERMS = STORE.core


def _overlapping(city: City, first: Any, second: Any) -> list[Any]:
    """Run `first` in a transaction left open while `second` runs in another thread; commit `first` once
    `second` has had time to reach the database; what `second` returned or raised."""
    if city.backend != "postgres":
        pytest.skip("SQLite has one writer: two writes cannot overlap there")
    outcome: list[Any] = []

    def run_second() -> None:
        try:
            outcome.append(city.db.write_sync(second))
        except Exception as exc:  # the test looks at what it was
            outcome.append(exc)

    with city.db.engine.connect() as conn:
        with conn.begin():
            first(conn)
            other = threading.Thread(target=run_second)
            other.start()
            time.sleep(0.5)  # the second is waiting for the first's lock by now
            assert not outcome, "the second write did not wait for the first"
        other.join(20)
    return outcome


def _prop(name: str, value: Any, env: Env) -> dict[str, Any]:
    return {TERMS.expand(name): normalize_attribute({"type": "Property", "value": value}, TERMS, env.now, name=name)}


def test_two_updates_of_one_entity_at_once_both_stay(city: City) -> None:
    env = Env("", city.clock.now(), STORE, Events())
    entity_id = "urn:ngsi-ld:Manhole:race"
    city.db.write_sync(lambda c: verbs.create(c, env, Entity(
        entity_id, [TERMS.expand("Manhole")], {**_prop("a", 0, env), **_prop("b", 0, env)})))
    outcome = _overlapping(city, lambda c: verbs.update(c, env, entity_id, _prop("a", 1, env)),
                           lambda c: verbs.update(c, env, entity_id, _prop("b", 2, env)))
    assert not any(isinstance(o, Exception) for o in outcome), outcome
    found = city.db.read_sync(lambda c: rows.get(c, "", entity_id))
    assert found is not None
    assert (found.attrs[TERMS.expand("a")]["value"], found.attrs[TERMS.expand("b")]["value"]) == (1, 2)


def test_two_creations_of_one_id_at_once_are_one_entity_and_already_exists(city: City) -> None:
    env = Env("", city.clock.now(), STORE, Events())
    entity = Entity("urn:ngsi-ld:Manhole:twice", [TERMS.expand("Manhole")], _prop("a", 1, env))
    outcome = _overlapping(city, lambda c: verbs.create(c, env, entity), lambda c: verbs.create(c, env, entity))
    assert len(outcome) == 1 and isinstance(outcome[0], AlreadyExists), outcome


def test_a_batch_and_an_update_at_once_both_stay(city: City) -> None:
    from wecity.context.batch import batch_upsert

    env = Env("", city.clock.now(), STORE, Events())
    entity_id = "urn:ngsi-ld:Manhole:batch"
    city.db.write_sync(lambda c: verbs.create(c, env, Entity(
        entity_id, [TERMS.expand("Manhole")], {**_prop("a", 0, env), **_prop("b", 0, env)})))
    outcome = _overlapping(
        city, lambda c: verbs.update(c, env, entity_id, _prop("a", 1, env)),
        lambda c: batch_upsert(c, env, [Entity(entity_id, [TERMS.expand("Manhole")], _prop("b", 2, env))],
                               mode="update"))
    assert not any(isinstance(o, Exception) for o in outcome), outcome
    found = city.db.read_sync(lambda c: rows.get(c, "", entity_id))
    assert found is not None
    assert (found.attrs[TERMS.expand("a")]["value"], found.attrs[TERMS.expand("b")]["value"]) == (1, 2)


def test_a_batch_of_ten_thousand_takes_a_bounded_number_of_locks(city: City) -> None:
    """Locks live in the server's shared lock table: a big batch takes at most LOCK_BUCKETS of them."""
    import sqlalchemy as sa

    if city.backend != "postgres":
        pytest.skip("SQLite takes no locks: it has one writer")
    with city.db.engine.connect() as conn, conn.begin():
        rows.lock_ids(conn, "", [f"urn:ngsi-ld:Manhole:{n}" for n in range(10_000)])
        held = conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
                            ).scalar_one()
    assert 0 < held <= rows.LOCK_BUCKETS


def test_a_purge_of_attributes_keeps_a_change_made_meanwhile(city: City) -> None:
    from wecity.context import search

    env = Env("", city.clock.now(), STORE, Events())
    entity_id = "urn:ngsi-ld:Manhole:purge"
    city.db.write_sync(lambda c: verbs.create(c, env, Entity(
        entity_id, [TERMS.expand("Manhole")], {**_prop("a", 0, env), **_prop("b", 0, env)})))
    found = city.db.read_sync(lambda c: search.query(c, "", search.Query(ids=[entity_id]), limit=10, offset=0,
                                                      count=False, now=env.now)[0])
    outcome = _overlapping(city, lambda c: verbs.update(c, env, entity_id, _prop("a", 1, env)),
                           lambda c: verbs.purge(c, env, found, drop={TERMS.expand("b")}))
    assert outcome == [1]
    kept = city.db.read_sync(lambda c: rows.get(c, "", entity_id))
    assert kept is not None and kept.attrs[TERMS.expand("a")]["value"] == 1 and TERMS.expand("b") not in kept.attrs
