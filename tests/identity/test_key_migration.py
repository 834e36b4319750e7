"""Downgrading past API key scopes: a narrowed key must not come back with every scope in every tenant."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command

from wecity.core.db import Database
from wecity.core.migrate import alembic_config, upgrade
from wecity.identity.keys import api_key_grant
from wecity.identity.service import add_api_key

BEFORE_SCOPES = "b3d1e07a5c42"


def test_a_downgrade_past_scopes_revokes_the_keys_it_cannot_keep_narrow(empty_database_url: str) -> None:
    db = Database(empty_database_url, pool_size=1)
    try:
        upgrade(db.engine)
        now = datetime(2026, 11, 2, tzinfo=UTC)
        narrow = db.write_sync(lambda c: add_api_key(c, name="dashboard", scopes=["ngsild:read"], tenant="a", now=now))
        full = db.write_sync(lambda c: add_api_key(c, name="gateway", now=now, tenant="*",
                                                   scopes=["open311:write", "ngsild:read", "ngsild:write"]))
        for step, target in ((command.downgrade, BEFORE_SCOPES), (command.upgrade, "heads")):
            config = alembic_config(empty_database_url)
            with db.engine.begin() as conn:
                config.attributes["connection"] = conn
                step(config, target)
        from wecity.core import cache

        db.read_sync(lambda c: cache.invalidate(c))
        assert db.read_sync(lambda c: api_key_grant(c, narrow)) is None  # revoked, not widened
        kept = db.read_sync(lambda c: api_key_grant(c, full))
        assert kept is not None and kept.tenant == "*"
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL")).scalar() == 1
    finally:
        db.close()
