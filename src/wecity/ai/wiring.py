"""What the AI platform plugs into an app: the daily retrain of the category model, the duplicate finder
that looks at new cases moments after intake, the judging of readings for sensor rules with an anomaly
condition, and the `wecity ai` commands."""

from __future__ import annotations

import logging

from wecity.ai import anomaly_rules, commands, duplicates
from wecity.ai.training import RETRAIN_LEASE_SECONDS, RETRAIN_TASK
from wecity.core.context import AppContext
from wecity.core.registry import Registry

log = logging.getLogger(__name__)
RETRAIN_SECONDS = 24 * 3600.0
DUPLICATES_SECONDS = 30.0


async def retrain(ctx: AppContext) -> None:
    from wecity.ai.training import train_async

    card = await train_async(ctx, by="runner", unless_unchanged=True)
    if card is None:
        return  # nothing new to learn from
    log.info("category model trained", extra={"fields": {"version": card["version"], "state": card["state"],
                                                         "macro_f1": card["metrics"]["macro_f1"]}})


async def find_duplicates(ctx: AppContext) -> None:
    from wecity.ai.duplicates import review_new

    now = ctx.clock.now()
    while await ctx.db.write(lambda conn: review_new(conn, now=now)):
        pass  # a full batch: there may be more


def wire(registry: Registry) -> None:
    registry.add_periodic(RETRAIN_TASK, RETRAIN_SECONDS, retrain, lease_seconds=RETRAIN_LEASE_SECONDS)
    registry.add_periodic("ai.duplicates", DUPLICATES_SECONDS, find_duplicates)
    registry.add_commands(commands.add_commands)
    # A stored reading may be an anomaly a sensor rule watches for, and open its case in the same transaction.
    registry.events.subscribe("context.entity_changed", anomaly_rules.on_entity_changed)
    # A merge done by staff outside a proposal settles the proposal for the same pair.
    registry.events.subscribe("cases.merged", duplicates.on_case_merged)
    # A merge taken apart: the pair is never proposed or merged again.
    registry.events.subscribe("cases.unmerged", duplicates.on_case_unmerged)
