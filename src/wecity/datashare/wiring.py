"""What the data platform plugs into an app: the request clock check, the indexing of readings for "who
used my data", and the `wecity data` commands."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.datashare import commands, disclosures, tasks

CLOCK_CHECK_SECONDS = 600.0  # answers are due in working days: a check every ten minutes is plenty
INDEX_SECONDS = 5.0  # a citizen sees a reading of their record within seconds


def wire(registry: Registry) -> None:
    registry.add_periodic("datashare.clocks", CLOCK_CHECK_SECONDS, tasks.clock_check)
    registry.add_periodic("datashare.disclosures", INDEX_SECONDS, disclosures.index_task)
    registry.add_commands(commands.add_commands)
