"""What digital government plugs into an app: the application clock check, the `wecity govservice`
commands, and who may see an application's materials."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.govservice import commands, materials, tasks
from wecity.media.access import VIEW_EVENT

CLOCK_CHECK_SECONDS = 300.0  # limits are in working days: a check every five minutes is plenty


def wire(registry: Registry) -> None:
    registry.add_periodic("govservice.clocks", CLOCK_CHECK_SECONDS, tasks.clock_check)
    registry.add_commands(commands.add_commands)
    registry.events.subscribe(VIEW_EVENT, materials.on_media_view)  # an application's materials at /media/{id}
