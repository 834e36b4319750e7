"""The platform's domains, in dependency order: where models, migrations, routers and wiring are found."""

# Each name is a package under `wecity`. A domain may have `models.py` (tables), `migrations/`
# (its alembic branch, labelled with the domain's name), `api.py` / `views.py` (routers) and `wiring.py`
# (what it plugs into an app). A domain imports only the domains before it (tests/test_layers.py): the
# data platform (context, iot) sits below the business platform (cases), which hears of it through events.
DOMAINS: tuple[str, ...] = (
    "core",
    "identity",
    "geo",
    "media",
    "context",
    "iot",
    "cases",
    "notify",
    "govservice",
    "enterprise",
    "datashare",
    "ai",
    "insight",
    "open311",
    "web",
)
