"""What the media domain plugs into an app: the sweep of files whose rows never committed."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.media import tasks


def wire(registry: Registry) -> None:
    registry.add_periodic("media.sweep_orphans", tasks.SWEEP_EVERY_SECONDS, tasks.sweep_media_orphans)
