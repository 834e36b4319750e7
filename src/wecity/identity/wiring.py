"""What identity plugs into an app: the `wecity user`, `wecity apikey` and `wecity audit` commands, and
the purge of sign-in failures that no longer count."""

from __future__ import annotations

from wecity.core.registry import Registry
from wecity.identity import commands, signin

PURGE_FAILURES_SECONDS = 3600


def wire(registry: Registry) -> None:
    registry.add_commands(commands.add_commands)
    registry.add_periodic("identity.sign_in_failures_purge", PURGE_FAILURES_SECONDS, signin.purge_failures)
