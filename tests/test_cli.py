"""The `wecity` command: help everywhere, users and API keys from the command line."""

import subprocess
import sys

import pytest

from wecity.cli import main

from .conftest import City


@pytest.mark.parametrize("args", [[], ["serve"], ["demo"], ["db", "upgrade"], ["city", "import-areas"],
                                  ["city", "locate"], ["user", "add"], ["apikey", "add"],
                                  ["apikey", "list"], ["apikey", "revoke"],
                                  ["device", "import"], ["device", "list"], ["device", "remove"], ["audit", "verify"],
                                  ["ai", "evaluate"], ["notify", "add-robot"], ["notify", "list-robots"]])
def test_help_everywhere_and_bilingual(args: list[str]) -> None:
    out = subprocess.run([sys.executable, "-m", "wecity", *args, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "usage: wecity" in out.stdout


def test_user_and_apikey_add(sqlite_city: City, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    assert main(["user", "add", "newhandler", "--department", "shuiwu", "--role", "handler",
                 "--password", "a-long-password"]) == 0
    assert main(["user", "add", "newhandler", "--password", "a-long-password"]) == 2
    assert "已存在" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a key is made for a purpose: --scope is required
        main(["apikey", "add", "partner"])
    capsys.readouterr()
    assert main(["apikey", "add", "partner", "--scope", "open311:write"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert key.startswith("wk_")
    from wecity.identity.service import api_key_is_valid

    assert sqlite_city.db.read_sync(api_key_is_valid, key)

    assert main(["apikey", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"{key[:10]}…  partner  -  open311:write  (default)" in listed and "tests" in listed
    assert main(["apikey", "revoke", "wk_"]) == 2  # too short to name one key
    assert "前 10 个字符" in capsys.readouterr().err
    assert main(["apikey", "revoke", key[:10]]) == 0
    assert "revoked 1" in capsys.readouterr().out
    assert not sqlite_city.db.read_sync(api_key_is_valid, key)
    assert main(["apikey", "revoke", key]) == 1  # already revoked: nothing left to revoke
    # Each change is on the audit log, by the account that ran the command; the key itself is not.
    import sqlalchemy as sa

    from wecity.identity.models import audit_log

    audits = sqlite_city.db.read_sync(lambda c: c.execute(sa.select(audit_log.c.action, audit_log.c.actor,
                                                                    audit_log.c.target, audit_log.c.detail).where(
        audit_log.c.action.in_(["user.add", "apikey.add", "apikey.revoke"])).order_by(audit_log.c.id)).all())
    assert [a.action for a in audits] == ["user.add", "apikey.add", "apikey.revoke"]
    assert all(a.actor.startswith("cli:") for a in audits) and key not in str(audits)
    assert audits[0].detail["roles"] == ["handler"] and audits[1].target == f"apikey:{key[:10]}"


def test_bad_setting_fails_at_start_with_the_reason(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # noqa: ANN001
    out = subprocess.run([sys.executable, "-m", "wecity", "db", "upgrade"], capture_output=True, text=True,
                         cwd=tmp_path, env={"WECITY_DATABASE_URL": "oracle://x", "PATH": "/usr/bin"})
    assert out.returncode == 2
    assert "WECITY_DATABASE_URL" in out.stderr
