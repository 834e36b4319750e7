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


def test_a_change_of_legal_representative_is_audited(policy_city: City, firm: dict[str, Any]) -> None:
    import sqlalchemy as sa

    from wecity.identity.applicants import find_citizen
    from wecity.identity.models import audit_log

    city = policy_city
    now = city.clock.now()
    former = city.db.read_sync(lambda c: find_citizen(c, "13800000001"))
    assert former is not None

    def entries(c: sa.Connection) -> list[Any]:
        return c.execute(sa.select(audit_log.c.actor, audit_log.c.detail).where(
            audit_log.c.action == "enterprise.legal_representative",
            audit_log.c.target == f"enterprise:{firm['credit_code']}").order_by(audit_log.c.id)).all()

    named = city.db.read_sync(entries)  # named when the enterprise was registered
    assert [r.detail for r in named] == [{"old": [], "new": former.id}]
    # The same one again: no change, nothing logged.
    city.db.write_sync(lambda c: register.update_facts(c, firm["id"], {"legal_representative_phone": "13800000001"},
                                                       now=now, actor="user:supervisor"))
    assert len(city.db.read_sync(entries)) == 1
    city.db.write_sync(lambda c: register.update_facts(c, firm["id"], {"legal_representative_phone": "13900001234"},
                                                       now=now, actor="user:supervisor"))
    successor = city.db.read_sync(lambda c: find_citizen(c, "13900001234"))
    assert successor is not None
    last = city.db.read_sync(entries)[-1]
    assert (last.actor, last.detail) == ("user:supervisor", {"old": [former.id], "new": successor.id})


def test_a_refused_value_is_explained_in_chinese_too() -> None:
    import re

    import pytest

    from wecity.core.errors import ValidationFailed
    from wecity.enterprise.policies import check_document
    from wecity.enterprise.variables import declared

    data = {"credit_code": "x", "name": "甲", "employees": "abc", "revenue": -1, "registered_on": "yesterday",
            "facts": {"serious_violation": "perhaps", "layoff_rate": "1e999"}}
    _, _, errors = register.check_profile(data, districts=set(), variables=declared())
    by_field = {field: zh for field, _, zh in errors}
    for field in ("employees", "revenue", "registered_on", "serious_violation", "layoff_rate"):
        reason = by_field[field].split("无效：")[-1]
        assert reason and not re.search(r"[a-z]", reason), (field, by_field[field])  # YYYY-MM-DD aside
    with pytest.raises(ValidationFailed) as e:
        check_document({"format": "wecity-policies/1", "variables": [{"name": "x"}], "policies": []})
    assert e.value.message_zh == "variables：每个变量应为含 name、type、label_zh、label_en 的对象"
    with pytest.raises(ValidationFailed) as e:
        check_document({"format": "wecity-policies/1", "policies": [],
                        "variables": [{"name": "employees", "type": "text", "label_zh": "人", "label_en": "P"}]})
    assert e.value.message_zh == "variables：不得改变已有变量的类型"
