"""Real images made with Pillow, and hostile files made by hand, for the media tests."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from PIL import ExifTags, Image, ImageCms, TiffImagePlugin

RED, BLUE = (220, 20, 20), (20, 20, 220)
PAYLOAD_MARKER = b"WECITY-POLYGLOT-PAYLOAD-7f3a"


def picture(size: tuple[int, int] = (600, 400), mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: any rotation shows in where the colours end up."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image.convert(mode)


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def dms(value: float) -> tuple[TiffImagePlugin.IFDRational, ...]:
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round((value - degrees - minutes / 60) * 3600 * 1000)
    R = TiffImagePlugin.IFDRational
    return (R(degrees, 1), R(minutes, 1), R(seconds, 1000))


def exif_bytes(*, orientation: int | None = None, gps: tuple[float, float] | None = None,
               gps_raw: dict[int, object] | None = None) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "WeCityTestCam"
    exif[ExifTags.Base.Model] = "SerialNo-12345"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None or gps_raw is not None:
        ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        if gps is not None:
            lat, lon = gps
            ifd.update({
                ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S", ExifTags.GPS.GPSLatitude: dms(lat),
                ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W", ExifTags.GPS.GPSLongitude: dms(lon),
            })
        ifd.update(gps_raw or {})
    return exif.tobytes()


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # type: ignore[no-any-return]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A few hundred bytes declaring width x height 8-bit grey pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # a few rows; the header is what matters
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_with_chunk_before_iend(png: bytes, chunk: bytes) -> bytes:
    end = png.rindex(b"IEND") - 4
    return png[:end] + chunk + png[end:]


def jpeg_with_size(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header claims width x height."""
    data = bytearray(encode(picture((16, 16)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def jpeg_with_segments(jpeg: bytes, marker: int, payload: bytes, count: int) -> bytes:
    """Insert `count` segments (APPn or COM) right after the start-of-image marker."""
    segment = bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment * count + jpeg[2:]


def zip_payload() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("evil.html", b"<script>alert(1)</script>" + PAYLOAD_MARKER)
    return out.getvalue()


def animated(fmt: str) -> bytes:
    frames = [picture((64, 48)), picture((64, 48)).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def mpo() -> bytes:
    frames = [picture((80, 60)), Image.new("RGB", (80, 60), (0, 255, 0))]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
       b'<script>alert(1)</script></svg>')
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def jpeg_markers(data: bytes) -> list[int]:
    """Every marker of a JPEG's header up to the start of scan."""
    markers, pos = [], 2
    while pos < len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        markers.append(marker)
        if marker == 0xDA:
            break
        (length,) = struct.unpack_from(">H", data, pos + 2)
        pos += 2 + length
    return markers


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return kinds
