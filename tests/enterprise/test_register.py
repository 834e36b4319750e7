"""The register's writes: an import or a profile changes what it carries and nothing else, and a change of
legal representative is on the audit log."""

from __future__ import annotations

from typing import Any

from wecity.enterprise import register

from ..conftest import City

KEPT = ("employees", "revenue", "industry_code", "district", "tax_credit_grade", "registered_on")


def test_an_import_or_a_profile_changes_only_the_columns_it_carries(policy_city: City, firm: dict[str, Any]) -> None:
    city = policy_city
    now = city.clock.now()
    before = {k: firm[k] for k in KEPT}
    assert all(v is not None for v in before.values())
    csv = f"credit_code,name,layoff_rate\n{firm['credit_code']},{firm['name']},0.01\n".encode()
    assert city.db.write_sync(lambda c: register.import_table(c, csv, "f.csv", now=now)) == \
        {"added": 0, "changed": 1, "unchanged": 0}
    after = city.db.read_sync(lambda c: register.get_enterprise(c, firm["id"]))
    assert {k: after[k] for k in KEPT} == before and after["facts"]["layoff_rate"] == 0.01
    # POST /enterprises with the name alone (renamed): the rest stays.
    renamed = {"credit_code": firm["credit_code"], "name": "长沙数智科技有限公司"}
    assert city.db.write_sync(lambda c: register.save_enterprise(c, renamed, now=now)) == (firm["id"], True)
    after = city.db.read_sync(lambda c: register.get_enterprise(c, firm["id"]))
    assert {k: after[k] for k in KEPT} == before and after["name"] == "长沙数智科技有限公司"
    # A column the file carries empty is cleared: the file says it is not known.
    cleared = f"credit_code,name,employees\n{firm['credit_code']},{firm['name']},\n".encode()
    city.db.write_sync(lambda c: register.import_table(c, cleared, "f.csv", now=now))
    assert city.db.read_sync(lambda c: register.get_enterprise(c, firm["id"]))["employees"] is None
