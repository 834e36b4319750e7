"""What the case engine plugs into an app: the SLA clock check, the sensor rules' listener, its NGSI-LD
entities (read-only through the broker) and its commands."""

from __future__ import annotations

from wecity.cases import commands, ngsild, receive, sensors, tasks
from wecity.core.context import AppContext
from wecity.core.registry import Registry

SLA_CHECK_SECONDS = 30.0
IDEMPOTENCY_PURGE_SECONDS = 3600.0


async def keep_entities(ctx: AppContext) -> None:
    """The cases' NGSI-LD entities, brought in step with the case events since the last run."""
    now = ctx.clock.now()
    while await ctx.db.write(lambda conn: ngsild.consume(conn, now=now)):
        pass  # a full batch: there may be more


async def purge_idempotency_keys(ctx: AppContext) -> None:
    await ctx.db.write(receive.purge_idempotency_keys, ctx.clock.now())


def wire(registry: Registry) -> None:
    registry.add_periodic("cases.sla_clocks", SLA_CHECK_SECONDS, tasks.sla_clock_check)
    # A reading the context broker stores may meet a sensor rule and open a case, in the same transaction.
    registry.events.subscribe("context.entity_changed", sensors.on_entity_changed)
    # Every case is a ServiceRequest entity the engine keeps in step; the broker's API only reads it.
    registry.own_entities(ngsild.ID_PREFIX, ngsild.OWNER)
    registry.add_periodic("cases.ngsild", ngsild.PUBLISH_SECONDS, keep_entities)
    registry.add_periodic("cases.idempotency_purge", IDEMPOTENCY_PURGE_SECONDS, purge_idempotency_keys)
    registry.add_commands(commands.add_commands)
