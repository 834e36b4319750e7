"""The password rule for new passwords: `12345678` was accepted before."""

from __future__ import annotations

import pytest

from tests.conftest import SEED_TIME, City
from wecity.cli import main
from wecity.core.errors import ValidationFailed
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.passwords import check_password, common_passwords
from wecity.identity.service import add_user


@pytest.mark.parametrize(("password", "says"), [
    ("12345678", "at least 10"),
    ("1234567890", "most common"),
    ("Password1234", "most common"),  # compared without case
    ("woaini1314", "most common"),
    ("1qaz2wsx3edc", "most common"),
    ("xiaoming-2026", "username"),
    ("XiaoMing", "at least 10"),
    ("x" * 201, "at most 200"),
])
def test_weak_passwords_are_refused_with_the_reason(password: str, says: str) -> None:
    with pytest.raises(ValidationFailed, match=says) as refused:
        check_password(password, username="xiaoming")
    assert refused.value.code == "password.weak" and refused.value.message_zh != refused.value.message


def test_good_passwords_pass_and_the_list_is_the_vendored_one() -> None:
    for password in (DEMO_PASSWORD, "long-enough", "a-long-password", "correct horse battery staple"):
        check_password(password, username="xiaoming")
    assert len(common_passwords()) > 8000 and all(len(p) >= 8 for p in common_passwords())


def test_adding_a_user_applies_the_rule(sqlite_city: City) -> None:
    with pytest.raises(ValidationFailed, match="at least 10"):
        sqlite_city.db.write_sync(lambda c: add_user(c, username="new", password="12345678", display_name="x",
                                                     now=SEED_TIME))


def test_the_user_add_command_refuses_a_common_password(sqlite_city: City, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    assert main(["user", "add", "newhandler", "--password", "qwertyuiop"]) == 2
    assert "最常见的密码" in capsys.readouterr().err
    assert main(["user", "add", "newhandler", "--password", "a-long-password"]) == 0
