"""inspect_image: what is accepted, what is refused with which code, and what comes out."""

from __future__ import annotations

import io
import time
import zlib

import pytest
from PIL import ExifTags, Image, TiffImagePlugin

from wecity.core.errors import UnsupportedMedia
from wecity.media.images import MAX_METADATA_BYTES, MAX_SIDE, PIXEL_CEILING, THUMB_SIDE
from wecity.media.service import CheckedImage, inspect_image

from . import samples as s

LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}
# Chunks and markers a clean output may have: pixels and their structure, nothing else.
CLEAN_PNG_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
JPEG_APP0 = 0xE0
JPEG_METADATA = {m for m in range(0xE1, 0xF0)} | {0xFE}  # APP1..APP15 (EXIF, XMP, ICC, ...) and COM


def check(data: bytes, **limits: int) -> CheckedImage:
    return inspect_image(data, **{**LIMITS, **limits})


def refused(data: bytes, **limits: int) -> UnsupportedMedia:
    with pytest.raises(UnsupportedMedia) as info:
        check(data, **limits)
    exc = info.value
    assert exc.status == 400
    assert exc.message and exc.message_zh and exc.message != exc.message_zh
    return exc


def assert_no_metadata(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        assert not image.getexif(), image.getexif()
        assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "dpi", "photoshop"):
            assert key not in image.info, key
        if image.format == "JPEG":
            markers = s.jpeg_markers(data)
            assert not set(markers) & JPEG_METADATA, [hex(m) for m in markers]
        else:
            assert image.format == "PNG"
            assert set(s.png_chunks(data)) <= CLEAN_PNG_CHUNKS, s.png_chunks(data)


def pixel(data: bytes, xy: tuple[int, int]) -> tuple[int, ...]:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").getpixel(xy)  # type: ignore[return-value]


def close(colour: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 24 for a, b in zip(colour, expected, strict=True))


# -- accepted ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("PNG", "image/png"),
                                                   ("WEBP", "image/webp")])
def test_jpeg_png_and_webp_photos_are_accepted_and_become_clean_jpegs(fmt: str, content_type: str) -> None:
    checked = check(s.encode(s.picture((600, 400)), fmt))
    assert checked.source_type == content_type
    assert checked.content_type == "image/jpeg"
    assert (checked.width, checked.height) == (600, 400)
    with Image.open(io.BytesIO(checked.content)) as image:
        assert image.format == "JPEG" and image.size == (600, 400)
    assert close(pixel(checked.content, (10, 10)), s.RED) and close(pixel(checked.content, (590, 390)), s.BLUE)
    assert_no_metadata(checked.content)
    assert_no_metadata(checked.thumbnail)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_exif_gps_is_read_and_then_stripped_with_every_other_tag(fmt: str) -> None:
    data = s.encode(s.picture(), fmt, exif=s.exif_bytes(gps=(28.1960, 112.9770)))
    with Image.open(io.BytesIO(data)) as original:  # the sample really carries what is tested
        assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    checked = check(data)
    assert checked.gps is not None
    assert checked.gps.lat == pytest.approx(28.1960, abs=1e-6)
    assert checked.gps.long == pytest.approx(112.9770, abs=1e-6)
    assert b"WeCityTestCam" not in checked.content and b"SerialNo-12345" not in checked.content
    assert_no_metadata(checked.content)
    assert_no_metadata(checked.thumbnail)


@pytest.mark.parametrize("point", [(-33.8568, 151.2153), (40.6892, -74.0445), (-22.9519, -43.2105)])
def test_gps_hemisphere_refs_give_the_sign(point: tuple[float, float]) -> None:
    checked = check(s.encode(s.picture(), "JPEG", exif=s.exif_bytes(gps=point)))
    assert checked.gps is not None
    assert (checked.gps.lat, checked.gps.long) == pytest.approx(point, abs=1e-6)


R = TiffImagePlugin.IFDRational


@pytest.mark.parametrize(("raw", "expected"), [
    # degrees and decimal minutes, as some phones write
    ({1: "N", 2: (R(28), R(117600, 10000)), 3: "E", 4: (R(112), R(586200, 10000))}, (28.196, 112.977)),
    # a zero denominator: no position rather than a wrong one
    ({1: "N", 2: (R(28), R(11, 0), R(0)), 3: "E", 4: (R(112), R(58), R(0))}, None),
    # a void fix
    ({1: "N", 2: (R(28), R(11), R(456, 10)), 3: "E", 4: (R(112), R(58), R(372, 10)), 9: "V"}, None),
    # (0, 0): a camera without a fix
    ({1: "N", 2: (R(0), R(0), R(0)), 3: "E", 4: (R(0), R(0), R(0))}, None),
    # out of range
    ({1: "N", 2: (R(128), R(0), R(0)), 3: "E", 4: (R(112), R(0), R(0))}, None),
    # latitude without longitude
    ({1: "N", 2: (R(28), R(11), R(456, 10))}, None),
])
def test_unusual_or_untrustworthy_gps_tags(raw: dict[int, object], expected: tuple[float, float] | None) -> None:
    checked = check(s.encode(s.picture(), "JPEG", exif=s.exif_bytes(gps_raw=raw)))
    if expected is None:
        assert checked.gps is None
    else:
        assert checked.gps is not None
        assert (checked.gps.lat, checked.gps.long) == pytest.approx(expected, abs=1e-6)


def test_a_photo_without_gps_has_no_location() -> None:
    assert check(s.encode(s.picture(), "JPEG", exif=s.exif_bytes(orientation=1))).gps is None


@pytest.mark.parametrize(("orientation", "size", "top_left", "bottom_right"), [
    (1, (200, 100), s.RED, s.BLUE),
    (3, (200, 100), s.BLUE, s.RED),     # rotated 180
    (6, (100, 200), s.RED, s.BLUE),     # rotate 90 clockwise to display: the left half goes on top
    (8, (100, 200), s.BLUE, s.RED),     # rotate 90 counter-clockwise: the right half goes on top
])
def test_exif_orientation_is_applied_before_the_tag_is_stripped(
        orientation: int, size: tuple[int, int], top_left: tuple[int, int, int],
        bottom_right: tuple[int, int, int]) -> None:
    checked = check(s.encode(s.picture((200, 100)), "JPEG", exif=s.exif_bytes(orientation=orientation)))
    assert (checked.width, checked.height) == size
    assert close(pixel(checked.content, (5, 5)), top_left)
    assert close(pixel(checked.content, (size[0] - 5, size[1] - 5)), bottom_right)
    with Image.open(io.BytesIO(checked.content)) as image:
        assert ExifTags.Base.Orientation not in image.getexif()
    thumb = Image.open(io.BytesIO(checked.thumbnail))
    assert (thumb.width < thumb.height) == (size[0] < size[1])


def test_thumbnail_is_320_on_the_long_side_and_small_images_are_not_enlarged() -> None:
    checked = check(s.encode(s.picture((1200, 800)), "JPEG"))
    assert (checked.thumb_width, checked.thumb_height) == (THUMB_SIDE, 213)
    assert checked.thumb_content_type == "image/jpeg"
    assert Image.open(io.BytesIO(checked.thumbnail)).size == (THUMB_SIDE, 213)
    small = check(s.encode(s.picture((120, 90)), "PNG"))
    assert (small.thumb_width, small.thumb_height) == (120, 90)


def test_very_large_photos_are_stored_at_most_max_side_pixels_long() -> None:
    checked = check(s.encode(s.picture((MAX_SIDE + 904, 100)), "PNG"))
    assert (checked.width, checked.height) == (MAX_SIDE, 82)


def test_real_transparency_is_kept_as_png_and_an_opaque_alpha_channel_becomes_jpeg() -> None:
    transparent = s.picture((100, 80), "RGBA")
    transparent.putpixel((0, 0), (0, 0, 0, 0))
    checked = check(s.encode(transparent, "PNG", pnginfo=None))
    assert checked.content_type == "image/png" and checked.thumb_content_type == "image/png"
    with Image.open(io.BytesIO(checked.content)) as image:
        assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0
    assert_no_metadata(checked.content)
    opaque = check(s.encode(s.picture((100, 80), "RGBA"), "WEBP", lossless=True))
    assert opaque.content_type == "image/jpeg"


def test_palette_grey_and_cmyk_images_are_converted() -> None:
    assert check(s.encode(s.picture().convert("P"), "PNG")).content_type == "image/jpeg"
    grey = check(s.encode(Image.new("L", (50, 40), 128), "PNG"))
    assert Image.open(io.BytesIO(grey.content)).mode == "L"
    cmyk = check(s.encode(s.picture().convert("CMYK"), "JPEG"))
    assert Image.open(io.BytesIO(cmyk.content)).mode == "RGB"
    assert close(pixel(cmyk.content, (10, 10)), s.RED)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    checked = check(s.encode(Image.new("I;16", (40, 30), 32768), "PNG"))
    assert abs(pixel(checked.content, (5, 5))[0] - 128) <= 2


def test_icc_profile_and_comments_are_dropped() -> None:
    data = s.encode(s.picture(), "JPEG", icc_profile=s.srgb_icc(), comment=b"taken by someone")
    with Image.open(io.BytesIO(data)) as original:
        assert "icc_profile" in original.info and "comment" in original.info
    checked = check(data)
    assert b"taken by someone" not in checked.content
    assert_no_metadata(checked.content)
    png = check(s.encode(s.picture(), "PNG", icc_profile=s.srgb_icc()))
    assert_no_metadata(png.content)


def test_a_multi_picture_jpeg_from_a_phone_is_its_first_picture() -> None:
    data = s.mpo()
    assert Image.open(io.BytesIO(data)).format == "MPO"
    checked = check(data)
    assert (checked.width, checked.height) == (80, 60)
    assert close(pixel(checked.content, (5, 5)), s.RED)
    assert_no_metadata(checked.content)


@pytest.mark.parametrize("payload", [s.zip_payload(), b"<html><script>alert(1)</script>" + s.PAYLOAD_MARKER])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_polyglot_payloads_after_the_image_are_dropped(fmt: str, payload: bytes) -> None:
    data = s.encode(s.picture(), fmt) + payload
    checked = check(data)
    for blob in (checked.content, checked.thumbnail):
        assert s.PAYLOAD_MARKER not in blob
        assert b"PK\x03\x04" not in blob and b"<script" not in blob
        assert_no_metadata(blob)


def test_payloads_hidden_in_comments_or_app_segments_are_dropped() -> None:
    data = s.jpeg_with_segments(s.encode(s.picture(), "JPEG"), 0xFE, b"<script>" + s.PAYLOAD_MARKER, 1)
    data = s.jpeg_with_segments(data, 0xEB, s.zip_payload(), 1)
    checked = check(data)
    assert s.PAYLOAD_MARKER not in checked.content and b"<script" not in checked.content
    assert_no_metadata(checked.content)


# -- refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "data"), [
    ("gif", s.encode(s.picture(), "GIF")),
    ("animated gif", s.animated("GIF")),
    ("bmp", s.encode(s.picture(), "BMP")),
    ("tiff", s.encode(s.picture(), "TIFF")),
    ("ico", s.encode(s.picture((32, 32)), "ICO")),
    ("svg", s.SVG),
    ("html", s.HTML),
    ("zip", s.zip_payload()),
    ("pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n"),
    ("empty", b""),
    ("text", "路灯坏了".encode()),
    ("html behind a jpeg name would not matter", b"<html>" + s.encode(s.picture(), "JPEG")),
])
def test_other_types_are_refused_by_content(name: str, data: bytes) -> None:
    assert refused(data).code == "media.unsupported_type", name


@pytest.mark.parametrize(("name", "data"), [
    ("jpeg cut in half", s.encode(s.picture(), "JPEG")[:1500]),
    ("png cut in half", s.encode(s.picture(), "PNG")[:600]),
    ("webp cut in half", s.encode(s.picture(), "WEBP")[:200]),
    ("jpeg signature then noise", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8),
    ("png signature then noise", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8),
    ("webp header then noise", b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(range(256)) * 8),
    ("png with a broken idat", s.encode(Image.new("L", (4, 4)), "PNG")[:33]
        + s.png_chunk(b"IDAT", b"not zlib at all") + s.png_chunk(b"IEND", b"")),
])
def test_truncated_or_corrupt_images_are_refused(name: str, data: bytes) -> None:
    assert refused(data).code == "media.corrupt", name


def test_uploads_over_the_byte_limit_are_refused_before_parsing() -> None:
    exc = refused(s.encode(s.picture(), "PNG"), max_bytes=1000)
    assert exc.code == "media.too_large"
    assert exc.details["max_bytes"] == 1000


@pytest.mark.parametrize(("name", "data"), [
    ("png declaring 50,000 x 50,000", s.png_bomb(50_000, 50_000)),
    ("png over Pillow's warning threshold", s.png_bomb(11_000, 11_000)),
    ("png just over our own limit", s.png_bomb(8_000, 5_001)),
    ("jpeg declaring 65,000 x 65,000", s.jpeg_with_size(65_000, 65_000)),
    ("jpeg declaring 30,000 x 2,000", s.jpeg_with_size(30_000, 2_000)),
])
def test_decompression_bombs_are_refused_from_the_header_without_decoding(name: str, data: bytes) -> None:
    assert len(data) < 20_000
    started = time.perf_counter()
    assert refused(data).code == "media.too_many_pixels", name
    assert time.perf_counter() - started < 0.5, "the pixels were decoded"


def test_pixel_limit_is_the_callers_and_capped_by_the_platform_ceiling() -> None:
    data = s.encode(s.picture((200, 100)), "PNG")
    assert refused(data, max_pixels=19_999).code == "media.too_many_pixels"
    assert check(data, max_pixels=20_000).width == 200
    # A caller asking for more than the ceiling still gets the ceiling.
    bomb = s.png_bomb(10_001, 10_000)
    assert 10_001 * 10_000 > PIXEL_CEILING
    assert refused(bomb, max_pixels=10 * PIXEL_CEILING).code == "media.too_many_pixels"


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_animated_images_are_refused(fmt: str) -> None:
    data = s.animated(fmt)
    assert Image.open(io.BytesIO(data)).is_animated
    assert refused(data).code == "media.animated"


def test_huge_exif_or_comments_are_refused() -> None:
    jpeg = s.encode(s.picture(), "JPEG")
    many_comments = s.jpeg_with_segments(jpeg, 0xFE, b"x" * 60_000, 5)
    assert refused(many_comments).code == "media.metadata_too_large"
    many_app1 = s.jpeg_with_segments(jpeg, 0xE1, b"Exif\x00\x00" + b"\x00" * 65_000, 5)
    assert refused(many_app1).code == "media.metadata_too_large"
    png = s.encode(s.picture(), "PNG")
    big_text = s.png_with_chunk_before_iend(png, s.png_chunk(b"tEXt", b"note\x00" + b"y" * (MAX_METADATA_BYTES + 1)))
    assert refused(big_text).code == "media.metadata_too_large"
    webp = s.encode(s.picture(), "WEBP", exif=b"Exif\x00\x00" + b"\x00" * (MAX_METADATA_BYTES + 1))
    assert refused(webp).code == "media.metadata_too_large"


def test_a_compressed_text_chunk_that_inflates_enormously_is_refused() -> None:
    png = s.encode(s.picture(), "PNG")
    bomb_text = b"note\x00\x00" + zlib.compress(b"z" * 50_000_000, 9)
    assert len(bomb_text) < 100_000
    data = s.png_with_chunk_before_iend(png, s.png_chunk(b"zTXt", bomb_text))
    assert refused(data).code == "media.metadata_too_large"


def test_metadata_under_the_limit_is_accepted_and_stripped() -> None:
    data = s.jpeg_with_segments(s.encode(s.picture(), "JPEG"), 0xFE, b"c" * 60_000, 2)
    checked = check(data)
    assert b"c" * 100 not in checked.content
    assert_no_metadata(checked.content)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_mutated_files_are_either_accepted_clean_or_refused_never_anything_else(fmt: str) -> None:
    """Random byte flips and cuts of a real image: the answer is an image or UnsupportedMedia, never
    another exception (a 500 at the HTTP edge)."""
    import random

    original = s.encode(s.picture((64, 48)), fmt, exif=s.exif_bytes(orientation=6, gps=(28.2, 112.9)))
    rnd = random.Random(fmt)
    outcomes = {"accepted": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        if rnd.random() < 0.3:
            data = data[:rnd.randrange(1, len(data))]
        try:
            checked = check(bytes(data))
        except UnsupportedMedia as exc:
            assert exc.code.startswith("media."), exc.code
            outcomes["refused"] += 1
            continue
        assert_no_metadata(checked.content)
        outcomes["accepted"] += 1
    assert outcomes["refused"] > 0 and outcomes["accepted"] > 0, outcomes
