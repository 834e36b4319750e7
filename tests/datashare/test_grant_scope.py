"""A grant's scope is its fields: a field its row filter names but its fields do not is neither read nor
searched by, and a call asking for more than the grant is refused and logged like any refusal."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from wecity.datashare.models import data_accesses, data_grants
from wecity.identity.models import audit_log

from ..conftest import City, make_client
from .test_sharing import _district, _reports, _staff


def _granted(client: Any, city: City, asked: dict[str, Any], decision: dict[str, Any]) -> tuple[dict[str, str], int]:
    zhujian, provider = _staff(city, "zhujian"), _staff(city, "supervisor")
    made = client.post("/api/v1/data-requests", json=asked, headers=zhujian)
    assert made.status_code == 201, made.text
    decided = client.post(f"/api/v1/data-requests/{made.json()['id']}/decision", headers=provider, json=decision)
    assert decided.status_code == 200, decided.text
    return zhujian, decided.json()["grant"]["id"]


def test_a_row_filter_field_the_grant_does_not_name_is_neither_read_nor_searched_by(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        furong, _ = _reports(client, city)
        code = _district(city, furong[0])
        zhujian, grant_id = _granted(client, city, {
            "dataset": "city-cases", "purpose": "道路安全巡查", "fields": ["case_id", "category", "district"],
            "row_filter": {"district": [code]}, "days": 30}, {
            "decision": "grant", "reasons": "符合条件", "fields": ["case_id", "category"]})
        # A grant whose row filter names a personal field it does not grant (as older grants may).
        city.db.write_sync(lambda c: c.execute(data_grants.update().where(data_grants.c.id == grant_id).values(
            row_filter={"district": [code], "reporter_phone": ["13911110001"]})))
        served = client.get("/api/v1/data/city-cases", headers=zhujian).json()
        assert served["fields"] == ["case_id", "category"] and served["count"] == 1
        for params in ({"fields": "case_id,district,reporter_phone"}, {"fields": "reporter_phone"},
                       {"fields": "case_id", "reporter_phone": "13911110001"}, {"district": code}):
            refused = client.get("/api/v1/data/city-cases", params=params, headers=zhujian)
            assert refused.status_code == 403 and refused.json()["code"] == "datashare.outside_grant", params
            assert "13911110001" not in refused.text

    def refusals(conn: sa.Connection) -> list[tuple[str, int | None]]:
        return [(r.outcome, r.grant_id) for r in conn.execute(
            sa.select(data_accesses.c.outcome, data_accesses.c.grant_id).where(data_accesses.c.access == "refused")
            .order_by(data_accesses.c.id))]

    assert city.db.read_sync(refusals) == [("outside_grant", grant_id)] * 4
    denied = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.count()).select_from(audit_log).where(
        audit_log.c.action == "data.read", audit_log.c.outcome == "denied")).scalar_one())
    assert denied == 4


def test_a_filter_on_a_masked_field_is_refused_and_logged(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        _reports(client, city)
        zhujian, grant_id = _granted(client, city, {
            "dataset": "city-cases", "purpose": "道路安全巡查", "fields": ["case_id", "reporter_phone"], "days": 30},
            {"decision": "grant", "reasons": "符合条件"})
        refused = client.get("/api/v1/data/city-cases", params={"reporter_phone": "13911110001"}, headers=zhujian)
        assert refused.status_code == 403
    outcomes = city.db.read_sync(lambda c: c.execute(sa.select(data_accesses.c.outcome, data_accesses.c.grant_id)
                                                     .where(data_accesses.c.access == "refused")).all())
    assert [tuple(r) for r in outcomes] == [("masked_filter", grant_id)]


def test_a_request_limits_rows_by_fields_it_asks_for_and_never_by_a_masked_personal_one(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        zhujian = _staff(city, "zhujian")
        base = {"dataset": "city-cases", "purpose": "道路安全巡查", "days": 30}
        unasked = client.post("/api/v1/data-requests", headers=zhujian, json={
            **base, "fields": ["case_id", "category"], "row_filter": {"district": ["430102"]}})
        assert unasked.status_code == 400 and unasked.json()["code"] == "datashare.bad_filter"
        assert "district" in unasked.text
        by_phone = client.post("/api/v1/data-requests", headers=zhujian, json={
            **base, "fields": ["case_id", "reporter_phone"], "row_filter": {"reporter_phone": ["13911110001"]}})
        assert by_phone.status_code == 400 and by_phone.json()["code"] == "datashare.bad_filter"
        assert "reporter_phone" in by_phone.json()["title"]
        in_clear = client.post("/api/v1/data-requests", headers=zhujian, json={
            **base, "fields": ["case_id", "reporter_phone"], "clear_fields": ["reporter_phone"],
            "row_filter": {"reporter_phone": ["13911110001"]}})
        assert in_clear.status_code == 201, in_clear.text


def test_a_page_is_read_outside_the_writer_and_served_within_the_grant_as_it_is_when_logged(
        catalogued: City, monkeypatch: Any) -> None:
    """The grant narrowed (the phone number no longer in clear) while a page was being read: the page the
    caller gets, and the one logged, is read again within the grant as it now is. The change itself is
    written while the page is read: the reading does not hold the database's one writer."""
    from wecity.datashare import sources

    city = catalogued
    with make_client(city) as client:
        _reports(client, city)
        zhujian, grant_id = _granted(client, city, {
            "dataset": "city-cases", "purpose": "道路安全巡查", "fields": ["case_id", "reporter_phone"],
            "clear_fields": ["reporter_phone"], "days": 30}, {"decision": "grant", "reasons": "符合条件"})
        real = sources.reader
        calls: list[frozenset[str]] = []

        def reader(d: dict[str, Any]) -> Any:
            read = real(d)

            def narrowing(conn: sa.Connection, d: dict[str, Any], q: Any, now: Any) -> Any:
                calls.append(q.masked)
                if len(calls) == 1:
                    city.db.write_sync(lambda c: c.execute(data_grants.update().where(
                        data_grants.c.id == grant_id).values(clear_fields=[])))
                return read(conn, d, q, now)

            return narrowing

        monkeypatch.setattr(sources, "reader", reader)
        body = client.get("/api/v1/data/city-cases", headers=zhujian).json()
        assert calls == [frozenset(), frozenset({"reporter_phone"})]
        assert body["masked"] == ["reporter_phone"] and body["count"] == 3
        assert all("****" in r["reporter_phone"] for r in body["rows"] if r["reporter_phone"])
        # Revoked while a page is read: refused, and the refusal logged, not the reading.
        calls.clear()

        def revoking(d: dict[str, Any]) -> Any:
            read = real(d)

            def run(conn: sa.Connection, d: dict[str, Any], q: Any, now: Any) -> Any:
                city.db.write_sync(lambda c: c.execute(data_grants.update().where(
                    data_grants.c.id == grant_id).values(revoked_at=now)))
                return read(conn, d, q, now)

            return run

        monkeypatch.setattr(sources, "reader", revoking)
        refused = client.get("/api/v1/data/city-cases", headers=zhujian)
        assert refused.status_code == 403 and refused.json()["details"]["reason"] == "revoked"
    outcomes = city.db.read_sync(lambda c: [r.outcome for r in c.execute(
        sa.select(data_accesses.c.outcome).order_by(data_accesses.c.id))])
    assert outcomes == ["ok", "revoked"]


def test_requests_and_grants_are_listed_page_by_page_with_their_real_total(catalogued: City) -> None:
    city = catalogued
    with make_client(city) as client:
        made = [_granted(client, city, {"dataset": "city-cases", "purpose": f"道路安全巡查 {i}", "fields": ["case_id"],
                                        "days": 30}, {"decision": "grant", "reasons": "符合条件"})[1] for i in range(3)]
        zhujian = _staff(city, "zhujian")
        for path, key in (("/api/v1/data-requests", "requests"), ("/api/v1/data-grants", "grants")):
            first = client.get(path, params={"limit": 2}, headers=zhujian).json()
            rest = client.get(path, params={"limit": 2, "offset": 2}, headers=zhujian).json()
            assert (first["count"], len(first[key]), rest["count"], len(rest[key])) == (3, 2, 3, 1), path
            assert len({item["id"] for item in first[key] + rest[key]}) == 3
        grants = client.get("/api/v1/data-grants", params={"limit": 2, "offset": 1}, headers=zhujian).json()["grants"]
        assert [g["id"] for g in grants] == sorted(made, reverse=True)[1:]
        assert client.get("/api/v1/data-grants", params={"limit": 0}, headers=zhujian).status_code == 400
