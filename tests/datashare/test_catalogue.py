"""The data catalogue: what a department may publish (share classes, open data, personal fields), updates,
withdrawal, search, and who may publish over the API."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.core.errors import ValidationFailed
from wecity.datashare import catalogue, queries
from wecity.identity.models import users
from wecity.identity.service import start_session

from ..conftest import City, make_client


def _doc(city: City, name: str = "air-quality") -> dict[str, Any]:
    document = catalogue.packaged_demo_datasets()
    return copy.deepcopy(next(d for d in document["datasets"] if d["name"] == name))


def _refused(city: City, doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationFailed) as err:
        city.db.write_sync(lambda c: catalogue.publish(c, doc, now=city.clock.now()))
    return err.value.message


def test_the_demo_catalogue_is_published_and_searchable(catalogued: City) -> None:
    count, found = catalogued.db.read_sync(lambda c: queries.search_datasets(c, limit=100))
    assert count == 19 and len({d["publisher"] for d in found}) >= 8
    assert {d["share_class"] for d in found} == {"unconditional", "conditional", "not_shared"}
    count, found = catalogued.db.read_sync(lambda c: queries.search_datasets(c, text="pm2.5"))
    assert sorted(d["name"] for d in found) == ["air-quality", "air-quality-history"]
    _, open_data = catalogued.db.read_sync(lambda c: queries.search_datasets(c, open_only=True, limit=100))
    assert open_data and all(d["open_data"] and not d["personal_fields"] for d in open_data)


def test_open_data_holds_no_personal_field_and_conditions_have_a_legal_basis(catalogued: City) -> None:
    doc = _doc(catalogued)
    doc["fields"].append({"name": "owner_phone", "title_zh": "电话", "title_en": "Phone", "type": "string",
                          "sensitivity": "personal"})
    assert "owner_phone" in _refused(catalogued, doc)
    doc = _doc(catalogued, "city-cases")
    doc["legal_basis"] = " "
    assert "legal basis" in _refused(catalogued, doc)
    doc = _doc(catalogued)
    doc["publisher"] = "nobody"
    assert "no department" in _refused(catalogued, doc)
    doc = _doc(catalogued)
    doc["fields"].append(dict(doc["fields"][0]))
    assert "twice" in _refused(catalogued, doc)
    doc = _doc(catalogued)
    doc["theme"] = "FOOD"
    assert "theme" in _refused(catalogued, doc)


def test_publishing_again_updates_and_withdrawing_removes(catalogued: City) -> None:
    before = catalogued.db.read_sync(lambda c: queries.dataset(c, "air-quality"))
    doc = _doc(catalogued)
    doc["fields"] = doc["fields"][:2]
    doc["title_en"] = "Air quality (stations)"
    catalogued.clock.advance(days=1)
    catalogued.db.write_sync(lambda c: catalogue.publish(c, doc, now=catalogued.clock.now()))
    after = catalogued.db.read_sync(lambda c: queries.dataset(c, "air-quality"))
    assert after["id"] == before["id"] and after["issued_at"] == before["issued_at"]
    assert after["modified_at"] > before["modified_at"] and len(after["fields"]) == 2
    assert after["title_en"] == "Air quality (stations)"
    catalogued.db.write_sync(lambda c: catalogue.withdraw(c, "air-quality", now=catalogued.clock.now()))
    _, found = catalogued.db.read_sync(lambda c: queries.search_datasets(c, text="pm2.5"))
    assert [d["name"] for d in found] == ["air-quality-history"]  # the withdrawn one is no longer found


def _session(city: City, username: str) -> dict[str, str]:
    token = city.db.write_sync(lambda c: start_session(c, c.execute(sa.select(users.c.id).where(
        users.c.username == username)).scalar_one(), city.clock.now()))
    return {"Authorization": f"Bearer {token}"}


def test_only_the_publishing_department_or_an_administrator_publishes(catalogued: City) -> None:
    doc = _doc(catalogued, "manhole-sensors")
    with make_client(catalogued) as client:
        assert client.put("/api/v1/datasets/manhole-sensors", json=doc).status_code == 401
        r = client.put("/api/v1/datasets/manhole-sensors", json=doc, headers=_session(catalogued, "zhujian"))
        assert r.status_code == 403
        r = client.put("/api/v1/datasets/manhole-sensors", json={**doc, "name": "other"},
                       headers=_session(catalogued, "chengguan"))
        assert r.status_code == 400
        r = client.put("/api/v1/datasets/manhole-sensors", json={**doc, "title_en": "Manholes"},
                       headers=_session(catalogued, "chengguan"))
        assert r.status_code == 200 and r.json()["title_en"] == "Manholes"
        r = client.put("/api/v1/datasets/manhole-sensors", json={**doc, "frequency": "SOMETIMES"},
                       headers=_session(catalogued, "admin"))
        assert r.status_code == 400 and r.json()["code"] == "datashare.dataset_invalid"
        assert client.get("/api/v1/datasets/manhole-sensors").json()["title_en"] == "Manholes"
        assert client.get("/api/v1/datasets", params={"q": "井盖"}).json()["count"] == 1


def test_a_department_cannot_take_over_a_dataset_or_open_up_domain_records(catalogued: City) -> None:
    """The stored publisher decides who updates a dataset, not the document's; a new dataset over the
    platform's records is an administrator's; no document declares a known personal column public."""
    cases_doc = _doc(catalogued, "city-cases")
    with make_client(catalogued) as client:
        # 住建 re-publishing the dispatch centre's cases under its own name: refused, nothing changed.
        taken = client.put("/api/v1/datasets/city-cases", json={**cases_doc, "publisher": "zhujian"},
                           headers=_session(catalogued, "zhujian"))
        assert taken.status_code == 403 and taken.json()["code"] == "datashare.not_publisher"
        assert client.get("/api/v1/datasets/city-cases").json()["publisher"] == "dispatch"
        # A new dataset over the cases, under a department's own name: an administrator's to catalogue.
        fresh = {**cases_doc, "name": "my-cases", "publisher": "zhujian"}
        made = client.put("/api/v1/datasets/my-cases", json=fresh, headers=_session(catalogued, "zhujian"))
        assert made.status_code == 403 and made.json()["code"] == "datashare.admin_catalogues"
        # Nor may a department point its sensor dataset at the cases.
        sensors = _doc(catalogued, "manhole-sensors")
        moved = client.put("/api/v1/datasets/manhole-sensors", json={**sensors, "source": "cases", "source_ref": ""},
                           headers=_session(catalogued, "chengguan"))
        assert moved.status_code == 403 and moved.json()["code"] == "datashare.admin_catalogues"
        assert client.get("/api/v1/datasets/my-cases").status_code == 404
        # The reporter's phone declared public, as open data, even by an administrator: refused.
        opened = {**cases_doc, "share_class": "unconditional", "open_data": True, "fields": [
            {**f, "sensitivity": "public"} for f in cases_doc["fields"]]}
        refused = client.put("/api/v1/datasets/city-cases", json=opened, headers=_session(catalogued, "admin"))
        assert refused.status_code == 400 and "reporter_phone 属于个人信息" in refused.json()["title"]
        # Nor may its own department open it up: the fields' sensitivity and the sharing are an administrator's.
        widened = {**cases_doc, "fields": [{**f, "sensitivity": "public"} if f["name"] == "description" else f
                                           for f in cases_doc["fields"]]}
        refused = client.put("/api/v1/datasets/city-cases", json=widened, headers=_session(catalogued, "dispatcher"))
        assert refused.status_code == 403 and refused.json()["code"] == "datashare.admin_catalogues"
        assert client.put("/api/v1/datasets/city-cases", json=widened, headers=_session(catalogued, "admin")).status_code == 200
        # The dispatch centre maintains its own dataset's descriptions.
        cases_doc = widened
        kept = client.put("/api/v1/datasets/city-cases", json={**cases_doc, "title_en": "Cases"},
                          headers=_session(catalogued, "dispatcher"))
        assert kept.status_code == 200 and kept.json()["title_en"] == "Cases"


def test_an_entity_type_is_catalogued_by_an_administrator_and_opened_up_by_a_supervisor(catalogued: City) -> None:
    sensors = _doc(catalogued, "manhole-sensors")
    with make_client(catalogued) as client:
        # 住建 publishing the city's manholes (城管's sensors) as its own open data: refused, nothing published.
        taken = {**sensors, "name": "someone-elses", "publisher": "zhujian"}
        refused = client.put("/api/v1/datasets/someone-elses", json=taken, headers=_session(catalogued, "zhujian"))
        assert refused.status_code == 403 and refused.json()["code"] == "datashare.admin_catalogues"
        assert client.get("/api/v1/data/someone-elses").status_code == 404
        # Nor may 城管 point its dataset at another type; it keeps its descriptions up to date.
        moved = client.put("/api/v1/datasets/manhole-sensors", json={**sensors, "source_ref": "AirQualityObserved"},
                           headers=_session(catalogued, "chengguan"))
        assert moved.status_code == 403 and moved.json()["code"] == "datashare.admin_catalogues"
        kept = client.put("/api/v1/datasets/manhole-sensors", json={**sensors, "title_en": "Manholes"},
                          headers=_session(catalogued, "chengguan"))
        assert kept.status_code == 200, kept.text
        # An administrator catalogues a type for a department.
        made = client.put("/api/v1/datasets/someone-elses", json=taken, headers=_session(catalogued, "admin"))
        assert made.status_code == 200, made.text
        # A department's own table is its to catalogue; as open data, by a supervisor.
        table = {**_doc(catalogued, "service-standards"), "name": "street-cleaning", "publisher": "chengguan"}
        opened = client.put("/api/v1/datasets/street-cleaning", json=table, headers=_session(catalogued, "chengguan"))
        assert opened.status_code == 403 and opened.json()["code"] == "datashare.open_data_supervisor"
        closed = {**table, "open_data": False}
        assert client.put("/api/v1/datasets/street-cleaning", json=closed,
                          headers=_session(catalogued, "chengguan")).status_code == 200
        assert client.put("/api/v1/datasets/street-cleaning", json=table,
                          headers=_session(catalogued, "chengguan")).status_code == 403
        lead = client.put("/api/v1/datasets/street-cleaning", json=table, headers=_session(catalogued, "chengguan-lead"))
        assert lead.status_code == 200 and lead.json()["open_data"] is True


def test_a_name_of_digits_only_is_refused_so_that_no_name_shadows_a_dataset_s_number(catalogued: City) -> None:
    from wecity.datashare.queries import published

    last = max(catalogued.db.read_sync(published), key=lambda d: d["id"])
    assert last["id"] >= 10
    doc = _doc(catalogued)
    doc["name"] = str(last["id"])
    assert "digits" in _refused(catalogued, doc)
    with make_client(catalogued) as client:
        assert client.get(f"/api/v1/datasets/{last['id']}").json()["name"] == last["name"]


def test_a_search_while_a_dataset_is_published_does_not_keep_the_old_catalogue(
        catalogued: City, monkeypatch: pytest.MonkeyPatch) -> None:
    """A search between the publishing transaction's own cache drop and its commit loads the catalogue as
    it was; the cache is dropped again once the change is committed, so the change shows at once."""
    from wecity.datashare import queries

    doc = _doc(catalogued)
    real = catalogue.publish

    def publish_while_someone_searches(conn: sa.Connection, document: dict[str, Any], *, now: Any) -> int:
        found = real(conn, document, now=now)
        catalogued.db.read_sync(queries.published)  # another request, seeing what is committed
        return found

    monkeypatch.setattr(catalogue, "publish", publish_while_someone_searches)
    with make_client(catalogued) as client:
        done = client.put("/api/v1/datasets/air-quality", json={**doc, "title_en": "Air, renamed"},
                          headers=_session(catalogued, "admin"))
        assert done.status_code == 200, done.text
        assert client.get("/api/v1/datasets/air-quality").json()["title_en"] == "Air, renamed"


def test_a_field_name_beginning_with_an_underscore_is_refused_as_the_platform_s_own(catalogued: City) -> None:
    # Each row read carries its record as "_record": an uploaded column of that name would be overwritten.
    doc = _doc(catalogued, "service-standards")
    doc["fields"].append({"name": "_record", "title_zh": "记录", "title_en": "Record", "type": "string",
                          "sensitivity": "public"})
    assert "_record" in _refused(catalogued, doc)
    doc["fields"][-1]["name"] = "record"
    catalogued.db.write_sync(lambda c: catalogue.publish(c, doc, now=catalogued.clock.now()))
