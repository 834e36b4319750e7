"""Runner hooks of the media domain: the periodic sweep of files whose row never committed."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.engine import Connection

from wecity.core.context import AppContext
from wecity.media.service import MediaStore, media_store, sweep_orphans

log = logging.getLogger(__name__)

# Files are written before their row commits; anything younger may still belong to a live transaction.
ORPHAN_GRACE = timedelta(hours=1)
SWEEP_EVERY_SECONDS = 6 * 3600.0


async def sweep_media_orphans(ctx: AppContext) -> None:
    # `wecity runner` runs without the web app, so the store may not be in ctx.services yet.
    store: MediaStore = ctx.services.get("media_store") or media_store(ctx.settings)
    older_than = ctx.clock.now() - ORPHAN_GRACE

    def sweep(conn: Connection) -> list[str]:
        return sweep_orphans(conn, store, older_than=older_than)

    removed = await ctx.db.read(sweep)
    if removed:
        log.info("removed %d orphaned media files", len(removed))

