"""Background tasks of the case engine: the SLA clock check, every 30 seconds."""

from __future__ import annotations

import logging

from wecity.cases.clocks import check_clocks
from wecity.core.context import AppContext

log = logging.getLogger(__name__)


async def sla_clock_check(ctx: AppContext) -> None:
    fired = await ctx.db.write(check_clocks, ctx.clock.now())
    if fired:
        log.info("SLA clock events fired", extra={"fields": {"events": fired}})

