"""Settings: defaults, the kept secret key, and clear failures for bad values."""

from pathlib import Path

import pytest

from wecity.core.errors import ConfigurationError
from wecity.core.settings import load_settings


def test_defaults_put_sqlite_and_media_under_var(tmp_path: Path) -> None:
    s = load_settings({}, cwd=tmp_path)
    assert s.database_url == f"sqlite:///{tmp_path / 'var' / 'wecity.db'}"
    assert s.media_dir == tmp_path / "var" / "media"
    assert s.is_sqlite and s.mqtt_url is None


def test_body_limits_have_defaults_and_are_read(tmp_path: Path) -> None:
    s = load_settings({}, cwd=tmp_path)
    assert (s.max_json_bytes, s.max_form_bytes, s.max_batch_bytes) == (1 << 20, 64 << 10, 16 << 20)
    assert s.max_multipart_bytes == 10 * s.max_upload_bytes + s.max_form_bytes
    s = load_settings({"WECITY_MAX_JSON_BYTES": "2048", "WECITY_MAX_FORM_BYTES": "4096",
                       "WECITY_MAX_BATCH_BYTES": "65536", "WECITY_MAX_UPLOAD_BYTES": "100000"}, cwd=tmp_path)
    assert (s.max_json_bytes, s.max_form_bytes, s.max_batch_bytes) == (2048, 4096, 65536)
    assert s.max_multipart_bytes == 1_004_096


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({}, cwd=tmp_path).secret_key
    second = load_settings({}, cwd=tmp_path).secret_key
    assert first == second and len(first) >= 32
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_postgres_url_is_given_the_platform_driver(tmp_path: Path) -> None:
    s = load_settings({"WECITY_DATABASE_URL": "postgres://u:p@db/city"}, cwd=tmp_path)
    assert s.database_url == "postgresql+psycopg://u:p@db/city"


def test_dotenv_is_read_and_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("WECITY_MERGE_RADIUS_M=80\nWECITY_MQTT_URL=mqtt://broker:1883\n")
    s = load_settings({"WECITY_MERGE_RADIUS_M": "30"}, cwd=tmp_path)
    assert s.merge_radius_m == 30 and s.mqtt_url == "mqtt://broker:1883"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("WECITY_DATABASE_URL", "mysql://x/y", "unsupported database"),
        ("WECITY_MQTT_URL", "http://broker", "mqtt://"),
        ("WECITY_SECRET_KEY", "short", "at least 32"),
        ("WECITY_MERGE_RADIUS_M", "fifty", "not a number"),
        ("WECITY_MERGE_WINDOW_HOURS", "-1", "at least 0"),
        ("WECITY_METRICS_TOKEN", "guessable", "at least 16"),
        ("WECITY_MAX_JSON_BYTES", "1MB", "not a number"),
        ("WECITY_MAX_FORM_BYTES", "0", "at least 1024"),
        ("WECITY_MAX_BATCH_BYTES", "100", "at least 1024"),
    ],
)
def test_bad_settings_fail_naming_the_setting_and_why(tmp_path: Path, name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_settings({name: value}, cwd=tmp_path)
    assert err.value.setting == name
    assert says in str(err.value)


def test_the_public_url_is_read_without_its_trailing_slash_and_checked(tmp_path: Path) -> None:
    env = {"WECITY_VAR_DIR": str(tmp_path), "WECITY_SECRET_KEY": "k" * 40}
    assert load_settings(env, cwd=tmp_path).public_url is None
    assert load_settings(env | {"WECITY_PUBLIC_URL": "https://city.example/"}, cwd=tmp_path).public_url \
        == "https://city.example"
    with pytest.raises(ConfigurationError, match="WECITY_PUBLIC_URL"):
        load_settings(env | {"WECITY_PUBLIC_URL": "city.example"}, cwd=tmp_path)
