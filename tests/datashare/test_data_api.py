"""The data API: open data to anyone (JSON and CSV, filters, fields, paging); data that is not open only
to its publishing department until sharing grants exist, every read and refusal of it in the audit log;
every dataset of the demo catalogue served, sensors and daily case counts among them."""

from __future__ import annotations

import sqlalchemy as sa

from wecity.core.clock import CITY_TZ
from wecity.govservice import certificates
from wecity.identity.applicants import create_applicant
from wecity.identity.models import audit_log, users
from wecity.identity.service import start_session

from ..conftest import City, make_client


def _session(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def _licences(city: City) -> list[str]:
    now = city.clock.now()

    def issue(conn: sa.Connection) -> list[str]:
        key = certificates.signing_key(conn, city.settings.var_dir)
        numbers = []
        for i, (name, place) in enumerate([("明记小吃", "芙蓉区五一大道 1 号"), ("湘味粉店", "天心区书院路 2 号"),
                                          ("岳麓书店", "岳麓区麓山南路 3 号")]):
            holder = create_applicant(conn, kind="citizen", display_name=f"经营者{i}", phone=f"1390000100{i}", now=now)
            issued = certificates.issue(
                conn, key=key, type="individual_business_licence", name_zh="个体工商户营业执照",
                name_en="Individual business licence", holder_id=holder.id, holder_name=holder.display_name,
                application_id=None, application_number=None, department_code="shichang",
                department_name_zh="市场监督管理局", department_name_en="Market Regulation",
                fields={"business_name": name, "business_address": place, "business_scope": "餐饮"},
                valid_days=None, now=now)
            numbers.append(issued["number"])
        return numbers

    return city.db.write_sync(issue)


def test_a_date_field_is_the_city_s_day_of_the_instant(catalogued: City) -> None:
    catalogued.clock.at = catalogued.clock.at.replace(hour=17)  # 17:00 UTC: already the next day in Changsha
    _licences(catalogued)
    with make_client(catalogued) as client:
        rows = client.get("/api/v1/data/business-licences").json()["rows"]
        assert rows[0]["issued_at"] == "2026-11-03"
        by_day = {day: client.get("/api/v1/data/business-licences", params={"issued_at": day}).json()["count"]
                  for day in ("2026-11-02", "2026-11-03")}
        assert by_day == {"2026-11-02": 0, "2026-11-03": 3}


def test_open_data_is_served_to_anyone_as_json_and_csv(catalogued: City) -> None:
    numbers = _licences(catalogued)
    with make_client(catalogued) as client:
        body = client.get("/api/v1/data/business-licences").json()
        assert body["count"] == 3 and [r["number"] for r in body["rows"]] == numbers
        assert body["rows"][0]["business_name"] == "明记小吃" and body["rows"][0]["issued_at"] == "2026-11-02"
        picked = client.get("/api/v1/data/business-licences", params={"fields": "number,business_name",
                                                                       "business_scope": "餐饮", "limit": 1,
                                                                       "offset": 1}).json()
        assert picked["count"] == 3 and picked["rows"] == [{"number": numbers[1], "business_name": "湘味粉店"}]
        lists = client.get("/api/v1/data/business-licences", params={"fields": "number,business_name",
                                                                      "records_format": "lists", "limit": 2}).json()
        assert lists["fields"] == ["number", "business_name"] and lists["rows"] == [[numbers[0], "明记小吃"],
                                                                                      [numbers[1], "湘味粉店"]]
        assert client.get("/api/v1/data/business-licences", params={"records_format": "rows"}).status_code == 400
        one = client.get("/api/v1/data/business-licences", params={"business_name": "岳麓书店"}).json()
        assert [r["number"] for r in one["rows"]] == [numbers[2]]
        csv_text = client.get("/api/v1/data/business-licences", params={"format": "csv"}).text
        assert csv_text.startswith("\ufeffnumber,business_name") and "湘味粉店" in csv_text
        bad = client.get("/api/v1/data/business-licences", params={"owner": "x"})
        assert bad.status_code == 400 and bad.json()["code"] == "datashare.unknown_field"
        areas = client.get("/api/v1/data/district-boundaries", params={"fields": "code,name_zh"}).json()
        assert areas["count"] >= 9 and "芙蓉区" in {r["name_zh"] for r in areas["rows"]}
        # Every dataset of the demo catalogue is served: open ones to anyone, the others refused, none "not served".
        listed = client.get("/api/v1/datasets", params={"limit": 100}).json()["datasets"]
        for d in listed:
            answer = client.get(f"/api/v1/data/{d['name']}", params={"limit": 2})
            assert answer.status_code == (200 if d["open_data"] else 403), (d["name"], answer.text)
        assert client.get("/api/v1/data/no-such").status_code == 404
    # Open data is public: reading it leaves no entry about anyone; each refusal of the rest is logged.
    logged = catalogued.db.read_sync(lambda c: [r.outcome for r in c.execute(
        sa.select(audit_log.c.outcome).where(audit_log.c.action == "data.read"))])
    assert logged == ["denied"] * sum(not d["open_data"] for d in listed)


def test_data_that_is_not_open_is_refused_and_every_read_and_refusal_logged(catalogued: City) -> None:
    with make_client(catalogued) as client:
        assert client.get("/api/v1/data/road-occupation-permits").status_code == 403
        other = client.get("/api/v1/data/road-occupation-permits", headers=_session(catalogued, "zhujian"))
        assert other.status_code == 403 and other.json()["code"] == "datashare.grant_required"
        own = client.get("/api/v1/data/road-occupation-permits", headers=_session(catalogued, "chengguan"))
        assert own.status_code == 200 and own.json()["count"] == 0
    log = catalogued.db.read_sync(lambda c: [(r.actor, r.outcome) for r in c.execute(
        sa.select(audit_log.c.actor, audit_log.c.outcome).where(audit_log.c.action == "data.read")
        .order_by(audit_log.c.id))])
    assert [outcome for _, outcome in log] == ["denied", "denied", "ok"]
    assert log[0][0].startswith("anonymous:") and log[1][0] == "user:zhujian" and log[2][0] == "user:chengguan"


def test_sensor_entities_and_daily_case_counts_are_served_as_tables(catalogued: City) -> None:
    with make_client(catalogued, ngsild_auth="off") as client:
        for i, tilt in enumerate((0.4, 27.5)):
            created = client.post("/ngsi-ld/v1/entities", json={
                "id": f"urn:ngsi-ld:Manhole:t{i}", "type": "Manhole",
                "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [112.97, 28.19 + i / 100]}},
                "tiltAngle": {"type": "Property", "value": tilt, "observedAt": f"2026-11-0{i + 1}T08:00:00Z"}},
                headers={"Content-Type": "application/json"})
            assert created.status_code == 201, created.text
        rows = client.get("/api/v1/data/manhole-sensors").json()["rows"]
        assert [(r["id"], r["tiltAngle"], r["observedAt"]) for r in rows] == [
            ("urn:ngsi-ld:Manhole:t0", 0.4, "2026-11-01T08:00:00Z"), ("urn:ngsi-ld:Manhole:t1", 27.5, "2026-11-02T08:00:00Z")]
        assert rows[0]["location"] == {"type": "Point", "coordinates": [112.97, 28.19]}
        tilted = client.get("/api/v1/data/manhole-sensors", params={"tiltAngle": "27.5"}).json()
        assert [r["id"] for r in tilted["rows"]] == ["urn:ngsi-ld:Manhole:t1"]
        # The history of a type: every recorded value, oldest first, filtered by entity and attribute in SQL.
        for pm25, hour in ((35.0, "08"), (41.5, "09")):
            upsert = client.post("/ngsi-ld/v1/entityOperations/upsert", json=[{
                "id": "urn:ngsi-ld:AirQualityObserved:s1", "type": "AirQualityObserved",
                "pm25": {"type": "Property", "value": pm25, "observedAt": f"2026-11-03T{hour}:00:00Z"}}],
                headers={"Content-Type": "application/json"}, params={"options": "update"})
            assert upsert.status_code in (201, 204), upsert.text
        history = client.get("/api/v1/data/air-quality-history", params={"attribute": "pm25",
                                                                         "id": "urn:ngsi-ld:AirQualityObserved:s1"}).json()
        assert [(r["observedAt"], r["value"]) for r in history["rows"]] == [
            ("2026-11-03T08:00:00.000Z", 35.0), ("2026-11-03T09:00:00.000Z", 41.5)]
        assert history["count"] == 2
        bad = client.get("/api/v1/data/air-quality-history", params={"value": "35"})
        assert bad.status_code == 400 and bad.json()["code"] == "datashare.bad_filter"

        for long in (112.9770, 112.9900):  # apart, so that duplicate merge keeps them two cases
            report = client.post("/open311/v2/requests.json", data={
                "api_key": catalogued.api_key, "service_code": "pothole", "lat": 28.1960, "long": long,
                "description": "路面塌陷"})
            assert report.status_code == 200, report.text
        daily = client.get("/api/v1/data/case-statistics-daily").json()
        assert daily["count"] >= 1
        today = [r for r in daily["rows"] if r["category"] == "pothole" and r["received"] >= 1]
        assert sum(r["received"] for r in today) == 2 and all(r["closed"] == 0 for r in today)
        assert today[0]["day"] == catalogued.clock.now().astimezone(CITY_TZ).date().isoformat()


def test_every_row_of_a_source_paged_in_sql_is_reachable_and_an_in_memory_one_refuses_past_what_it_reads(
        catalogued: City) -> None:
    with make_client(catalogued, ngsild_auth="off") as client:
        upsert = client.post("/ngsi-ld/v1/entityOperations/upsert", json=[{
            "id": "urn:ngsi-ld:AirQualityObserved:far", "type": "AirQualityObserved",
            "pm25": {"type": "Property", "value": 12.0, "observedAt": "2026-11-03T08:00:00Z"}}],
            headers={"Content-Type": "application/json"}, params={"options": "update"})
        assert upsert.status_code in (201, 204), upsert.text
        # A history of millions of rows is paged on until a page comes back short: far past 100,000 (and past
        # what a 32-bit integer holds) is a page, here an empty one, not a refusal.
        for offset in (100_001, 3_000_000_000):
            far = client.get("/api/v1/data/air-quality-history", params={"offset": offset})
            assert far.status_code == 200, far.text
            assert far.json()["rows"] == [] and far.json()["offset"] == offset
        cases = client.get("/api/v1/data/city-cases", params={"offset": 3_000_000_000},
                           headers=_session(catalogued, "dispatcher"))
        assert cases.status_code == 200 and cases.json()["rows"] == [], cases.text
        # A source read in memory holds at most its oldest 100,000 rows: an offset past them is refused.
        assert client.get("/api/v1/data/manhole-sensors", params={"offset": 100_000}).status_code == 200
        past = client.get("/api/v1/data/manhole-sensors", params={"offset": 100_001, "lang": "zh"})
        assert past.status_code == 400 and past.json()["code"] == "datashare.offset_too_large"
