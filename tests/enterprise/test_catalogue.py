"""Importing policy documents: what a document may not do to the policies already there, and malformed
documents refused with a 400 that says why."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from wecity.core.errors import ValidationFailed
from wecity.enterprise.catalogue import import_policies, load_all

from ..conftest import City
from .conftest import RENT


def _policy(code: str, rule: str) -> dict[str, Any]:
    p = copy.deepcopy(RENT)
    p["code"] = code
    p["conditions"] = [{"id": "c", "clause": "1", "text_zh": "条件", "text_en": "Condition", "rule": rule}]
    return p


def _loan(kind: str) -> list[dict[str, str]]:
    return [{"name": "loan_balance", "type": kind, "label_zh": "贷款余额", "label_en": "Loan balance"}]


def test_a_document_cannot_change_the_type_of_a_declared_variable(policy_city: City) -> None:
    """Another document redeclaring loan_balance as text would make every policy reading it fail to compile."""
    city = policy_city
    now = city.clock.now()
    first = {"format": "wecity-policies/1", "variables": _loan("number"), "policies": [_policy("t-loan", "loan_balance > 100")]}
    city.db.write_sync(lambda c: import_policies(c, first, now=now, actor="t"))
    retyped = {"format": "wecity-policies/1", "variables": _loan("text"), "policies": [_policy("t-other", "employees > 1")]}
    with pytest.raises(ValidationFailed) as refused:
        city.db.write_sync(lambda c: import_policies(c, retyped, now=now, actor="t"))
    assert "loan_balance is a number" in refused.value.message and "loan_balance" in refused.value.message_zh
    assert {p.code for p in city.db.read_sync(lambda c: load_all(c, now.date()))} == {"t-wengang", "t-rent", "t-loan"}
    # Declared again with its own type: fine.
    same = {**retyped, "variables": _loan("number")}
    assert city.db.write_sync(lambda c: import_policies(c, same, now=now, actor="t"))["added"] == 1


def _document(**changes: Any) -> dict[str, Any]:
    return {"format": "wecity-policies/1", "policies": [{**copy.deepcopy(RENT), **changes}]}


@pytest.mark.parametrize("document", [
    _document(parameters={"r": []}),                                     # dated, with no value
    _document(parameters={"r": [0.3]}),                                  # dated, not {"from", "value"}
    {"format": "wecity-policies/1", "policies": [{**RENT, "code": ["t-rent"]}]},  # a code that is a list
    {"format": "wecity-policies/1", "policies": ["t-rent"]},
    _document(benefit={**RENT["benefit"], "amount": "rent_paid * " + "9" * 400}),   # beyond a float
    _document(benefit={**RENT["benefit"], "amount": "rent_paid * 1e400"}),
    _document(benefit={**RENT["benefit"], "amount": "+".join(["1"] * 995)}),      # chained: deep in the tree
    _document(conditions=[{**RENT["conditions"][0], "rule": "not " * 498 + "True"}]),
    _document(benefit={**RENT["benefit"], "amount": "-" * 600 + "rent_paid"}),
    # Before its first date (2026-03-01) the rate would have the later value: refused.
    _document(parameters={"r": [{"from": "2026-03-01", "value": 0.3}]}),
], ids=["empty-dated", "dated-not-objects", "list-code", "policy-not-object", "huge-literal", "infinite-literal",
        "chained", "nested-not", "nested-minus", "first-date-after-valid-from"])
def test_a_malformed_document_is_a_400_that_says_why(policy_city: City, document: dict[str, Any]) -> None:
    from ..conftest import make_client
    from .test_api import staff

    city = policy_city
    with pytest.raises(ValidationFailed):
        city.db.write_sync(lambda c: import_policies(c, document, now=city.clock.now(), actor="t"))
    with make_client(city) as api:
        answer = api.post("/api/v1/policies", json=document, headers=staff(city, "admin"))
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] in ("enterprise.bad_policy", "enterprise.bad_rule")


def test_a_dated_parameter_beginning_with_the_policy_is_taken(policy_city: City) -> None:
    from datetime import date

    from wecity.enterprise.policies import check_document, compile_policy

    dated = {**copy.deepcopy(RENT), "parameters": {"r": [{"from": "2026-06-01", "value": 0.4},
                                                          {"from": "2026-01-01", "value": 0.3}]},
             "benefit": {**RENT["benefit"], "amount": "rent_paid * r"}}
    check_document({"format": "wecity-policies/1", "policies": [dated]})
    assert compile_policy(dated, version=1, on=date(2026, 3, 1)).parameters == {"r": 0.3}
    assert compile_policy(dated, version=1, on=date(2026, 7, 1)).parameters == {"r": 0.4}
    # Refused at import only: a policy stored before still compiles, so that one cannot stop the others.
    late = {**dated, "parameters": {"r": [{"from": "2026-06-01", "value": 0.4}]}}
    with pytest.raises(ValidationFailed):
        check_document({"format": "wecity-policies/1", "policies": [late]})
    assert compile_policy(late, version=1, on=date(2026, 3, 1)).parameters == {"r": 0.4}
