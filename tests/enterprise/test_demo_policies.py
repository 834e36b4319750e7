"""The demo support policies (wecity/enterprise/data/demo-policies.json) at the boundaries of every rule, and
their application matters (policy-matters.json).

Each policy has a base enterprise that is eligible, with its amount worked out by hand, and a table of
(condition, variable, a value just inside, a value just outside, other changes the row needs): inside stays
eligible, outside is ineligible by that condition, and the variable missing (None) makes the outcome unknown
naming it."""

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from wecity.enterprise import policies, variables
from wecity.govservice.catalogue import check_matter

DATA = Path(__file__).parents[2] / "src/wecity/enterprise/data"
DOC = json.loads((DATA / "demo-policies.json").read_text(encoding="utf-8"))
MATTERS = json.loads((DATA / "policy-matters.json").read_text(encoding="utf-8"))
VARIABLES = variables.declared(DOC.get("variables"))
BY_CODE = {p["code"]: p for p in DOC["policies"]}
ON = date(2026, 12, 4)
IN_2022 = date(2022, 6, 1)  # when the 2022 job-creation grant was in force
NO_VIOLATION = ("no_violation", "serious_violation", False, True, {})
CHANGSHA, ZHUZHOU = "430104", "430202"


def fs(*items):
    return frozenset(items)


# code: (day, base variables, amount, boundary rows, [(changes, amount; None = unknown)])
CASES = {
    "wengang-fanhuan": (ON, dict(
        unemployment_insurance_months=24.0, layoff_rate=0.03, employees=50.0, serious_violation=False,
        size_class="small", unemployment_insurance_paid=50000.0), 30000.0, [   # 50000 * 60%
        ("insured", "unemployment_insurance_months", 12.0, 11.0, {}),
        ("layoff", "layoff_rate", 0.055, 0.056, {}),
        ("layoff", "layoff_rate", 0.2, 0.201, {"employees": 30.0}),
        ("layoff", "employees", 30.0, 31.0, {"layoff_rate": 0.2}),
        NO_VIOLATION,
    ], [({"size_class": "large"}, 15000.0), ({"size_class": "micro"}, 30000.0),
        ({"unemployment_insurance_paid": 12345.67}, 7407.4), ({"size_class": None}, None)]),
    "gaoqi-rending-jiangli": (ON, dict(
        certificates=fs("high_tech"), high_tech_certified_year=2025.0, high_tech_first_certified=True,
        district=CHANGSHA, serious_violation=False), 200000.0, [
        ("certified", "certificates", fs("high_tech", "little_giant"), fs("specialised_sme"), {}),
        ("certified_year", "high_tech_certified_year", 2025.0, 2024.0, {}),
        ("certified_year", "high_tech_certified_year", 2025.0, 2026.0, {}),
        ("in_changsha", "district", "430182", ZHUZHOU, {}),
        NO_VIOLATION,
    ], [({"high_tech_first_certified": False}, 100000.0), ({"high_tech_first_certified": None}, None)]),
    "xiaowei-fangzu-butie": (ON, dict(
        size_class="small", age_years=2.0, rent_paid=120000.0, serious_violation=False), 36000.0, [  # 30%
        ("small_micro", "size_class", "micro", "medium", {}),
        ("young", "age_years", 3.0, 4.0, {}),
        ("rent", "rent_paid", 0.01, 0.0, {}),
        NO_VIOLATION,
    ], [({"rent_paid": 166666.0}, 49999.8), ({"rent_paid": 200000.0}, 50000.0), ({"rent_paid": 1e7}, 50000.0)]),
    "xiaojuren-jiangli": (ON, dict(
        certificates=fs("little_giant", "specialised_sme"), little_giant_first_certified=True, size_class="medium",
        serious_violation=False), 500000.0, [
        ("little_giant", "certificates", fs("little_giant"), fs("specialised_sme", "high_tech"), {}),
        ("first_time", "little_giant_first_certified", True, False, {}),
        ("sme", "size_class", "medium", "large", {}),
        NO_VIOLATION,
    ], []),
    "yanfa-zengliang-jiangbu": (ON, dict(
        rd_deduction_claimed=True, rd_expense=1100.0, rd_expense_growth=0.1, serious_violation=False),
        100000.0, [  # 1100 万元 is 10% over 1000 万元: 100 万元 more, 10% of it
        ("deduction", "rd_deduction_claimed", True, False, {}),
        ("growth", "rd_expense_growth", 0.001, 0.0, {}),
        ("growth", "rd_expense_growth", 0.001, -0.2, {}),
        NO_VIOLATION,
    ], [({"rd_expense": 300.0, "rd_expense_growth": 0.5}, 100000.0),  # 200 -> 300 万元
        ({"rd_expense": 220000.0, "rd_expense_growth": 1.0}, 10000000.0),  # 11 亿元 more: the cap
        ({"rd_expense": None}, None)]),
    "shougui-jiangli": (ON, dict(first_above_scale=True, industry_section="C", district="430121"), 100000.0, [
        ("first_above_scale", "first_above_scale", True, False, {}),
        ("industrial", "industry_section", "B", "A", {}),
        ("industrial", "industry_section", "D", "E", {}),
        ("in_county", "district", "430121", CHANGSHA, {}),
    ], []),
    "kuogang-buzhu": (IN_2022, dict(new_hires_graduates=3.0, unemployment_insurance_months=12.0), 4500.0, [
        ("graduates", "new_hires_graduates", 1.0, 0.0, {}),
        ("insured", "unemployment_insurance_months", 1.0, 0.0, {}),
    ], [({"new_hires_graduates": 1.0}, 1500.0)]),
    "chukou-jiangli": (ON, dict(export_value=3000.0, export_growth=0.05, serious_violation=False), 60000.0, [
        ("exports", "export_value", 500.0, 499.99, {}),
        ("growth", "export_growth", 0.0, -0.01, {}),
        NO_VIOLATION,
    ], [({"export_value": 500.0}, 10000.0), ({"export_value": 25000.0}, 500000.0),
        ({"export_value": 30000.0}, 500000.0)]),
    "faming-zhuanli-zizhu": (ON, dict(patents_invention_granted=4.0, district="430103"), 12000.0, [
        ("granted", "patents_invention_granted", 1.0, 0.0, {}),
        ("in_changsha", "district", "430121", ZHUZHOU, {}),
    ], [({"patents_invention_granted": 20.0}, 60000.0), ({"patents_invention_granted": 30.0}, 60000.0)]),
    "nashui-xinyong-a": (ON, dict(tax_credit_grade="A", serious_violation=False), None, [
        ("grade_a", "tax_credit_grade", "A", "B", {}),
        ("grade_a", "tax_credit_grade", "A", "M", {}),
        NO_VIOLATION,
    ], []),
    "chuangye-daikuan-tiexi": (ON, dict(
        size_class="small", employees=40.0, new_hires_qualifying_ratio=0.2, loan_balance=2000000.0,
        loan_rate=0.04), 30000.0, [  # 200 万元 * LPR 3.0% * 50%
        ("small_micro", "size_class", "micro", "medium", {}),
        ("hires", "new_hires_qualifying_ratio", 0.15, 0.149, {}),
        ("hires", "new_hires_qualifying_ratio", 0.08, 0.079, {"employees": 101.0}),
        ("hires", "employees", 101.0, 100.0, {"new_hires_qualifying_ratio": 0.1}),
        ("loan", "loan_balance", 3000000.0, 3000000.01, {}),
        ("loan", "loan_balance", 0.01, 0.0, {}),
        ("rate", "loan_rate", 0.045, 0.0451, {}),   # LPR 3.0% + 150 bp
    ], [({"loan_balance": 3000000.0}, 45000.0), ({"loan_balance": 100000.0}, 1500.0)]),
    "yanfa-jiakou": (ON, dict(rd_expense=500.0, industry_section="I"), 5000000.0, [  # 500 万元 * 100%
        ("rd", "rd_expense", 0.01, 0.0, {}),
        ("industry", "industry_section", "G", "F", {}),
        ("industry", "industry_section", "C", "H", {}),
        ("industry", "industry_section", "J", "K", {}),
        ("industry", "industry_section", "M", "L", {}),
    ], []),
}


def compiled(code, on=None):
    return policies.compile_policy(BY_CODE[code], version=1, on=on or CASES[code][0], variables=VARIABLES)


def env(code, changes=None):
    """The base enterprise of a policy as `register.variables_of` gives it: every variable, None if unknown."""
    out = {name: None for name in VARIABLES}
    out.update(certificates=frozenset(), tags=frozenset())
    out.update(CASES[code][1])
    out.update(changes or {})
    return out


def evaluate(code, changes=None, on=None):
    return policies.evaluate(compiled(code, on), env(code, changes))


def _shown(value):
    return "|".join(sorted(value)) if isinstance(value, frozenset) else repr(value)


ROWS = [pytest.param(code, cid, var, inside, outside, extra,
                     id=f"{code}:{cid}:{var}={_shown(inside)}|{_shown(outside)}" + "".join(
                         f",{k}={_shown(v)}" for k, v in extra.items()))
        for code, (_, _, _, rows, _) in CASES.items() for cid, var, inside, outside, extra in rows]
AMOUNTS = [pytest.param(code, changes, amount, id=f"{code}:" + ",".join(f"{k}={_shown(v)}" for k, v in changes.items()))
           for code, (_, _, _, _, amounts) in CASES.items() for changes, amount in amounts]


def test_document_checks():
    known, checked = policies.check_document(DOC)
    assert len(checked) == 12
    assert {"loan_balance", "loan_rate", "high_tech_first_certified"} <= set(known)
    assert sum(bool(p.get("automatic")) for p in checked) >= 5
    assert "modelled on" in DOC["source"].lower()


def test_every_policy_and_condition_is_tabled():
    assert set(CASES) == set(BY_CODE)
    for code, (_, _, _, rows, _) in CASES.items():
        assert {c["id"] for c in BY_CODE[code]["conditions"]} == {row[0] for row in rows}, code


def test_policies_cite_their_texts():
    for p in DOC["policies"]:
        assert p["basis"]["title_zh"] and p["basis"]["title_en"] and p["basis"]["number"], p["code"]
        for c in p["conditions"]:
            assert c["clause"] and c["text_zh"] and c["text_en"] and c["rule"], (p["code"], c["id"])


@pytest.mark.parametrize("code", list(CASES))
def test_base_is_eligible(code):
    result = evaluate(code)
    assert (result.outcome, result.amount, result.failed, result.missing) == \
        (policies.ELIGIBLE, CASES[code][2], None, ())


@pytest.mark.parametrize(("code", "cid", "var", "inside", "outside", "extra"), ROWS)
def test_just_inside_is_eligible(code, cid, var, inside, outside, extra):
    assert evaluate(code, {**extra, var: inside}).outcome == policies.ELIGIBLE


@pytest.mark.parametrize(("code", "cid", "var", "inside", "outside", "extra"), ROWS)
def test_just_outside_fails_the_condition(code, cid, var, inside, outside, extra):
    result = evaluate(code, {**extra, var: outside})
    assert (result.outcome, result.failed, result.amount) == (policies.INELIGIBLE, cid, None)


@pytest.mark.parametrize(("code", "cid", "var", "inside", "outside", "extra"), ROWS)
def test_missing_is_unknown(code, cid, var, inside, outside, extra):
    result = evaluate(code, {**extra, var: None})
    assert (result.outcome, result.failed) == (policies.UNKNOWN, None)
    assert var in result.missing
    assert next(t for t in result.trace if t["id"] == cid)["result"] == "unknown"


@pytest.mark.parametrize(("code", "changes", "amount"), AMOUNTS)
def test_amount(code, changes, amount):
    result = evaluate(code, changes)
    if amount is None:
        assert result.outcome == policies.UNKNOWN
        assert set(result.missing) == {k for k, v in changes.items() if v is None}
    else:
        assert (result.outcome, result.amount) == (policies.ELIGIBLE, amount)


def test_expired_policy_is_ineligible_in_force():
    result = evaluate("kuogang-buzhu", on=ON)
    assert (result.outcome, result.failed) == (policies.INELIGIBLE, policies.IN_FORCE)
    assert result.trace == [{"id": "in_force", "clause": "", "result": "false", "values": {"date": "2026-12-04"}}]


@pytest.mark.parametrize(("day", "lpr", "amount"), [
    (date(2024, 7, 21), 0.0345, 34500.0), (date(2024, 7, 22), 0.0335, 33500.0), (date(2024, 10, 21), 0.031, 31000.0),
    (date(2025, 5, 19), 0.031, 31000.0), (date(2025, 5, 20), 0.03, 30000.0), (ON, 0.03, 30000.0)])
def test_loan_subsidy_follows_the_lpr_of_the_day(day, lpr, amount):
    policy = compiled("chuangye-daikuan-tiexi", day)
    assert policy.parameters["lpr"] == lpr
    assert policies.evaluate(policy, env("chuangye-daikuan-tiexi")).amount == amount
    # the rate cap moves with it: LPR + 150 bp
    assert policies.evaluate(policy, env("chuangye-daikuan-tiexi", {"loan_rate": lpr + 0.015})).outcome == \
        policies.ELIGIBLE
    assert policies.evaluate(policy, env("chuangye-daikuan-tiexi", {"loan_rate": lpr + 0.0151})).failed == "rate"


def test_one_matter_per_policy():
    departments = {d["code"] for d in MATTERS["departments"]}
    by_code = {m["code"]: m for m in MATTERS["matters"]}
    assert MATTERS["format"] == "wecity-matters/1"
    assert len(by_code) == len(MATTERS["matters"]) == len(DOC["policies"])
    for matter in MATTERS["matters"]:
        check_matter(matter, departments)
    for p in DOC["policies"]:
        matter = by_code[p["matter"]]
        assert (matter["department"], matter["applicants"], matter["process"]) == (p["department"], ["enterprise"], "simple")
        assert matter["certificate"]["type"] == "policy_benefit_" + p["code"].replace("-", "_")
        fields = matter["form"]["properties"]
        assert set(fields) == {"credit_code", "name"} | compiled(p["code"], date.fromisoformat(p["valid_from"])).names
        for name, field in fields.items():
            assert field["x-prefill"] == {"source": "enterprise", "field": name}, (p["code"], name)
            if name in VARIABLES and VARIABLES[name].type == "number":
                assert field["type"] == "number"


def _columns(envs):
    """The enterprises as the vector evaluator reads them (as `register.columns_of` makes them)."""
    out = {}
    for name, variable in VARIABLES.items():
        values = [e.get(name) for e in envs]
        known = np.array([v is not None for v in values])
        if variable.type == "number":
            array = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif variable.type == "boolean":
            array = np.array([bool(v) for v in values])
        else:
            array = np.empty(len(values), dtype=object)
            array[:] = values
        out[name] = (array, known)
    return out


@pytest.mark.parametrize("code", list(CASES))
def test_whole_register_evaluation_agrees(code):
    """Every enterprise of the tables above, evaluated at once, as one by one."""
    _, _, _, rows, amounts = CASES[code]
    envs = [env(code)] + [env(code, {**extra, var: value}) for _, var, inside, outside, extra in rows
                          for value in (inside, outside, None)] + [env(code, changes) for changes, _ in amounts]
    policy = compiled(code)
    whole = policies.evaluate_all(policy, _columns(envs), len(envs))
    conditions = [c.id for c in policy.conditions]
    for i, one in enumerate(policies.evaluate(policy, e) for e in envs):
        assert policies.OUTCOME_CODES[int(whole.codes[i])] == one.outcome, (i, envs[i])
        assert (conditions[whole.failed[i]] if whole.failed[i] >= 0 else None) == one.failed, (i, envs[i])
        if one.amount is not None:
            assert policies.money(whole.amounts[i]) == one.amount, (i, envs[i])


def test_an_undefined_condition_is_unknown_in_both_evaluators():
    """A condition that divides by zero is neither met nor failed: unknown, with nothing named missing, one
    by one as over the whole register (one by one it once counted as met, and the grant re-checks that way)."""
    doc = {**BY_CODE["wengang-fanhuan"], "conditions": [
        {"id": "per_head", "clause": "一", "text_zh": "人均", "text_en": "Per head",
         "rule": "unemployment_insurance_paid / employees >= 100"},
        {"id": "insured", "clause": "二", "text_zh": "参保", "text_en": "Insured", "rule": "unemployment_insurance_months >= 12"}],
        "benefit": {**BY_CODE["wengang-fanhuan"]["benefit"], "amount": "unemployment_insurance_paid * 0.5"}}
    policy = policies.compile_policy(doc, version=1, on=ON, variables=VARIABLES)
    base = {"unemployment_insurance_paid": 50000.0, "unemployment_insurance_months": 24.0}
    envs = [{**base, "employees": 0.0}, {**base, "employees": 10.0}, {**base, "employees": 0.0,
                                                                        "unemployment_insurance_months": 6.0}]
    whole = policies.evaluate_all(policy, _columns(envs), len(envs))
    ones = [policies.evaluate(policy, e) for e in envs]
    assert [o.outcome for o in ones] == ["unknown", "eligible", "ineligible"]
    assert ones[0].missing == () and ones[0].amount is None
    assert [policies.OUTCOME_CODES[int(c)] for c in whole.codes] == [o.outcome for o in ones]
    assert whole.missing(0) == ()


@pytest.mark.parametrize("value, fen", [(100.05 * 0.3, 30.02), (0.125, 0.13), (2.675, 2.68), (1.005, 1.01),
                                        (31200.0, 31200.0), (12345.67 * 0.6, 7407.4), (-3.2, 0.0),
                                        (1_000_000.004999, 1_000_000.0)])
def test_amounts_are_rounded_half_up_to_the_fen(value, fen):
    assert policies.money(value) == fen
