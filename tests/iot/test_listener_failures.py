"""Nothing the devices send is dropped: a batch that fails is stored in halves down to the one message that
breaks it, which is kept with its error; an unreachable database is waited for. Acknowledgements follow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import City
from wecity.context import service as context
from wecity.context.ldcontext import ContextStore
from wecity.core.assemble import build_context
from wecity.iot import listener as listener_module
from wecity.iot import service
from wecity.iot.listener import MqttListener
from wecity.iot.models import rejected_messages
from wecity.iot.mqtt import Message

TILT = ContextStore().core.expand("tiltAngle")


class _Acks:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, messages: list[Message]) -> None:
        self.acked += [m.mid for m in messages]


def _listener(city: City, devices: int) -> tuple[MqttListener, _Acks]:
    for n in range(devices):
        city.db.write_sync(lambda conn, n=n: service.provision(
            conn, tenant="", device_id=f"d{n}", entity_id=f"urn:ngsi-ld:Manhole:d{n}", entity_type="Manhole",
            now=city.clock.now()))
    listener = MqttListener(build_context(city.settings, db=city.db, clock=city.clock), "mqtt://127.0.0.1:1")
    acks = _Acks()
    listener._subscriber = acks  # type: ignore[assignment]
    return listener, acks


def _batch(n: int) -> list[Message]:
    return [Message(topic=f"wecity/default/devices/d{i}/attrs", payload=b'{"tiltAngle": %d}' % (i + 1), qos=1,
                    mid=i + 1, session=1) for i in range(n)]


def _tilt(city: City, n: int) -> Any:
    return city.db.read_sync(context.get, "", f"urn:ngsi-ld:Manhole:d{n}").attrs[TILT]["value"]


def test_one_message_that_breaks_ingestion_is_set_aside_and_the_rest_stored(
        city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    listener, acks = _listener(city, 10)
    real_ingest = listener_module.ingest

    def ingest(conn: Any, readings: list[Any], **kw: Any) -> Any:
        if any(r.device_id == "d3" for r in readings):
            raise TypeError("a payload this version cannot digest")
        return real_ingest(conn, readings, **kw)

    monkeypatch.setattr(listener_module, "ingest", ingest)
    asyncio.run(listener._handle_or_split(_batch(10)))
    assert [_tilt(city, n) for n in range(10) if n != 3] == [n + 1 for n in range(10) if n != 3]
    kept = city.db.read_sync(lambda c: c.execute(sa.select(rejected_messages)).all())
    assert [(r.topic, r.payload) for r in kept] == [("wecity/default/devices/d3/attrs", b'{"tiltAngle": 4}')]
    assert "TypeError" in kept[0].error
    assert sorted(acks.acked) == list(range(1, 11)) and listener.counts["rejected"] == 1


def test_a_database_failing_mid_batch_is_waited_for_and_nothing_is_acknowledged_before(
        city: City, monkeypatch: pytest.MonkeyPatch) -> None:
    listener, acks = _listener(city, 5)
    real_write = city.db.write
    failures = {"left": 2}
    acked_during_failures: list[list[int]] = []

    async def write(fn: Any, *args: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            acked_during_failures.append(list(acks.acked))
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))
        return await real_write(fn, *args)

    monkeypatch.setattr(city.db, "write", write)
    monkeypatch.setattr(listener_module.asyncio, "sleep", _no_wait)
    asyncio.run(listener._handle_or_split(_batch(5)))
    assert failures["left"] == 0 and acked_during_failures == [[], []]
    assert [_tilt(city, n) for n in range(5)] == [1, 2, 3, 4, 5]
    assert sorted(acks.acked) == [1, 2, 3, 4, 5]
    assert city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(rejected_messages))
                             .scalar_one()) == 0


_real_sleep = asyncio.sleep


async def _no_wait(seconds: float) -> None:
    await _real_sleep(0)
