"""Turning an untrusted upload into a clean image: checks, orientation, colour, re-encoding, thumbnail."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageCms, ImageOps

from wecity.core.errors import UnsupportedMedia
from wecity.media.exif import GpsPoint, read_gps
from wecity.media.sniff import JPEG, PNG, WEBP, detect_format, metadata_bytes

log = logging.getLogger(__name__)

# Pillow's own bomb guard, as a second line behind the per-call `max_pixels` check: above this many
# pixels Image.open warns, above twice as many it raises. The warning is made an error so a bomb is
# refused rather than logged; `max_pixels` is capped here, so the check below always fires first.
PIXEL_CEILING = 100_000_000
Image.MAX_IMAGE_PIXELS = PIXEL_CEILING
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)

# A phone photo carries 10-70 KiB of EXIF, XMP and ICC; far more is an attack or a payload.
MAX_METADATA_BYTES = 256 * 1024
# The stored image is at most this many pixels on its long side; enough to read a street sign.
MAX_SIDE = 4096
THUMB_SIDE = 320
JPEG_QUALITY = 85
THUMB_QUALITY = 80

SOURCE_TYPES = {JPEG: "image/jpeg", PNG: "image/png", WEBP: "image/webp"}
# Pillow reads a JPEG with a multi-picture index (many phones write one) as MPO; its first frame is the photo.
_PILLOW_NAMES = {JPEG: {"JPEG", "MPO"}, PNG: {"PNG"}, WEBP: {"WEBP"}}
_SRGB = ImageCms.createProfile("sRGB")


@dataclass(frozen=True, slots=True)
class CheckedImage:
    """An upload that passed every check, re-encoded without metadata, with its thumbnail."""

    content: bytes
    content_type: str
    width: int
    height: int
    sha256: str
    thumbnail: bytes
    thumb_content_type: str
    thumb_width: int
    thumb_height: int
    thumb_sha256: str
    source_type: str
    # The EXIF GPS position the upload carried, for a report that has no location of its own.
    gps: GpsPoint | None
    # A perceptual hash (DCT, 64 bits as 16 hex digits): near photos of one scene have near hashes, so
    # two reports of one problem can be told by their photos (wecity.ai.duplicates).
    phash: str | None = None


def _refuse(code: str, message: str, message_zh: str, **details: object) -> UnsupportedMedia:
    return UnsupportedMedia(message, message_zh=message_zh, code=f"media.{code}", details=details)


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"


def inspect_image(data: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    """Check an upload by its content and return it re-encoded, or raise UnsupportedMedia.

    Accepted: JPEG, PNG and WebP, decided from the bytes (signature, then Pillow's own parser for that
    format only); the file name and declared content type are never consulted. Refused, with the code:
    ``media.too_large`` (more than `max_bytes`), ``media.unsupported_type`` (any other format, empty),
    ``media.metadata_too_large`` (more than MAX_METADATA_BYTES of EXIF/XMP/ICC/comments/text),
    ``media.too_many_pixels`` (header dimensions over `max_pixels`, checked before decoding),
    ``media.animated`` (animated PNG or WebP: a report needs a still photo, and the frame shown would
    not be all the sender sent), ``media.corrupt`` (truncated or undecodable).

    The result: EXIF orientation applied; colour converted to sRGB and the ICC profile dropped; every
    metadata block dropped (re-encoding from pixels also drops anything appended after the image, such
    as a ZIP or HTML payload); JPEG at quality 85, or PNG when the image has real transparency; at most
    MAX_SIDE pixels on the long side; a thumbnail of at most THUMB_SIDE.
    """
    if len(data) > max_bytes:
        raise _refuse("too_large", f"The photo is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.",
                      f"照片大小为 {_megabytes(len(data))}，超过上限 {_megabytes(max_bytes)}。",
                      bytes=len(data), max_bytes=max_bytes)
    fmt = detect_format(data)
    if fmt is None:
        raise _refuse("unsupported_type", "Only JPEG, PNG and WebP photos are accepted.",
                      "仅接受 JPEG、PNG 或 WebP 格式的照片。")
    meta = metadata_bytes(data, fmt)
    if meta > MAX_METADATA_BYTES:
        raise _too_much_metadata(meta)
    max_pixels = min(max_pixels, PIXEL_CEILING)

    try:
        image = Image.open(io.BytesIO(data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(None, None, max_pixels) from None
    except Exception as exc:  # a hostile file can make any parser raise anything; all mean "unreadable"
        raise _corrupt(exc) from None
    # Not closed with `with`: the pixels are used after decoding, and the file is only a BytesIO.
    if image.format not in _PILLOW_NAMES[fmt]:
        raise _refuse("unsupported_type", "Only JPEG, PNG and WebP photos are accepted.",
                      "仅接受 JPEG、PNG 或 WebP 格式的照片。")
    width, height = image.size
    if width * height > max_pixels or width < 1 or height < 1:
        raise _too_many_pixels(width, height, max_pixels)
    if image.format != "MPO" and getattr(image, "is_animated", False):
        raise _refuse("animated", "Animated images are not accepted; please send a still photo.",
                      "不接受动图，请上传静态照片。")
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(width, height, max_pixels) from None
    except ValueError as exc:
        # PNG text chunks that inflate past Pillow's limit (a metadata bomb) surface as ValueError.
        if "MAX_TEXT" in str(exc):
            raise _too_much_metadata(None) from None
        raise _corrupt(exc) from None
    except Exception as exc:
        raise _corrupt(exc) from None
    gps = read_gps(image)
    try:
        clean = _clean_pixels(image)
    except Exception as exc:  # e.g. an exotic mode that decoded but cannot be converted
        raise _corrupt(exc) from None

    if max(clean.size) > MAX_SIDE:
        clean = clean.resize(_fit(clean.size, MAX_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    content, content_type = _encode(clean, JPEG_QUALITY, optimize=True)
    thumb = clean.resize(_fit(clean.size, THUMB_SIDE), Image.Resampling.LANCZOS, reducing_gap=3.0)
    thumbnail, thumb_content_type = _encode(thumb, THUMB_QUALITY, optimize=False)
    return CheckedImage(
        content=content, content_type=content_type, width=clean.width, height=clean.height,
        sha256=hashlib.sha256(content).hexdigest(),
        thumbnail=thumbnail, thumb_content_type=thumb_content_type, thumb_width=thumb.width,
        thumb_height=thumb.height, thumb_sha256=hashlib.sha256(thumbnail).hexdigest(),
        source_type=SOURCE_TYPES[fmt], gps=gps, phash=perceptual_hash(thumb),
    )


def perceptual_hash(image: Image.Image) -> str:
    """imagehash's pHash (a 32×32 grey image, its DCT's lowest 8×8 frequencies against their median): it
    survives re-encoding, rescaling and small crops and changes of light. Made from the thumbnail, which
    loses nothing it looks at."""
    import imagehash

    return str(imagehash.phash(image))


def _too_many_pixels(width: int | None, height: int | None, max_pixels: int) -> UnsupportedMedia:
    if width is not None and height is not None:
        en = f"The photo has {width}×{height} = {width * height:,} pixels; the limit is {max_pixels:,}."
        zh = f"照片为 {width}×{height}（{width * height:,} 像素），超过上限 {max_pixels:,} 像素。"
    else:
        en = f"The photo has more pixels than the limit of {max_pixels:,}."
        zh = f"照片像素数超过上限 {max_pixels:,}。"
    return _refuse("too_many_pixels", en, zh, width=width, height=height, max_pixels=max_pixels)


def _too_much_metadata(size: int | None) -> UnsupportedMedia:
    limit = _megabytes(MAX_METADATA_BYTES)
    if size is not None:
        en = f"The photo carries {_megabytes(size)} of metadata; the limit is {limit}."
        zh = f"照片附带 {_megabytes(size)} 元数据，超过上限 {limit}。"
    else:
        en = f"The photo carries more metadata than the limit of {limit}."
        zh = f"照片附带的元数据超过上限 {limit}。"
    return _refuse("metadata_too_large", en, zh, metadata_bytes=size, max_metadata_bytes=MAX_METADATA_BYTES)


def _corrupt(exc: BaseException) -> UnsupportedMedia:
    log.info("refused an unreadable image: %s: %s", exc.__class__.__name__, exc)
    return _refuse("corrupt", "The photo is damaged or incomplete and cannot be read.",
                   "照片已损坏或不完整，无法读取。")


def _clean_pixels(image: Image.Image) -> Image.Image:
    """Upright, sRGB, 8-bit pixels in L, RGB or RGBA, with no metadata attached."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
        # exif_transpose copies the whole image even when there is nothing to turn; skip it then.
        upright = ImageOps.exif_transpose(image) if orientation in range(2, 9) else image
    except Exception:  # unreadable EXIF: keep the pixels as they are
        upright = image
    icc = image.info.get("icc_profile")
    if upright.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit grey: scale to 8 bits (a plain conversion would clip everything above 255 to white).
        upright = upright.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    alpha = upright.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in upright.info
    target = "RGBA" if alpha else ("L" if upright.mode in ("1", "L") else "RGB")
    if icc and upright.mode in ("RGB", "RGBA", "CMYK", "L"):
        upright = _to_srgb(upright, icc, target)
    if upright.mode != target:
        upright = upright.convert(target)
    if target == "RGBA" and upright.getchannel("A").getextrema()[0] == 255:
        upright = upright.convert("RGB")  # an alpha channel that hides nothing: store a JPEG
    # The encoders read some metadata (comments, ICC) from `info`; nothing may reach them.
    upright.info = {}
    return upright


def _to_srgb(image: Image.Image, icc: bytes, target: str) -> Image.Image:
    # Dropping a wide-gamut (e.g. Display P3) profile without converting would dull the colours.
    if target == "L" or (target == "RGBA") != (image.mode == "RGBA"):
        return image  # grey and alpha-changing conversions: keep the pixels, drop the profile
    try:
        converted = ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                              outputMode=target)
    except Exception:  # a broken profile: keep the pixels unconverted rather than refuse the photo
        return image
    return converted if converted is not None else image


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """`size` scaled down to at most `side` on its long side (never up), keeping the aspect ratio."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _encode(image: Image.Image, quality: int, *, optimize: bool) -> tuple[bytes, str]:
    # optimize: Huffman tables fitted to the image, about 12% smaller photos for the stored copy.
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, format="PNG", compress_level=6)
        return out.getvalue(), "image/png"
    image.save(out, format="JPEG", quality=quality, optimize=optimize)
    return out.getvalue(), "image/jpeg"
