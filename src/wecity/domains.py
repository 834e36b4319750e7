"""The platform's domains, in dependency order: where models, migrations and routers are found."""

# Each name is a package under `wecity`. A domain may have `models.py` (tables), `migrations/`
# (its alembic branch, labelled with the domain's name) and `api.py` / `views.py` (routers).
DOMAINS: tuple[str, ...] = (
    "core",
    "identity",
    "geo",
    "media",
    "cases",
    "notify",
    "open311",
    "context",
    "iot",
    "insight",
    "web",
)
