"""Migration branches: core keeps its revisions beside alembic's script folder, not in it."""

from pathlib import Path

from alembic.script import ScriptDirectory

from wecity.core.migrate import alembic_config, branch_folder, version_locations


def test_core_revisions_live_in_versions_so_env_py_is_never_read_as_a_revision() -> None:
    core = branch_folder("core")
    assert core is not None and core.name == "versions" and (core.parent / "env.py").is_file()
    assert str(core.parent) not in version_locations()
    assert branch_folder("notify") == Path(core.parent.parent.parent / "notify" / "migrations")


def test_every_domain_branch_is_found_with_its_label() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    labels = {label for rev in script.walk_revisions() for label in (rev.branch_labels or ())}
    assert {"core", "notify", "identity", "geo", "cases"} <= labels
