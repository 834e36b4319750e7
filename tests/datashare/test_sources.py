"""Each source serves its rows as the data API promises whatever it reads: personal fields masked, and each
row named as a record in the reading's audit entry."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wecity.context.ldcontext import DEFAULT_VOCAB
from wecity.context.models import attribute_history
from wecity.datashare import access, catalogue, queries, sources

from ..conftest import City

_SENSITIVITY = {"id": "personal", "attribute": "public", "observedAt": "public", "value": "personal"}


def _history_dataset(city: City) -> None:
    doc = {"name": "meter-history", "title_zh": "水表读数", "title_en": "Meter readings", "description_zh": "水表读数",
           "description_en": "Meter readings", "publisher": "shengtai", "theme": "ENVI", "keywords": [],
           "frequency": "HOURLY", "spatial": "长沙市", "source": "ngsild", "source_ref": "WaterMeter/history",
           "share_class": "conditional", "legal_basis": "管理办法", "open_data": False,
           "fields": [{"name": n, "title_zh": n, "title_en": n, "type": "string", "sensitivity": s}
                      for n, s in _SENSITIVITY.items()]}
    city.db.write_sync(lambda c: catalogue.publish(c, doc, now=city.clock.now()))
    city.db.write_sync(lambda c: c.execute(attribute_history.insert(), [
        {"tenant": "", "entity_id": f"urn:ngsi-ld:WaterMeter:{i}", "entity_type": DEFAULT_VOCAB + "WaterMeter",
         "attr": DEFAULT_VOCAB + "holder", "ts": 1.0e9 + i, "number": None, "instance": {"value": name},
         "recorded_at": city.clock.now()} for i, name in enumerate(["张三丰", "李四"])]))


def _read(city: City, name: str, fields: list[str], masked: frozenset[str] = frozenset()) -> Any:
    def run(conn: sa.Connection) -> Any:
        d = queries.dataset(conn, name)
        q = sources.Query(fields, {}, 10, 0, masked=masked, mask=access.mask)
        return sources.reader(d)(conn, d, q, city.clock.now())

    return city.db.read_sync(run)


def test_a_history_s_personal_fields_come_masked(catalogued: City) -> None:
    _history_dataset(catalogued)
    page = _read(catalogued, "meter-history", ["id", "attribute", "value"], frozenset({"id", "value"}))
    assert [r[1:] for r in page.rows] == [("holder", "张**"), ("holder", "李*")]
    assert all("WaterMeter" not in r[0] and r[0].startswith("u") for r in page.rows)
    clear = _read(catalogued, "meter-history", ["id", "value"])
    assert clear.rows == [("urn:ngsi-ld:WaterMeter:0", "张三丰"), ("urn:ngsi-ld:WaterMeter:1", "李四")]


def test_a_history_is_read_in_order_from_an_index_and_counted_only_so_far(catalogued: City, monkeypatch: Any) -> None:
    city = catalogued
    _history_dataset(city)
    indexes = city.db.read_sync(lambda c: [i["column_names"] for i in sa.inspect(c).get_indexes(
        "ngsild_attribute_history")])
    assert ["tenant", "entity_type", "ts", "pk"] in indexes
    if city.db.engine.dialect.name == "sqlite":
        statements: list[tuple[str, Any]] = []

        def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            if "ORDER BY" in statement and "ngsild_attribute_history" in statement:
                statements.append((statement, parameters))

        sa.event.listen(city.db.engine, "before_cursor_execute", seen)
        try:
            _read(city, "meter-history", ["id", "value"])
        finally:
            sa.event.remove(city.db.engine, "before_cursor_execute", seen)
        statement, parameters = statements[-1]
        plan = " ".join(str(r[-1]) for r in city.db.read_sync(
            lambda c: c.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()))
        assert "ix_ngsild_attribute_history_type_ts" in plan and "TEMP B-TREE" not in plan, plan
    assert _read(city, "meter-history", ["id"]).total == 2
    monkeypatch.setattr(sources, "HISTORY_COUNTED", 1)
    assert _read(city, "meter-history", ["id"]).total is None  # more than counted: no total, not a wrong one


def test_the_sample_on_an_open_dataset_s_page_is_not_counted(catalogued: City, monkeypatch: Any) -> None:
    from ..conftest import make_client

    city = catalogued
    _history_dataset(city)
    doc = city.db.read_sync(lambda c: queries.dataset(c, "meter-history"))
    opened = {k: doc[k] for k in ("name", "title_zh", "title_en", "description_zh", "description_en", "publisher",
                                  "theme", "keywords", "frequency", "spatial", "source", "source_ref")}
    opened.update(share_class="unconditional", legal_basis="", open_data=True,
                  fields=[{"name": n, "title_zh": n, "title_en": n, "type": "string", "sensitivity": "public"}
                          for n in _SENSITIVITY])
    city.db.write_sync(lambda c: catalogue.publish(c, opened, now=city.clock.now()))
    asked: list[bool] = []
    real = sources.history_rows

    def spy(*args: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["with_total"])
        return real(*args, **kwargs)

    monkeypatch.setattr(sources, "history_rows", spy)
    with make_client(city) as client:
        shown = client.get("/data/meter-history")
        assert shown.status_code == 200 and "张三丰" in shown.text
    assert asked == [False]


def test_a_source_read_in_memory_that_holds_more_than_is_read_says_so(catalogued: City, monkeypatch: Any) -> None:
    from ..conftest import make_client
    from .test_data_api import _licences

    numbers = _licences(catalogued)
    with make_client(catalogued) as client:
        whole = client.get("/api/v1/data/business-licences")
        assert whole.json()["truncated"] is False and whole.json()["count"] == 3
        assert "X-WeCity-Rows-Read" not in whole.headers
        monkeypatch.setattr(sources, "MAX_ROWS_READ", 2)
        part = client.get("/api/v1/data/business-licences")
        body = part.json()
        assert body["truncated"] is True and body["count"] is None
        assert [r["number"] for r in body["rows"]] == numbers[:2] and part.headers["X-WeCity-Rows-Read"] == "2"
        csv_part = client.get("/api/v1/data/business-licences", params={"format": "csv"})
        assert csv_part.headers["X-WeCity-Rows-Read"] == "2"


def test_every_source_names_its_rows_for_the_audit_log_once_each(catalogued: City) -> None:
    from ..conftest import make_client

    city = catalogued
    _history_dataset(city)
    with make_client(city, ngsild_auth="off") as client:
        created = client.post("/ngsi-ld/v1/entities", json={"id": "urn:ngsi-ld:Manhole:r1", "type": "Manhole",
                                                            "tiltAngle": {"type": "Property", "value": 1.5}},
                              headers={"Content-Type": "application/json"})
        assert created.status_code == 201, created.text
    assert _read(city, "meter-history", ["value"]).records == ["entity:urn:ngsi-ld:WaterMeter:0",
                                                               "entity:urn:ngsi-ld:WaterMeter:1"]
    assert _read(city, "manhole-sensors", ["tiltAngle"]).records == ["entity:urn:ngsi-ld:Manhole:r1"]
    assert _read(city, "service-standards", ["category"]).records[:2] == ["table:service-standards:0",
                                                                        "table:service-standards:1"]
    areas = _read(city, "district-boundaries", ["code"])
    assert areas.records and areas.records == [f"area:{r[0]}" for r in areas.rows]

    def logged(conn: sa.Connection) -> list[str]:
        from wecity.identity.models import audit_log

        d = queries.dataset(conn, "meter-history")
        page = sources.Page(None, ["value"], [("a",), ("b",), ("c",)], ["entity:x", "entity:y", "entity:x"])
        reader = access.Access(access.PUBLISHER, "shengtai", "own", ["value"])
        access.record_reading(conn, d, reader, page, actor="user:t", source_address=None, now=city.clock.now(),
                              detail={"rows": 3})
        return list(conn.execute(sa.select(audit_log.c.detail).order_by(audit_log.c.id.desc()).limit(1))
                    .scalar_one()["records"])

    assert city.db.write_sync(logged) == ["entity:x", "entity:y"]


def test_masking_keeps_the_ends_of_id_numbers_and_credit_codes_only() -> None:
    assert access.mask("430102199001011234", "id_number") == "4301**********1234"
    assert access.mask("43010219900101123X", "id_number") == "4301**********123X"
    assert access.mask("91430100MA4L0XXX7Q", "credit_code") == "9143**********XX7Q"
    assert access.mask("王小明", "holder_name") == "王**"
    # A long text that is no ID: an address or an e-mail address keeps no tail, and hides its length.
    assert access.mask("长沙市芙蓉区五一大道123号4栋502室", "address") == "长沙****"
    assert access.mask("wang.xiaoming@example.com", "email") == "wa****"
    assert access.mask("欧阳小明", "holder_name") == "欧阳****"
