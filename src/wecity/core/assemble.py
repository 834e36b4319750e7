"""Assembling an app: every domain's `wecity.<domain>.wiring.wire(registry)`, in DOMAINS order.

A domain's `wiring.py` is the one place that says what it adds besides its routers: outbox channels,
jobs, periodic tasks, event listeners, runner hooks and `wecity` sub-commands. For example:

    def wire(registry: Registry) -> None:
        registry.add_periodic("cases.sla_clocks", 30, tasks.sla_clock_check)
        registry.events.subscribe("context.entity_changed", sensors.on_entity_changed)
        registry.add_commands(commands.add_commands)

`build_context` makes an app's context with its registry filled; every entry point (the web app, the
runner, the CLI) builds its context this way, and tests that want a bare registry build `AppContext`
themselves.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from wecity.core import worktime
from wecity.core.clock import Clock
from wecity.core.context import AppContext
from wecity.core.db import Database
from wecity.core.registry import Registry
from wecity.core.settings import Settings
from wecity.domains import DOMAINS


def domain_module(domain: str, name: str) -> ModuleType | None:
    """`wecity.<domain>.<name>`, or None when the domain has no such module."""
    try:
        return importlib.import_module(f"wecity.{domain}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"wecity.{domain}", f"wecity.{domain}.{name}"):
            return None
        raise


def wire_domains(registry: Registry) -> Registry:
    """Let every domain add its parts to `registry`."""
    for domain in DOMAINS:
        module = domain_module(domain, "wiring")
        if module is not None:
            module.wire(registry)
    return registry


def build_context(settings: Settings, *, db: Database | None = None, clock: Clock | None = None,
                  pool_size: int | None = None) -> AppContext:
    """An app's context on `db` (or a new Database for the settings), with every domain wired in."""
    if db is None:
        db = Database(settings.database_url) if pool_size is None else Database(settings.database_url,
                                                                                pool_size=pool_size)
    worktime.configure(db.engine, hours=settings.work_hours)
    return AppContext(settings=settings, db=db, clock=clock or Clock(), registry=wire_domains(Registry()))
