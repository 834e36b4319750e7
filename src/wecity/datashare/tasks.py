"""Background work of the data platform: requests answered late are escalated to the coordinating department."""

from __future__ import annotations

import logging

from wecity.core.context import AppContext
from wecity.datashare.requests import check_clocks

log = logging.getLogger(__name__)


async def clock_check(ctx: AppContext) -> None:
    escalated = await ctx.db.write(check_clocks, ctx.clock.now(), ctx.settings.data_coordinator)
    if escalated:
        log.info("data requests escalated", extra={"fields": {"requests": escalated}})
