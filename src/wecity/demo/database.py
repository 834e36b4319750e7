"""The demo city's database: made fresh on each `wecity demo`, and only ever over a database the demo made.

`wecity demo` wipes the database it is given before seeding the city. The database named by
WECITY_DATABASE_URL may be a real city's, so the wipe is allowed only when the database is empty or carries
the demo's mark: a table of its own, written right after the wipe and before anything else, so that a demo
stopped half-way through seeding is still recognised as one the next time.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wecity.core.errors import Conflict

# Not in the platform's metadata: migrations never create it, so no real city's database has it.
_marks = sa.MetaData()
demo_mark = sa.Table(
    "wecity_demo_mark", _marks,
    sa.Column("made_at", sa.String(40), nullable=False),
)


class NotADemoDatabase(Conflict):
    default_code = "demo.not_a_demo_database"

    def __init__(self, url: str) -> None:
        shown = sa.engine.make_url(url).render_as_string(hide_password=True)
        super().__init__(
            f"{shown} holds data that `wecity demo` did not make, and the demo replaces only its own databases; "
            "unset WECITY_DATABASE_URL to use var/demo.db, or name an empty database",
            message_zh=f"{shown} 中已有不是由 `wecity demo` 生成的数据，演示只会覆盖它自己生成的数据库；"
                       "请取消 WECITY_DATABASE_URL 以使用 var/demo.db，或指定一个空数据库")


def _objects(conn: sa.Connection) -> set[str]:
    """Tables, views and sequences in the schema the demo would wipe (`public` on PostgreSQL)."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names()) | set(inspector.get_view_names())
    if conn.dialect.name == "postgresql":
        names |= set(inspector.get_sequence_names())
    return names


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, as SQLAlchemy opens it (`?timeout=60` and such are options, not part of
    the name: a path taken from the raw text would name a file that does not exist, and a real city's
    database would be taken for an empty one). None for other databases and an in-memory one; a URI
    filename (`file:…`, `?uri=true`) is not one the demo replaces."""
    parsed = sa.engine.make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    name = parsed.database
    if not name or name == ":memory:":
        return None
    if name.startswith("file:") or "uri" in parsed.query:
        raise NotADemoDatabase(url)
    return Path(name)


def check_replaceable(url: str) -> None:
    """Raise NotADemoDatabase unless the database is empty or was made by the demo."""
    path = _sqlite_path(url)
    if path is not None and (not path.exists() or path.stat().st_size == 0):
        return
    probe = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with probe.connect() as conn:
            found = _objects(conn)
    except sa.exc.DatabaseError:  # a SQLite path that holds some other file
        raise NotADemoDatabase(url) from None
    finally:
        probe.dispose()
    if found and demo_mark.name not in found:
        raise NotADemoDatabase(url)


def _wipe(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


def _mark(engine: sa.Engine, now: datetime) -> None:
    with engine.begin() as conn:
        _marks.create_all(conn)
        conn.execute(demo_mark.insert().values(made_at=now.isoformat()))


def create_demo_database(settings: Any, *, history: bool = True) -> dict[str, str]:
    """Replace the configured database (if empty or a demo's) with the demo city; return its API keys by
    purpose (wecity.demo.seed.DEMO_KEYS)."""
    from wecity.core.clock import Clock
    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.demo.seed import seed_demo

    url = settings.database_url
    check_replaceable(url)
    _wipe(url)
    now = Clock().now()
    db = Database(url, pool_size=2)
    try:
        _mark(db.engine, now)
        upgrade(db.engine)
        return db.write_sync(lambda conn: seed_demo(conn, now, settings, history=history))
    finally:
        db.close()
