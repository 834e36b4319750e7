"""`wecity demo` replaces only a database it made itself (or an empty one), never a real city's."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from wecity.cli import main

from ..conftest import City


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The settings `wecity demo` reads, in a temp dir; serving is replaced by a no-op so the command returns."""
    monkeypatch.setenv("WECITY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WECITY_MEDIA_DIR", str(tmp_path / "media"))
    monkeypatch.setenv("WECITY_SECRET_KEY", "d" * 40)
    monkeypatch.setattr("wecity.cli._serve", lambda *args, **kwargs: 0)


def _count(url: str, sql: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar() or 0)
    finally:
        engine.dispose()


def test_demo_refuses_to_wipe_a_real_city(city: City, demo_env: None, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    url = city.settings.database_url
    monkeypatch.setenv("WECITY_DATABASE_URL", url)
    keys_before = _count(url, "SELECT count(*) FROM api_keys")
    departments_before = _count(url, "SELECT count(*) FROM departments")

    assert main(["demo", "--no-history"]) == 2

    err = capsys.readouterr().err
    assert "did not make" in err and "不是由 `wecity demo` 生成" in err
    assert "wecity:wecity@" not in err  # the password is not printed
    assert _count(url, "SELECT count(*) FROM api_keys") == keys_before >= 1
    assert _count(url, "SELECT count(*) FROM departments") == departments_before >= 1


def test_demo_refuses_a_sqlite_path_holding_another_file(tmp_path: Path, demo_env: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database, but somebody's notes\n" * 100)
    monkeypatch.setenv("WECITY_DATABASE_URL", f"sqlite:///{notes}")
    assert main(["demo", "--no-history"]) == 2
    assert notes.read_text().startswith("not a database")


def test_demo_refuses_a_real_city_named_with_url_options(city: City, demo_env: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """`?timeout=60` is an option of the URL, not part of the file's name: the real file is still found."""
    url = city.settings.database_url
    if not url.startswith("sqlite"):
        pytest.skip("SQLite file URLs only")
    keys_before = _count(url, "SELECT count(*) FROM api_keys")
    for named in (f"{url}?timeout=60", f"sqlite:///file:{url.split('///', 1)[1]}?uri=true"):
        monkeypatch.setenv("WECITY_DATABASE_URL", named)
        assert main(["demo", "--no-history"]) == 2, named
    assert _count(url, "SELECT count(*) FROM api_keys") == keys_before >= 1
    tables = sa.inspect(sa.create_engine(url, poolclass=sa.pool.NullPool)).get_table_names()
    assert "wecity_demo_mark" not in tables


def test_demo_takes_an_empty_database_url_and_replaces_its_own(empty_database_url: str, demo_env: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", empty_database_url)
    assert main(["demo", "--no-history"]) == 0
    assert _count(empty_database_url, "SELECT count(*) FROM wecity_demo_mark") == 1
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE left_by_the_last_demo (x integer)")
    engine.dispose()

    assert main(["demo", "--no-history"]) == 0

    tables = sa.inspect(sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)).get_table_names()
    assert "left_by_the_last_demo" not in tables and "cases" in tables
    assert _count(empty_database_url, "SELECT count(*) FROM wecity_demo_mark") == 1
    assert _count(empty_database_url, "SELECT count(*) FROM api_keys") == 3  # one demo key per purpose, once
