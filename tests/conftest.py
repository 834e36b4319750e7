"""Test fixtures: a fresh demo city per test, on SQLite and on PostgreSQL.

The city is migrated and seeded once per backend (a template), then each test gets its own copy:
a file copy on SQLite, `CREATE DATABASE ... TEMPLATE` on PostgreSQL. PostgreSQL runs when
WECITY_TEST_PG_URL is set (`make test` sets it and starts the server); otherwise those tests are skipped
with that reason printed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.core.clock import FrozenClock
from wecity.core.db import Database
from wecity.core.migrate import upgrade
from wecity.core.settings import Settings

PG_URL = os.environ.get("WECITY_TEST_PG_URL")
SEED_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday morning in Changsha (17:00 local)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _seed(db: Database) -> str:
    from wecity.demo.changsha import seed_city
    from wecity.identity.service import add_api_key

    def run(conn: sa.Connection) -> str:
        seed_city(conn, SEED_TIME)
        # The tests' key may do everything, in every tenant; tests of scopes make narrower keys.
        return add_api_key(conn, name="tests", scopes=["admin"], tenant="*", now=SEED_TIME)

    return db.write_sync(run)


class Templates:
    """Seeded template databases, made on first use and kept for the session."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.made: dict[str, tuple[str, str]] = {}

    def get(self, backend: str) -> tuple[str, str]:
        if backend not in self.made:
            if backend == "sqlite":
                url = f"sqlite:///{self.tmp / 'template.db'}"
            else:
                url = _pg_create(f"wecity_tpl_{uuid.uuid4().hex[:8]}")
            db = Database(url, pool_size=1)
            upgrade(db.engine)
            key = _seed(db)
            db.close()
            self.made[backend] = (url, key)
        return self.made[backend]

    def drop_all(self) -> None:
        for backend, (url, _) in self.made.items():
            if backend == "postgres":
                _pg_drop(url.rsplit("/", 1)[1])


def _pg_admin() -> sa.Engine:
    assert PG_URL
    return sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _pg_create(name: str, template: str | None = None) -> str:
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    assert PG_URL
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def _pg_drop(name: str) -> None:
    with _pg_admin().connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    t = Templates(tmp_path_factory.mktemp("templates"))
    yield t
    t.drop_all()


class City:
    """One fresh demo city for one test: its settings, database, clock and Open311 API key."""

    def __init__(self, settings: Settings, db: Database, api_key: str, backend: str) -> None:
        self.settings = settings
        self.db = db
        self.api_key = api_key
        self.backend = backend
        self.clock = FrozenClock(SEED_TIME)


@pytest.fixture(params=BACKENDS)
def city(request: pytest.FixtureRequest, templates: Templates, tmp_path: Path) -> Iterator[City]:
    backend = request.param
    if backend == "postgres" and not PG_URL:
        pytest.skip("PostgreSQL tests need WECITY_TEST_PG_URL (make test sets it and starts the server)")
    template_url, key = templates.get(backend)
    if backend == "sqlite":
        path = tmp_path / "city.db"
        shutil.copy(template_url.split("///", 1)[1], path)
        url = f"sqlite:///{path}"
        name = None
    else:
        name = f"wecity_t_{uuid.uuid4().hex[:10]}"
        url = _pg_create(name, template_url.rsplit("/", 1)[1])
    settings = Settings(database_url=url, media_dir=tmp_path / "media", secret_key="x" * 40, var_dir=tmp_path,
                        run_background=False)
    db = Database(url, pool_size=4)
    yield City(settings, db, key, backend)
    db.close()
    if name:
        _pg_drop(name)


@pytest.fixture
def sqlite_city(templates: Templates, tmp_path: Path) -> Iterator[City]:
    """The demo city on SQLite only, for tests of behaviour that does not depend on the backend."""
    template_url, key = templates.get("sqlite")
    path = tmp_path / "city.db"
    shutil.copy(template_url.split("///", 1)[1], path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, media_dir=tmp_path / "media", secret_key="x" * 40, var_dir=tmp_path,
                        run_background=False)
    db = Database(url, pool_size=4)
    yield City(settings, db, key, "sqlite")
    db.close()


@pytest.fixture(params=BACKENDS)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database with nothing in it yet, on each backend (a file not yet made, on SQLite)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL tests need WECITY_TEST_PG_URL (make test sets it and starts the server)")
    name = f"wecity_e_{uuid.uuid4().hex[:10]}"
    url = _pg_create(name)
    try:
        yield url
    finally:
        _pg_drop(name)


# The address a test client's requests come from: Starlette's stand-in name, or this machine's.
ELSEWHERE = ("testclient", 50000)
LOOPBACK = ("127.0.0.1", 50000)


def make_client(city: City, *, peer: tuple[str, int] = ELSEWHERE, **overrides: object):  # noqa: ANN201
    from fastapi.testclient import TestClient

    from wecity.api.app import create_app

    settings = replace(city.settings, **overrides) if overrides else city.settings
    return TestClient(create_app(settings, clock=city.clock, db=city.db), client=peer)


@pytest.fixture
def client(city: City) -> Iterator[object]:
    with make_client(city) as c:
        yield c
