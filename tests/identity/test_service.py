"""Identity: argon2 passwords, sessions, API keys, phone masking."""

import pytest

from wecity.core.errors import AlreadyExists, ValidationFailed
from wecity.demo.changsha import DEMO_PASSWORD
from wecity.identity.models import users
from wecity.identity.service import (
    add_api_key,
    add_user,
    api_key_is_valid,
    authenticate,
    mask_phone,
    start_session,
    user_for_session,
)

from ..conftest import SEED_TIME, City


def test_passwords_are_argon2_and_authenticate(city: City) -> None:
    stored = city.db.read_sync(lambda c: c.execute(users.select().where(users.c.username == "chengguan")).first())
    assert stored.password_hash.startswith("$argon2id$")
    user = city.db.write_sync(authenticate, "chengguan", DEMO_PASSWORD)
    assert user and user.has("handler") and not user.has("dispatcher")
    assert city.db.write_sync(authenticate, "chengguan", "wrong-password") is None
    assert city.db.write_sync(authenticate, "nobody", DEMO_PASSWORD) is None


def test_sessions_expire(city: City) -> None:
    user = city.db.write_sync(authenticate, "admin", DEMO_PASSWORD)
    token = city.db.write_sync(start_session, user.id, SEED_TIME)
    from datetime import timedelta

    assert city.db.read_sync(user_for_session, token, SEED_TIME + timedelta(hours=1)).username == "admin"
    assert city.db.read_sync(user_for_session, token, SEED_TIME + timedelta(hours=13)) is None


def test_user_rules(sqlite_city: City) -> None:
    with pytest.raises(AlreadyExists):
        sqlite_city.db.write_sync(lambda c: add_user(c, username="admin", password="long-enough", display_name="x",
                                                     now=SEED_TIME))
    with pytest.raises(ValidationFailed):
        sqlite_city.db.write_sync(lambda c: add_user(c, username="new", password="short", display_name="x",
                                                     now=SEED_TIME))
    with pytest.raises(ValidationFailed):
        sqlite_city.db.write_sync(lambda c: add_user(c, username="new", password="long-enough", display_name="x",
                                                     roles=["mayor"], now=SEED_TIME))


def test_api_keys_are_stored_hashed(sqlite_city: City) -> None:
    key = sqlite_city.db.write_sync(lambda c: add_api_key(c, name="partner app", scopes=["open311:write"],
                                                                         now=SEED_TIME))
    assert sqlite_city.db.read_sync(api_key_is_valid, key)
    assert not sqlite_city.db.read_sync(api_key_is_valid, key + "x")
    with sqlite_city.db.engine.connect() as conn:
        assert key not in str(conn.exec_driver_sql("SELECT * FROM api_keys").all())


@pytest.mark.parametrize(("phone", "masked"), [("13812345678", "138****5678"), ("+8613812345678", "+86*******5678"),
                                               ("12345", "1**45"), (None, None), ("", "")])
def test_mask_phone(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


def test_a_key_made_for_a_staff_member_stops_when_they_are_deactivated(city: City) -> None:
    from wecity.core import cache

    key = city.db.write_sync(lambda c: add_api_key(c, name="chengguan's gateway", scopes=["ngsild:read"],
                                                   username="chengguan", now=SEED_TIME))
    unowned = city.db.write_sync(lambda c: add_api_key(c, name="partner app", scopes=["open311:write"], now=SEED_TIME))
    assert city.db.read_sync(api_key_is_valid, key)
    city.db.write_sync(lambda c: c.execute(users.update().where(users.c.username == "chengguan").values(is_active=False)))
    city.db.read_sync(lambda c: cache.invalidate(c, "api key"))
    assert not city.db.read_sync(api_key_is_valid, key)
    assert city.db.read_sync(api_key_is_valid, unowned)
