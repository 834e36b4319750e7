"""The listener's MQTT 5 codec: packets split from a byte stream however it arrives, PUBLISH decoded with
its properties skipped, PUBACKs for the messages of the current connection only."""

from __future__ import annotations

from wecity.iot.mqtt import (
    Message,
    Subscriber,
    _packet,
    _string,
    _varint,
    decode_publish,
    puback_packets,
    split_packets,
)


def _publish(topic: str, payload: bytes, mid: int, properties: bytes = b"") -> bytes:
    return _packet(0x32, _string(topic) + mid.to_bytes(2, "big") + _varint(len(properties)) + properties + payload)


def test_packets_split_at_any_byte_boundary() -> None:
    big = b"x" * 300  # a remaining length of two bytes
    stream = _publish("wecity/default/devices/d1/attrs", b'{"t": 1}', 7) + _publish("a/b", big, 8) + b"\xd0\x00"
    for cut in range(len(stream) + 1):
        buffer = bytearray(stream[:cut])
        first, used = split_packets(buffer)
        del buffer[:used]
        buffer += stream[cut:]
        rest, used_rest = split_packets(buffer)
        packets = first + rest
        assert used_rest == len(buffer)
        assert [p[0] >> 4 for p in packets] == [3, 3, 13]
    message = decode_publish(packets[1][0], packets[1][1], session=2)
    assert message == Message("a/b", big, 1, 8, 2)


def test_publish_properties_are_skipped() -> None:
    properties = b"\x01\x01" + b"\x03" + _string("application/json")  # payload format, content type
    packet = _publish("wecity/t/devices/d/attrs", b"{}", 65535, properties)
    (first, body), = split_packets(bytearray(packet))[0]
    assert decode_publish(first, body, session=1) == Message("wecity/t/devices/d/attrs", b"{}", 1, 65535, 1)
    assert _varint(0) == b"\x00" and _varint(127) == b"\x7f" and _varint(128) == b"\x80\x01"


def test_acknowledgements_go_back_only_on_the_connection_that_delivered() -> None:
    class Writer:
        def __init__(self) -> None:
            self.data = b""

        def write(self, data: bytes) -> None:
            self.data += data

    subscriber = Subscriber("127.0.0.1", 1883, client_id="c", topic="t", on_messages=lambda m: None)
    writer = Writer()
    subscriber._writer = writer  # type: ignore[assignment]
    subscriber.session = 3
    subscriber.ack([Message("t", b"", 1, 5, 3), Message("t", b"", 1, 6, 2), Message("t", b"", 0, 0, 3),
                    Message("t", b"", 1, 9, 3)])
    assert writer.data == puback_packets([5, 9]) == b"\x40\x02\x00\x05\x40\x02\x00\x09"
