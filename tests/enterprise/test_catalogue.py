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
