"""Start-up of the base layer inside the web app: working hours from the settings."""

from __future__ import annotations

from wecity.core import worktime
from wecity.core.context import AppContext


async def on_startup(ctx: AppContext) -> None:
    worktime.configure(hours=getattr(ctx.settings, "work_hours", worktime.DEFAULT_HOURS))
