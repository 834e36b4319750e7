"""Temporal API: every attribute change kept; timerel filters; simplified values; SQL aggregation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.context.conftest import BASE, entity, prop
from wecity.context.history import parse_duration

TEMPORAL = f"{BASE}/temporal/entities"
E1 = "urn:ngsi-ld:AirQualityObserved:1"


def _readings(ngsi: Any) -> None:
    ngsi.post(f"{BASE}/entities", json={"id": E1, "type": "AirQualityObserved",
                                         "pm25": prop(10, observedAt="2026-11-02T00:00:00Z")})
    for minute, value in ((20, 20), (40, 30), (70, 40), (100, 50)):
        at = f"2026-11-02T{minute // 60:02d}:{minute % 60:02d}:00Z"
        r = ngsi.patch(f"{BASE}/entities/{E1}/attrs/pm25", json={"value": value, "observedAt": at})
        assert r.status_code == 204


def test_every_change_is_kept(ngsi: Any) -> None:
    _readings(ngsi)
    body = ngsi.get(f"{TEMPORAL}/{E1}").json()
    assert [i["value"] for i in body["pm25"]] == [10, 20, 30, 40, 50]
    assert all(i["instanceId"].startswith("urn:ngsi-ld:attribute:instance:") for i in body["pm25"])
    simple = ngsi.get(f"{TEMPORAL}/{E1}", params={"options": "temporalValues"}).json()
    assert simple["pm25"]["values"][0] == [10, "2026-11-02T00:00:00Z"]


def test_timerel_before_after_between(ngsi: Any) -> None:
    _readings(ngsi)

    def values(**params: Any) -> list[Any]:
        r = ngsi.get(f"{TEMPORAL}/{E1}", params=params)
        assert r.status_code == 200, r.text
        return [i["value"] for i in r.json().get("pm25", [])]

    assert values(timerel="before", timeAt="2026-11-02T00:40:00Z") == [10, 20]
    assert values(timerel="after", timeAt="2026-11-02T00:40:00Z") == [30, 40, 50]
    assert values(timerel="between", timeAt="2026-11-02T00:20:00Z", endTimeAt="2026-11-02T01:10:00Z") == [20, 30]
    assert values(lastN="2") == [40, 50]
    assert values(lastN="9") == [10, 20, 30, 40, 50]
    for last_n in ("0", "-1", "two"):
        assert ngsi.get(f"{TEMPORAL}/{E1}", params={"lastN": last_n}).status_code == 400, last_n
    for bad in ({"timerel": "during", "timeAt": "2026-11-02T00:00:00Z"}, {"timerel": "before"},
                {"timerel": "between", "timeAt": "2026-11-02T00:00:00Z"}, {"timerel": "after", "timeAt": "soon"}):
        assert ngsi.get(f"{TEMPORAL}/{E1}", params=bad).status_code == 400, bad


def test_aggregation_per_period(ngsi: Any) -> None:
    _readings(ngsi)
    r = ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "totalCount,sum,avg,min,max", "aggrPeriodDuration": "PT1H",
                                              "timerel": "after", "timeAt": "2026-11-02T00:00:00Z"})
    assert r.status_code == 200, r.text
    pm = r.json()["pm25"]
    assert pm["totalCount"] == [[3, "2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z"],
                                [2, "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z"]]
    assert [row[0] for row in pm["sum"]] == [60, 90]
    assert [row[0] for row in pm["avg"]] == [20, 45]
    assert [row[0] for row in pm["min"]] == [10, 40]
    assert [row[0] for row in pm["max"]] == [30, 50]
    whole = ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "avg"}).json()["pm25"]["avg"]
    assert whole[0][0] == 30
    assert ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "median"}).status_code == 400
    assert ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "avg", "aggrPeriodDuration": "1h"}).status_code == 400


@pytest.mark.parametrize("duration", ["P" + "9" * 400 + "Y", "PT" + "9" * 400 + "S", "P99999999999Y", "P1001Y",
                                      "PT0.0001S"])
def test_aggregation_period_out_of_range_is_bad_request(ngsi: Any, duration: str) -> None:
    # 400 nines are an infinite float (its buckets were NaN, a 500), eleven are past the last date (a 404).
    _readings(ngsi)
    for extra in ({}, {"timerel": "after", "timeAt": "2026-11-02T00:00:00Z"}):
        r = ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "sum", "aggrPeriodDuration": duration, **extra})
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    r = ngsi.get(f"{TEMPORAL}/{E1}", params={"aggrMethods": "sum", "aggrPeriodDuration": "P1000Y"})
    assert r.status_code == 200 and r.json()["pm25"]["sum"][0][0] == 150


def test_temporal_query_and_delete(ngsi: Any) -> None:
    _readings(ngsi)
    ngsi.post(f"{BASE}/entities", json=entity(tiltAngle=prop(1)))
    r = ngsi.get(TEMPORAL, params={"type": "AirQualityObserved", "attrs": "pm25", "lastN": "1"})
    assert r.status_code == 200 and [e["id"] for e in r.json()] == [E1]
    assert r.json()[0]["pm25"][0]["value"] == 50
    assert ngsi.get(TEMPORAL).status_code == 400
    assert ngsi.delete(f"{TEMPORAL}/{E1}").status_code == 204
    assert ngsi.get(f"{TEMPORAL}/{E1}").status_code == 404


def test_temporal_create_adds_instances(ngsi: Any) -> None:
    body = {"id": E1, "type": "AirQualityObserved",
            "pm25": [prop(5, observedAt="2026-11-01T00:00:00Z"), prop(6, observedAt="2026-11-01T01:00:00Z")]}
    assert ngsi.post(TEMPORAL, json=body).status_code == 201
    more = {**body, "pm25": [prop(7, observedAt="2026-11-01T01:00:00Z"), prop(8, observedAt="2026-11-01T02:00:00Z")]}
    assert ngsi.post(TEMPORAL, json=more).status_code == 204
    # the observation at 01:00 given again is corrected, the one at 02:00 is added
    assert [i["value"] for i in ngsi.get(f"{TEMPORAL}/{E1}").json()["pm25"]] == [5, 7, 8]


@pytest.mark.parametrize(("text", "seconds"), [("PT1H", 3600), ("P1D", 86400), ("PT1M30S", 90), ("P1W", 604800),
                                               ("PT0.5S", 0.5), ("P1Y", 365 * 86400)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_a_page_reads_the_oldest_of_each_attribute_as_the_whole_history_shows_them(ngsi: Any,
                                                                                   monkeypatch: Any) -> None:
    """Without lastN each attribute is read oldest first and stopped past the page (a sensor's year is half a
    million rows); the answer, its status and Content-Range are what cutting the whole history gives, with
    instances at the same time across the cut, datasets, a time window and attrs."""
    import wecity.context.routes_temporal as routes
    from wecity.context import history, temporal

    def at(minute: int) -> str:
        return f"2026-11-02T{minute // 60:02d}:{minute % 60:02d}:00Z"

    body = {"id": E1, "type": "AirQualityObserved",
            "pm25": [prop(m, observedAt=at(m)) for m in range(0, 60, 3)]
            + [prop(100 + m, observedAt=at(m), datasetId="urn:ngsi-ld:Dataset:b") for m in range(1, 60, 7)],
            "no2": [prop(200 + m, observedAt=at(m)) for m in (0, 3, 3, 6, 9, 30)]}  # two at once: a tie
    assert ngsi.post(TEMPORAL, json=body).status_code == 201
    asks = [{}, {"attrs": "no2"}, {"datasetId": "urn:ngsi-ld:Dataset:b"},
            {"timerel": "after", "timeAt": at(20)}, {"timerel": "between", "timeAt": at(2), "endTimeAt": at(40)}]
    read_earliest = history.earliest_rows
    seen: list[int] = []
    monkeypatch.setattr(history, "earliest_rows", lambda *a, **k: seen.append(len(rows := read_earliest(*a, **k)))
                        or rows)
    answers = {}
    for page in (1, 2, 3, 4, 7, 100):
        monkeypatch.setattr(routes, "_page", lambda request, page=page: page)
        answers[page] = [ngsi.get(f"{TEMPORAL}/{E1}", params=params) for params in asks]
    assert len(seen) == 6 * len(asks) and max(seen[:len(asks)]) <= 2 * 3  # page 1: two of each attribute at most

    def whole(conn: Any, tenant: str, entity_id: str, ask: Any) -> Any:  # the whole history, cut as before
        rows = history.rows_of(conn, tenant, [entity_id], attrs=ask.attrs, where=ask.when.where()).get(entity_id, [])
        chosen = temporal.select_instances(rows, ask)
        types = history.types_of(conn, tenant, [entity_id])[entity_id]
        edge = temporal.boundary(chosen, ask)
        if edge is None:
            return temporal.represent(entity_id, types, chosen, ask), None
        kept = temporal.cut(chosen, edge, ask)
        emptied = {r[1] for r in chosen} - {r[1] for r in kept}
        return temporal.represent(entity_id, types, kept, ask, emptied=emptied), temporal.page_of(edge, kept, ask)

    monkeypatch.setattr(routes, "_entity", whole)
    for page, got in answers.items():
        monkeypatch.setattr(routes, "_page", lambda request, page=page: page)
        for params, answer in zip(asks, got, strict=True):
            expected = ngsi.get(f"{TEMPORAL}/{E1}", params=params)
            assert answer.status_code == expected.status_code, (page, params)
            assert answer.headers.get("content-range") == expected.headers.get("content-range"), (page, params)
            assert answer.json() == expected.json(), (page, params)
    assert answers[3][1].status_code == 206 and [i["value"] for i in answers[3][1].json()["no2"]] == [200, 203, 203]


def test_last_n_reads_the_newest_of_each_attribute_as_the_whole_history_shows_them(ngsi: Any, monkeypatch: Any) -> None:
    """lastN reads each attribute newest first and stops (a sensor's year is half a million rows); what it
    shows is what cutting the whole history gives, with datasets, a time window and a page."""
    from wecity.context import history

    def at(minute: int) -> str:
        return f"2026-11-02T{minute // 60:02d}:{minute % 60:02d}:00Z"

    body = {"id": E1, "type": "AirQualityObserved",
            "pm25": [prop(m, observedAt=at(m)) for m in range(0, 60, 3)]
            + [prop(100 + m, observedAt=at(m), datasetId="urn:ngsi-ld:Dataset:b") for m in range(1, 60, 7)],
            "no2": [prop(200 + m, observedAt=at(m)) for m in range(2, 60, 11)]}
    assert ngsi.post(TEMPORAL, json=body).status_code == 201
    asks = [{"lastN": "1"}, {"lastN": "3"}, {"lastN": "50"}, {"lastN": "2", "attrs": "no2"},
            {"lastN": "2", "datasetId": "urn:ngsi-ld:Dataset:b"},
            {"lastN": "4", "timerel": "before", "timeAt": at(30)},
            {"lastN": "3", "timerel": "between", "timeAt": at(10), "endTimeAt": at(40)}]
    read_newest = history.newest_rows
    calls: list[int] = []
    monkeypatch.setattr(history, "newest_rows", lambda *a, **k: calls.append(1) or read_newest(*a, **k))
    newest = [ngsi.get(f"{TEMPORAL}/{E1}", params=params) for params in asks]
    assert len(calls) == len(asks)
    # The same asks answered by cutting the whole history, as before.
    import wecity.context.routes_temporal as routes
    from wecity.context import temporal

    def whole(conn: Any, tenant: str, entity_id: str, ask: Any) -> Any:
        last_n, ask.last_n = ask.last_n, None
        rows = history.rows_of(conn, tenant, [entity_id], attrs=ask.attrs,
                               where=ask.when.where()).get(entity_id, [])
        ask.last_n = last_n
        chosen = temporal.select_instances(rows, ask)
        return temporal.represent(entity_id, history.types_of(conn, tenant, [entity_id])[entity_id], chosen, ask), None

    monkeypatch.setattr(routes, "_entity", whole)
    for params, answer in zip(asks, newest, strict=True):
        expected = ngsi.get(f"{TEMPORAL}/{E1}", params=params)
        assert answer.status_code == expected.status_code == 200, params
        assert answer.json() == expected.json(), params
    assert [i["value"] for i in newest[1].json()["no2"]] == [235, 246, 257]


def test_a_temporal_query_that_would_read_too_much_history_is_too_many_results(ngsi: Any, monkeypatch: Any) -> None:
    """A query's answer is built in memory from the candidates' instances: past the bound it is refused with
    how to narrow it, not read until the server runs out of memory; within the bound it is answered."""
    from wecity.context import history

    body = {"id": E1, "type": "AirQualityObserved",
            "pm25": [prop(m, observedAt=f"2026-11-02T00:{m:02d}:00Z") for m in range(12)]}
    assert ngsi.post(TEMPORAL, json=body).status_code == 201
    monkeypatch.setattr(history, "MAX_ROWS_READ", 10)
    r = ngsi.get(f"{BASE}/temporal/entities", params={"type": "AirQualityObserved"})
    assert (r.status_code, r.json()["type"]) == (403, "https://uri.etsi.org/ngsi-ld/errors/TooManyResults")
    assert "timerel" in r.json()["detail"]
    narrowed = ngsi.get(f"{BASE}/temporal/entities", params={"type": "AirQualityObserved", "timerel": "after",
                                                             "timeAt": "2026-11-02T00:05:00Z"})
    assert narrowed.status_code == 200 and len(narrowed.json()[0]["pm25"]) == 7  # from 00:05 on
    assert ngsi.get(f"{TEMPORAL}/{E1}").status_code == 200  # one entity's page reads only the page
