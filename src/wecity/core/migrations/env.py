"""Alembic environment: the platform's metadata, one branch per domain."""

import importlib

from alembic import context
from sqlalchemy import create_engine

from wecity.core.db import metadata
from wecity.domains import DOMAINS

for _domain in DOMAINS:
    try:
        importlib.import_module(f"wecity.{_domain}.models")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"wecity.{_domain}", f"wecity.{_domain}.models"):
            raise

config = context.config
only_domain = config.attributes.get("only_domain")


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001
    if only_domain is None:
        return True
    table = obj if type_ == "table" else getattr(obj, "table", None)
    if table is None or reflected and compare_to is None:
        return False
    return table.info.get("domain") == only_domain


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        assert url, "alembic_config() always sets sqlalchemy.url"
        engine = create_engine(url)
        with engine.begin() as connection:
            _configure_and_run(connection)
    else:
        _configure_and_run(connection)


def _configure_and_run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=metadata, include_object=include_object,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run()
