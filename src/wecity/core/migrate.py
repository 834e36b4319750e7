"""Schema migrations: one alembic branch per domain, applied together with `upgrade heads`.

Branches keep domains independent: a domain's migration says `depends_on` another domain's revision
when it needs that domain's tables (cases needs departments and areas), never a shared linear history.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from wecity.domains import DOMAINS

HERE = Path(__file__).parent


def branch_folder(domain: str) -> Path | None:
    """Where `domain`'s revisions live: `<package>/migrations/`, except for core, whose `migrations/`
    is alembic's script folder (env.py, which alembic would load as a revision) and keeps them in
    `migrations/versions/`."""
    spec = importlib.util.find_spec(f"wecity.{domain}")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    return folder / "versions" if (folder / "env.py").exists() else folder


def version_locations() -> list[str]:
    return [str(f) for f in map(branch_folder, DOMAINS) if f is not None and f.is_dir()]


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.set_main_option("version_locations", " ".join(version_locations()))
    cfg.set_main_option("path_separator", "space")
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def expected_heads(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def current_heads(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


def pending_heads(url: str, current: set[str]) -> set[str]:
    """Script heads not yet applied. A branch another one `depends_on` is applied without being a
    recorded head, so the applied set is everything reachable from the recorded heads."""
    script = ScriptDirectory.from_config(alembic_config(url))
    applied = {rev.revision for rev in script.iterate_revisions(tuple(current), "base")} if current else set()
    return set(script.get_heads()) - applied


def revision(url: str, domain: str, message: str) -> None:
    """Autogenerate the next revision of `domain`'s branch from the difference of its tables."""
    branch = branch_folder(domain)
    assert branch is not None
    branch.mkdir(exist_ok=True)  # before the config, which lists only folders that exist
    cfg = alembic_config(url)
    cfg.attributes["only_domain"] = domain
    script = ScriptDirectory.from_config(cfg)
    label_heads = [h for h in script.get_revisions("heads") if domain in (h.branch_labels or ())
                   or any(domain in (r.branch_labels or ()) for r in script.iterate_revisions(h.revision, "base"))]
    folder = str(branch)
    if label_heads:
        command.revision(cfg, message=message, autogenerate=True, head=f"{domain}@head")
    else:
        command.revision(cfg, message=message, autogenerate=True, head="base", branch_label=domain,
                         version_path=folder)
