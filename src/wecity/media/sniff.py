"""Recognising an upload's image format from its first bytes, and measuring its metadata cheaply."""

from __future__ import annotations

import struct

# Formats the platform accepts, by the name Pillow gives them.
JPEG, PNG, WEBP = "JPEG", "PNG", "WEBP"

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG chunks that only carry pixels or their structure; every other chunk counts as metadata.
_PNG_PIXEL_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"acTL", b"fcTL", b"fdAT"}
# WebP chunks that carry pixels or structure; EXIF, XMP, ICCP and unknown ones count as metadata.
_WEBP_PIXEL_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH", b"ANIM", b"ANMF"}


def detect_format(data: bytes) -> str | None:
    """The accepted format whose signature `data` starts with, or None."""
    if data.startswith(b"\xff\xd8\xff"):
        return JPEG
    if data.startswith(PNG_SIGNATURE):
        return PNG
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return WEBP
    return None


def metadata_bytes(data: bytes, fmt: str) -> int:
    """Bytes spent on metadata (EXIF, XMP, ICC, comments, text chunks) before decoding anything.

    Walks the container's segments or chunks only; a broken structure ends the walk (the decoder
    refuses such files itself), so this never raises on hostile input.
    """
    if fmt == JPEG:
        return _jpeg_metadata(data)
    if fmt == PNG:
        return _chunked_metadata(data, 8, _PNG_PIXEL_CHUNKS, riff=False)
    if fmt == WEBP:
        return _chunked_metadata(data, 12, _WEBP_PIXEL_CHUNKS, riff=True)
    return 0


def _jpeg_metadata(data: bytes) -> int:
    total, pos, end = 0, 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan / end of image: headers are over
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:  # APPn (EXIF, XMP, ICC, ...) and COM
            total += min(length, end - pos)
        pos += 2 + length
    return total


def _chunked_metadata(data: bytes, start: int, pixel_chunks: set[bytes], *, riff: bool) -> int:
    # PNG stores a chunk as (big-endian length, type, data, CRC); RIFF as (type, little-endian length,
    # data padded to even).
    total, pos, end = 0, start, len(data)
    while pos + 8 <= end:
        if riff:
            kind = data[pos:pos + 4]
            (length,) = struct.unpack_from("<I", data, pos + 4)
            size = 8 + length + (length & 1)
        else:
            (length,) = struct.unpack_from(">I", data, pos)
            kind = data[pos + 4:pos + 8]
            size = 12 + length
        if kind not in pixel_chunks:
            total += min(length, end - pos)  # a lying length field counts only the bytes present
        if kind == b"IEND":
            break
        pos += size
    return total
