"""Coordinate conversions: WGS-84 to GCJ-02 and BD-09 against published fixed points, and the round trips.

A round trip alone cannot catch a wrong forward formula (a wrong constant or offset term): the inverse is
solved against the same forward function and undoes the same mistake. The fixed points are the test
vectors of widely used reference implementations, each cited with its repository and file.
"""

import random

import pytest

from wecity.geo.coords import (
    bd09_to_gcj02,
    distance_m,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)

# The vectors below are published as full doubles (15 to 17 significant digits), computed with the same
# double-precision formula, so they are matched to 1e-10 degrees (about 10 micrometres): far above
# floating-point noise (1e-14 here), and tight enough to catch the plausible slips, which move a point by
# only 1e-9 to 1e-7 degrees: the WGS-84 eccentricity (0.00669437999013) in place of Krasovsky's moves these
# points by 1.2e-9 to 2.3e-9 degrees; the WGS-84 semi-major axis (6378137, as in some ports) in place of
# 6378245 by about 7e-8. A tolerance of 1e-6 degrees, as in the reference implementations' own tests, would
# let both through.
FIXED_POINT_TOLERANCE = 1e-10

# (WGS-84 lat, lon) -> (GCJ-02 lat, lon)
WGS84_TO_GCJ02 = [
    # googollee/eviltransform, go/transform_test.go (the same table is in python/test.py, javascript/test.js
    # and csharp/EvilTransformUnitTest.cs)
    pytest.param((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215), id="eviltransform-shanghai"),
    pytest.param((22.543847, 113.912316), (22.540796131694766, 113.9171764808363), id="eviltransform-shenzhen"),
    pytest.param((39.911954, 116.377817), (39.91334545536069, 116.38404722455657), id="eviltransform-beijing"),
    # wandergis/coordtransform, test/app.js: wgs84togcj02(116.404, 39.915) -> [116.41024449916938,
    # 39.91640428150164] (longitude first there)
    pytest.param((39.915, 116.404), (39.91640428150164, 116.41024449916938), id="coordtransform-beijing"),
]

# (GCJ-02 lat, lon) -> (BD-09 lat, lon). wandergis/coordtransform, test/app.js: gcj02tobd09(116.404, 39.915)
# -> [116.41036949371029, 39.92133699351021] (longitude first there).
GCJ02_TO_BD09 = [
    pytest.param((39.915, 116.404), (39.92133699351021, 116.41036949371029), id="coordtransform-beijing"),
]

# Outside the box GCJ-02 is WGS-84. googollee/eviltransform, matlab/test/testSuite.m ("edge case" rows).
OUTSIDE_CHINA = [
    pytest.param((39.7392, -104.9903), id="denver"),
    pytest.param((-27.4698, 153.0251), id="brisbane"),
    pytest.param((-22.9068, -43.1729), id="rio-de-janeiro"),
]


def _near(got: tuple[float, float], want: tuple[float, float], tolerance: float = FIXED_POINT_TOLERANCE) -> bool:
    return abs(got[0] - want[0]) <= tolerance and abs(got[1] - want[1]) <= tolerance


@pytest.mark.parametrize(("wgs", "gcj"), WGS84_TO_GCJ02)
def test_wgs84_to_gcj02_matches_published_fixed_points(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    got = wgs84_to_gcj02(*wgs)
    assert _near(got, gcj), f"{got} != {gcj}"
    assert _near(from_wgs84(*wgs, "gcj02"), gcj)


@pytest.mark.parametrize(("wgs", "gcj"), WGS84_TO_GCJ02)
def test_gcj02_to_wgs84_recovers_the_published_wgs84_point(wgs: tuple[float, float], gcj: tuple[float, float]) -> None:
    # The inverse stops iterating within 1e-10 degrees on the GCJ-02 side, hence the looser bound (0.1 mm).
    got = gcj02_to_wgs84(*gcj)
    assert _near(got, wgs, 1e-9), f"{got} != {wgs}"
    assert _near(to_wgs84(*gcj, "gcj02"), wgs, 1e-9)


@pytest.mark.parametrize(("gcj", "bd"), GCJ02_TO_BD09)
def test_gcj02_to_bd09_matches_published_fixed_points(gcj: tuple[float, float], bd: tuple[float, float]) -> None:
    got = gcj02_to_bd09(*gcj)
    assert _near(got, bd), f"{got} != {bd}"
    assert _near(bd09_to_gcj02(*bd), gcj, 1e-9)
    # And through WGS-84: the BD-09 of the WGS-84 point whose GCJ-02 this is.
    wgs = gcj02_to_wgs84(*gcj)
    assert _near(from_wgs84(*wgs, "bd09"), bd, 1e-9)
    assert _near(to_wgs84(*bd, "bd09"), wgs, 1e-9)


@pytest.mark.parametrize("point", OUTSIDE_CHINA)
def test_outside_china_published_points_are_unchanged(point: tuple[float, float]) -> None:
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point


def _china_points(n: int = 500) -> list[tuple[float, float]]:
    rng = random.Random(7)
    return [(rng.uniform(18.5, 53.0), rng.uniform(74.0, 134.0)) for _ in range(n)]


def test_gcj02_offset_in_changsha_is_hundreds_of_metres() -> None:
    lat, lon = 28.1960, 112.9770
    glat, glon = wgs84_to_gcj02(lat, lon)
    assert 200 < distance_m(lat, lon, glat, glon) < 800


@pytest.mark.parametrize("point", _china_points())
def test_wgs84_gcj02_round_trip_within_a_metre(point: tuple[float, float]) -> None:
    back = gcj02_to_wgs84(*wgs84_to_gcj02(*point))
    assert distance_m(*point, *back) < 1.0


@pytest.mark.parametrize("point", _china_points())
def test_gcj02_bd09_round_trip_within_a_metre(point: tuple[float, float]) -> None:
    back = bd09_to_gcj02(*gcj02_to_bd09(*point))
    assert distance_m(*point, *back) < 1.0


def test_bd09_is_offset_from_gcj02_and_to_wgs84_undoes_both() -> None:
    wgs = (28.1960, 112.9770)
    bd = gcj02_to_bd09(*wgs84_to_gcj02(*wgs))
    assert distance_m(*wgs, *bd) > 500
    assert distance_m(*wgs, *to_wgs84(*bd, "bd09")) < 1.0


def test_outside_china_gcj02_is_wgs84() -> None:
    assert wgs84_to_gcj02(51.5, -0.12) == (51.5, -0.12)
