"""Coordinate conversions: GCJ-02 and BD-09 round trips within 1 m inside China."""

import random

import pytest

from wecity.geo.coords import (
    bd09_to_gcj02,
    distance_m,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    to_wgs84,
    wgs84_to_gcj02,
)


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
