"""Hot spots: Gi* on H3 cells with the false-discovery-rate correction finds a cluster built into the data,
and finds nothing in cases spread at random over the same districts."""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from wecity.ai.hotspots import benjamini_hochberg, gi_star, hotspots
from wecity.cases.models import cases, categories
from wecity.geo.models import areas

from ..conftest import City

WUYI = (28.1960, 112.9770)  # 五一广场, 芙蓉区


def _cases(city: City, points: list[tuple[float, float]], category: str = "pothole", *,
           place_from_address: bool = False) -> None:
    now = city.clock.now()

    def add(conn: sa.Connection) -> None:
        furong = conn.execute(sa.select(areas.c.id).where(areas.c.name_zh == "芙蓉区")).scalar_one()
        dept = conn.execute(sa.select(categories.c.department_id).where(categories.c.code == category)).scalar_one()
        conn.execute(cases.insert(), [{
            "category_code": category, "status": "dispatched", "department_id": dept, "area_id": furong,
            "lat": lat, "long": lon, "place_from_address": place_from_address, "description": "测试",
            "source": "citizen", "created_at": now - timedelta(days=i % 20), "updated_at": now} for i, (lat, lon) in enumerate(points)])

    city.db.write_sync(add)


def _spread(city: City, rng: random.Random, n: int) -> list[tuple[float, float]]:
    """n cases at random over the whole of 芙蓉区 (the study area), a random cell's centre each."""
    import h3

    outline = city.db.read_sync(lambda c: c.execute(sa.select(areas.c.geometry).where(
        areas.c.name_zh == "芙蓉区")).scalar_one())
    cells = sorted(h3.geo_to_cells(outline, 8))
    return [h3.cell_to_latlng(rng.choice(cells)) for _ in range(n)]


def test_gi_star_is_the_textbook_statistic_on_a_small_grid() -> None:
    import h3

    centre = h3.latlng_to_cell(*WUYI, 8)
    cells = sorted(h3.grid_disk(centre, 3))
    counts = Counter({centre: 10, **{c: 1 for c in h3.grid_ring(centre, 2)}})
    z, p = gi_star(cells, counts)
    x = np.array([counts.get(c, 0) for c in cells], float)
    n, mean = len(x), x.mean()
    s = np.sqrt((x ** 2).mean() - mean ** 2)
    i = cells.index(centre)
    neighbours = [cells.index(c) for c in h3.grid_disk(centre, 1)]
    expected = (x[neighbours].sum() - mean * 7) / (s * np.sqrt((n * 7 - 49) / (n - 1)))
    assert z[i] == pytest.approx(expected)
    assert p[i] == pytest.approx(2 * (1 - 0.5 * (1 + math.erf(abs(expected) / math.sqrt(2)))))


def test_benjamini_hochberg_q_values() -> None:
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2]))
    assert q.tolist() == pytest.approx([0.04, 0.04 * 4 / 3 * 3 / 4 * 4 / 3, 0.04 * 4 / 3 * 3 / 4 * 4 / 3, 0.2])
    assert (q >= np.array([0.01, 0.04, 0.03, 0.2])).all()


def test_on_cases_spread_at_random_hot_spots_are_rare(city: City) -> None:
    """The complete null: cases dropped at random over the study area. The false-discovery-rate correction
    promises at most 5% of such cities with any hot spot; with sparse counts the normal approximation of Gi*
    is a little generous (docs/ai.md), so the bound for 80 cases is 10%."""
    import h3

    outline = city.db.read_sync(lambda c: c.execute(sa.select(areas.c.geometry).where(
        areas.c.name_zh == "芙蓉区")).scalar_one())
    cells = sorted(h3.geo_to_cells(outline, 8))
    for n, bound in ((80, 0.10), (300, 0.05)):
        with_hot_spots = 0
        for seed in range(200):
            rng = random.Random(seed)
            z, p = gi_star(cells, Counter(rng.choice(cells) for _ in range(n)))
            with_hot_spots += bool(((benjamini_hochberg(p) <= 0.05) & (z > 0)).any())
        assert with_hot_spots / 200 <= bound, (n, with_hot_spots)


def test_a_cluster_built_into_the_cases_is_the_hot_spot(city: City) -> None:
    import h3

    rng = random.Random(4)
    _cases(city, _spread(city, rng, 300))
    # A neighbourhood of about a kilometre with 60 more: Gi* looks at a cell with its six neighbours, so a
    # cluster is found at that scale (25 cases in one cell alone, over this background, are not).
    _cases(city, [(WUYI[0] + rng.uniform(-0.004, 0.004), WUYI[1] + rng.uniform(-0.004, 0.004)) for _ in range(60)])
    found = city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), days=30, category="pothole"))
    assert found["method"]["cases"] == 360 and found["method"]["cells"] > 40
    centre = h3.latlng_to_cell(*WUYI, 8)
    hot = {f["id"]: f["properties"] for f in found["features"]}
    assert centre in hot and hot[centre]["q"] <= 0.05
    # Gi* is a neighbourhood's statistic: the strongest cell is the cluster's or one touching it.
    assert found["features"][0]["id"] in h3.grid_disk(centre, 1)
    # Another category: nothing.
    assert city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), category="noise"))["features"] == []


def test_cases_placed_from_an_address_are_left_out_of_hot_spots(city: City) -> None:
    """Reports with only an address get their road's one point: 60 of them there are no cluster."""
    rng = random.Random(4)
    _cases(city, _spread(city, rng, 300))
    _cases(city, [WUYI] * 60, place_from_address=True)
    found = city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), days=30, category="pothole"))
    assert found["method"]["cases"] == 300
    _cases(city, [WUYI] * 60)  # the same, pinned there: a cluster
    found = city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), days=30, category="pothole"))
    assert found["method"]["cases"] == 360 and found["features"]


def test_the_hotspots_api_is_for_supervisors_and_counted(city: City) -> None:
    from wecity.core.limits import parse_rule
    from wecity.identity.models import users
    from wecity.identity.service import start_session

    from ..conftest import make_client

    def token(name: str) -> dict[str, str]:
        value = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
            users.c.username == name)).scalar_one(), city.clock.now()))
        return {"Authorization": f"Bearer {value}"}

    limits = {**city.settings.rate_limits, "ai_figures": parse_rule("3/minute")}
    with make_client(city, rate_limits=limits) as client:
        assert client.get("/api/v1/ai/hotspots").status_code == 401
        handler = client.get("/api/v1/ai/hotspots", params={"days": 7}, headers=token("chengguan"))
        assert handler.status_code == 403 and handler.json()["code"] == "ai.not_allowed"
        supervisor = token("supervisor")
        answer = client.get("/api/v1/ai/hotspots", params={"days": 7}, headers=supervisor)
        assert answer.status_code == 200 and answer.json()["type"] == "FeatureCollection"
        assert answer.json()["method"]["days"] == 7
        assert client.get("/api/v1/ai/hotspots", params={"days": 0}, headers=supervisor).status_code in (400, 422)
        assert client.get("/api/v1/ai/forecast", headers=supervisor).status_code == 200
        assert client.get("/api/v1/ai/hotspots", headers=supervisor).status_code == 200
        assert client.get("/api/v1/ai/forecast", headers=supervisor).status_code == 429  # 3 a minute, both count


def test_a_study_area_too_big_for_its_resolution_is_taken_coarser(city: City, monkeypatch: Any) -> None:
    """Fine cells over a wide area are seconds of CPU a request: past MAX_CELLS the next coarser resolution
    is used, and the method says which was asked for and which was used."""
    from wecity.ai import hotspots as module

    _cases(city, _spread(city, random.Random(5), 300))
    fine = city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), resolution=9))
    assert fine["method"]["resolution"] == 9 and fine["method"]["resolution_asked"] == 9
    monkeypatch.setattr(module, "MAX_CELLS", fine["method"]["cells"] // 2)
    coarser = city.db.read_sync(lambda c: hotspots(c, now=city.clock.now(), resolution=9))
    assert coarser["method"]["resolution"] < 9 and coarser["method"]["resolution_asked"] == 9
    assert coarser["method"]["cells"] <= fine["method"]["cells"] // 2


def test_the_operations_page_shows_hot_spots_with_their_method(city: City) -> None:
    from ..conftest import make_client
    from ..web.conftest import log_in

    rng = random.Random(4)
    _cases(city, _spread(city, rng, 300))
    _cases(city, [(WUYI[0] + rng.uniform(-0.004, 0.004), WUYI[1] + rng.uniform(-0.004, 0.004)) for _ in range(60)])
    with make_client(city) as client:
        log_in(client, "supervisor")
        zh = client.get("/ops", headers={"Accept-Language": "zh-CN"}).text
        assert "近 30 天的热点" in zh and "Getis-Ord Gi*" in zh and 'id="hotspot-table"' in zh
        en = client.get("/ops", headers={"Accept-Language": "en"}).text
        assert "false-discovery rate" in en and "Hot spot" in en


def test_the_operations_page_filters_hot_spots_by_category_and_period(city: City) -> None:
    from ..conftest import make_client
    from ..web.conftest import log_in

    rng = random.Random(4)
    _cases(city, _spread(city, rng, 300))
    _cases(city, [(WUYI[0] + rng.uniform(-0.004, 0.004), WUYI[1] + rng.uniform(-0.004, 0.004)) for _ in range(60)])
    with make_client(city) as client:
        log_in(client, "supervisor")
        potholes = client.get("/ops", params={"hot_category": "pothole", "hot_days": "30"},
                              headers={"Accept-Language": "en"}).text
        assert 'id="hotspot-table"' in potholes and '<option value="pothole" selected>' in potholes
        noise = client.get("/ops", params={"hot_category": "noise", "hot_days": "7"}, headers={"Accept-Language": "en"}).text
        assert 'id="no-hotspots"' in noise and "Hot spots, last 7 days" in noise
        # Anything else is the default: all categories, 30 days.
        odd = client.get("/ops", params={"hot_category": "<x>", "hot_days": "999"}, headers={"Accept-Language": "en"})
        assert odd.status_code == 200 and "Hot spots, last 30 days" in odd.text


def test_a_neighbourhood_that_is_the_whole_study_area_has_nothing_to_test() -> None:
    import h3

    centre = h3.latlng_to_cell(*WUYI, 8)
    cells = sorted(h3.grid_disk(centre, 1))  # the centre's neighbourhood is the whole area
    z, p = gi_star(cells, Counter({centre: 5, cells[0]: 1}))
    i = cells.index(centre)
    assert z[i] == 0 and p[i] == 1 and np.isfinite(z).all()


def test_a_busy_city_keeps_its_resolution() -> None:
    """The estimate is of cells, not of cases: 60,000 cases in a city-sized area stay at resolution 8."""
    from wecity.ai.hotspots import MAX_CELLS, _cells_estimate

    rng = random.Random(1)
    points = [(28.1 + rng.random() * 0.2, 112.9 + rng.random() * 0.2) for _ in range(60_000)]
    assert _cells_estimate(points, 8) < MAX_CELLS / 10
