"""Devices from a vendor's CSV: all provisioned, or none with every bad line named; and the CLI around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import City
from wecity.cli import main
from wecity.core.errors import ValidationFailed
from wecity.iot.provisioning import import_devices
from wecity.iot.service import list_devices

GOOD = """device_id,entity_id,entity_type,attribute_map
mh-001,urn:ngsi-ld:Manhole:001,Manhole,t=tiltAngle;b=batteryLevel
mh-002,urn:ngsi-ld:Manhole:002,Manhole,
"""


def test_a_good_file_provisions_every_device(city: City) -> None:
    done = city.db.write_sync(lambda c: import_devices(c, "\ufeff" + GOOD, city.clock.now()))
    assert [d.device_id for d in done] == ["mh-001", "mh-002"]
    devices = {d.device_id: d for d in city.db.read_sync(list_devices)}
    assert devices["mh-001"].attribute_map == {"t": "tiltAngle", "b": "batteryLevel"}
    assert devices["mh-002"].attribute_map is None and devices["mh-002"].entity_type == "Manhole"


def test_one_bad_line_refuses_the_file_and_names_every_bad_line(city: City) -> None:
    bad = GOOD + "mh/003,urn:ngsi-ld:Manhole:003,Manhole,\nmh-001,urn:ngsi-ld:Manhole:009,Manhole,\nmh-004,not a uri,Manhole,\n"
    with pytest.raises(ValidationFailed) as caught:
        city.db.write_sync(lambda c: import_devices(c, bad, city.clock.now()))
    assert "line 4" in caught.value.message and "line 5" in caught.value.message and "line 6" in caught.value.message
    assert "第 4 行" in caught.value.message_zh
    assert city.db.read_sync(list_devices) == []  # nothing half-written


def test_a_header_without_the_required_columns_is_refused(city: City) -> None:
    with pytest.raises(ValidationFailed, match="entity_type"):
        city.db.write_sync(lambda c: import_devices(c, "device_id,entity_id\nx,urn:a:b\n", city.clock.now()))


def test_cli_imports_lists_and_removes(sqlite_city: City, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WECITY_DATABASE_URL", sqlite_city.settings.database_url)
    monkeypatch.setenv("WECITY_SECRET_KEY", "y" * 40)
    path = tmp_path / "devices.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert main(["device", "import", str(path)]) == 0
    assert "已登记 2 台设备" in capsys.readouterr().out
    assert main(["device", "import", str(path)]) == 2  # the same devices again: refused, named
    assert "mh-001" in capsys.readouterr().err
    assert main(["device", "import", str(tmp_path / "missing.csv")]) == 2
    assert "无法读取" in capsys.readouterr().err
    assert main(["device", "list"]) == 0
    assert "mh-002  urn:ngsi-ld:Manhole:002  Manhole" in capsys.readouterr().out
    assert main(["device", "remove", "mh-001"]) == 0
    assert main(["device", "remove", "mh-001"]) == 2
    assert [d.device_id for d in sqlite_city.db.read_sync(list_devices)] == ["mh-002"]
