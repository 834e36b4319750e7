"""Device provisioning and readings stored as NGSI-LD attribute updates (no broker involved)."""

from __future__ import annotations

import pytest

from tests.conftest import City
from wecity.context import history
from wecity.context import service as context
from wecity.context.ldcontext import ContextStore
from wecity.core.assemble import wire_domains
from wecity.core.errors import AlreadyExists, ValidationFailed
from wecity.core.registry import Registry
from wecity.iot import service
from wecity.iot.service import parse

STORE = ContextStore()
TILT = STORE.core.expand("tiltAngle")
LOCATION = STORE.core.expand("location")


def _provision(city: City, device_id: str = "dev-1", tenant: str = "", **kw: object) -> None:
    city.db.write_sync(lambda conn: service.provision(conn, tenant=tenant, device_id=device_id,
                                                      entity_id=f"urn:ngsi-ld:Manhole:{device_id}",
                                                      entity_type="Manhole", now=city.clock.now(), **kw))


def _ingest(city: City, *messages: tuple[str, bytes]) -> service.IngestResult:
    readings = [r for r in (parse(topic, body) for topic, body in messages) if r is not None]
    return city.db.write_sync(lambda conn: service.ingest(conn, readings, now=city.clock.now(), store=STORE,
                                                              events=wire_domains(Registry()).events))


def test_parse_topics_and_payloads() -> None:
    assert parse("other/topic", b"{}") is None
    r = parse("wecity/default/devices/dev-1/attrs", b'{"tiltAngle": 3}')
    assert r is not None and r.tenant == "" and r.device_id == "dev-1" and r.payload == {"tiltAngle": 3}
    assert parse("wecity/changsha/devices/d/attrs", b"{not json").problem == "payload is not JSON"
    assert parse("wecity/changsha/devices/d/attrs", b"[1]").problem
    assert parse("wecity/changsha/devices/d/attrs", b"{}").problem


def test_a_deeply_nested_payload_is_a_problem_not_a_crash() -> None:
    deep = b'{"tiltAngle": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert parse("wecity/changsha/devices/d/attrs", deep).problem == "payload is nested too deep"


def test_provisioning_rules(city: City) -> None:
    _provision(city)
    with pytest.raises(AlreadyExists):
        _provision(city)
    with pytest.raises(ValidationFailed):
        _provision(city, device_id="a/b")
    assert [d.device_id for d in city.db.read_sync(service.list_devices, "")] == ["dev-1"]


def test_a_tenant_with_devices_exists_for_the_ngsi_ld_api(city: City) -> None:
    """Readings of a device in tenant district7 are read through the API in that tenant, whether the tenant
    was made by provisioning or (a device kept from before) by the first reading."""
    from sqlalchemy import insert

    from tests.conftest import make_client
    from wecity.iot.models import devices

    with pytest.raises(ValidationFailed):
        _provision(city, device_id="d0", tenant="bad tenant/name")
    _provision(city, device_id="d1", tenant="district7")
    city.db.write_sync(lambda conn: conn.execute(insert(devices).values(
        tenant="district8", device_id="d2", entity_id="urn:ngsi-ld:Manhole:d2", entity_type="Manhole",
        created_at=city.clock.now())))
    assert _ingest(city, ("wecity/district7/devices/d1/attrs", b'{"tiltAngle": 1}'),
                   ("wecity/district8/devices/d2/attrs", b'{"tiltAngle": 2}')).stored == 2
    with make_client(city) as client:
        client.headers["Authorization"] = f"Bearer {city.api_key}"
        for tenant, device in (("district7", "d1"), ("district8", "d2")):
            found = client.get(f"/ngsi-ld/v1/entities/urn:ngsi-ld:Manhole:{device}", headers={"NGSILD-Tenant": tenant})
            assert found.status_code == 200, (tenant, found.text)


def test_reading_creates_then_updates_the_entity_with_history(city: City) -> None:
    _provision(city, attribute_map={"tilt": "tiltAngle"})
    result = _ingest(city, ("wecity/default/devices/dev-1/attrs",
                            b'{"tilt": 2.5, "location": [112.97, 28.19], "ts": "2026-11-02T08:59:00Z"}'))
    assert result.stored == 1 and not result.unknown and not result.malformed
    entity = city.db.read_sync(context.get, "", "urn:ngsi-ld:Manhole:dev-1")
    assert entity is not None and entity.type == STORE.core.expand("Manhole")
    assert entity.attrs[TILT]["value"] == 2.5 and entity.attrs[TILT]["observedAt"] == "2026-11-02T08:59:00Z"
    assert entity.attrs[LOCATION]["type"] == "GeoProperty"
    _ingest(city, ("wecity/default/devices/dev-1/attrs", b'{"tilt": 16}'))
    entity = city.db.read_sync(context.get, "", "urn:ngsi-ld:Manhole:dev-1")
    assert entity.attrs[TILT]["value"] == 16 and LOCATION in entity.attrs
    found = city.db.read_sync(history.instances, "", "urn:ngsi-ld:Manhole:dev-1", [TILT], history.TimeFilter())
    assert [i[2]["value"] for i in found[TILT]] == [2.5, 16]


def test_unknown_devices_and_bad_values_are_returned_not_stored(city: City) -> None:
    _provision(city, tenant="changsha")
    result = _ingest(city, ("wecity/changsha/devices/ghost/attrs", b'{"tiltAngle": 1}'),
                     ("wecity/default/devices/dev-1/attrs", b'{"tiltAngle": 1}'),  # provisioned in another tenant
                     ("wecity/changsha/devices/dev-1/attrs", b'{"bad name": 1}'),
                     ("wecity/changsha/devices/dev-1/attrs", b'{"tiltAngle": 4}'))
    assert result.stored == 1
    assert sorted((r.tenant, r.device_id) for r in result.unknown) == [("", "dev-1"), ("changsha", "ghost")]
    assert len(result.malformed) == 1
    assert city.db.read_sync(context.get, "", "urn:ngsi-ld:Manhole:dev-1") is None
    assert city.db.read_sync(context.get, "changsha", "urn:ngsi-ld:Manhole:dev-1").attrs[TILT]["value"] == 4
