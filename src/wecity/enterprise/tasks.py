"""Background work of enterprise services: the incremental match, the 免申即享 grants it makes due, and the
notices to enterprises newly eligible for a policy they apply for."""

from __future__ import annotations

import logging

from wecity.core.context import AppContext
from wecity.enterprise import matching

log = logging.getLogger(__name__)


async def match_task(ctx: AppContext) -> None:
    now = ctx.clock.now()
    report = await ctx.db.write(lambda c: matching.match_pending(c, now=now))
    granted = 0
    # A backlog (a new policy, a fresh register) is granted in small transactions: between them the
    # database's writer and the event loop serve requests.
    while granted < matching.GRANTS_PER_ROUND:
        made = await ctx.db.write(lambda c: matching.grant_pending(c, now=now, key_dir=ctx.settings.var_dir))
        granted += made
        if made < matching.GRANT_BATCH:
            break
    told = await ctx.db.write(lambda c: matching.notify_pending(c, now=now))
    if report.enterprises or granted or told:
        log.info("enterprise policies matched", extra={"fields": {**report.as_dict(), "granted": granted,
                                                                  "notified": told}})
