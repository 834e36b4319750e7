"""Reading the location a camera wrote into a photo's EXIF GPS tags (WGS-84, as EXIF stores it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image


@dataclass(frozen=True, slots=True)
class GpsPoint:
    """Where the photo was taken, in WGS-84 degrees (north and east positive)."""

    lat: float
    long: float


def read_gps(image: Image.Image) -> GpsPoint | None:
    """The photo's EXIF GPS position, or None when it has none or it cannot be trusted.

    Refused as untrustworthy: a void fix (GPSStatus "V"), values out of range, zero denominators, and
    exactly (0, 0), which cameras write when they had no fix. Malformed EXIF is never an error here:
    the metadata is stripped anyway, it just yields no location.
    """
    try:
        gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # hostile EXIF can break the parser in many ways; no location then
        return None
    if not gps:
        return None
    if _text(gps.get(ExifTags.GPS.GPSStatus)) == "V":
        return None
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef), "S")
    long = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef), "W")
    if lat is None or long is None or not -90 <= lat <= 90 or not -180 <= long <= 180:
        return None
    if lat == 0 and long == 0:
        return None
    return GpsPoint(lat=round(lat, 7), long=round(long, 7))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip("\x00 ").upper()[:1]


def _degrees(value: Any, ref: Any, negative_ref: str) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals, signed by the N/S or E/W ref.

    Some writers store one or two components (decimal degrees, or degrees and decimal minutes); a
    missing ref keeps the sign as written, which is how such writers store the hemisphere.
    """
    if value is None:
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    try:
        numbers = [_rational(p) for p in parts]
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    finite = [n for n in numbers if n is not None and math.isfinite(n)]
    if len(finite) != len(numbers):
        return None
    degrees: float = sum(n / 60**i for i, n in enumerate(finite))
    if _text(ref) == negative_ref:
        degrees = -abs(degrees)
    return degrees


def _rational(value: Any) -> float | None:
    # Pillow gives IFDRational (a zero denominator reads as nan) or, from some writers, (num, den) pairs.
    if isinstance(value, tuple) and len(value) == 2:
        num, den = value
        return None if den == 0 else float(num) / float(den)
    result = float(value)
    return None if math.isnan(result) else result
