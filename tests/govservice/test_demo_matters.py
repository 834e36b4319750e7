"""Consistency of the demo catalogue of government service matters (demo-matters.json)."""

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

PATH = Path(__file__).parents[2] / "src/wecity/govservice/data/demo-matters.json"

UNCOUNTED = {"hearing", "inspection", "expert_review", "public_notice"}
APPLICANTS = {"citizen", "enterprise"}
ONLINE = {"full_online", "at_most_once"}
PROFILE_FIELDS = {"name", "id_number", "phone", "address", "gender", "birth_date",
                  "enterprise_name", "credit_code", "legal_representative", "registered_address"}
WALLET_ONLY = {"resident_id"}  # held by every demo citizen, issued by no matter


@pytest.fixture(scope="module")
def doc():
    return json.loads(PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def matters(doc):
    return doc["matters"]


@pytest.fixture(scope="module")
def issued(matters):
    """Certificate type -> the matter that issues it."""
    out = {}
    for m in matters:
        if m["certificate"] is not None:
            assert m["certificate"]["type"] not in out, m["certificate"]["type"]
            out[m["certificate"]["type"]] = m
    return out


def _props(m):
    """(name, schema) of every property of a matter's form, array items included."""
    for key, prop in m["form"]["properties"].items():
        yield key, prop
        if prop.get("type") == "array":
            yield key + "[]", prop["items"]


def test_header(doc, matters):
    assert doc["format"] == "wecity-matters/1"
    assert doc["source"].strip()
    assert len(matters) >= 12
    codes = [m["code"] for m in matters]
    assert len(codes) == len(set(codes))
    dept_codes = [d["code"] for d in doc["departments"]]
    assert len(dept_codes) == len(set(dept_codes))
    for d in doc["departments"]:
        assert d["name_zh"].strip() and d["name_en"].strip()


def test_departments_declared(doc, matters):
    declared = {d["code"] for d in doc["departments"]}
    for m in matters:
        assert m["department"] in declared, m["code"]
        assert set(m["reviewers"]) <= declared, m["code"]
        assert m["department"] not in m["reviewers"], m["code"]


def test_matter_fields(matters):
    for m in matters:
        c = m["code"]
        assert c.startswith("CS-"), c
        for k in ("name_zh", "name_en", "legal_basis_zh", "legal_basis_en"):
            assert m[k].strip(), (c, k)
        assert isinstance(m["legal_limit_days"], int) and m["legal_limit_days"] >= 0, c
        assert isinstance(m["promised_limit_days"], int), c
        assert 0 <= m["promised_limit_days"] <= m["legal_limit_days"], c
        assert set(m["uncounted_steps"]) <= UNCOUNTED, c
        assert m["applicants"] and set(m["applicants"]) <= APPLICANTS, c
        assert m["online_level"] in ONLINE, c
        for fee in m["fees"]:
            assert fee["name_zh"] and fee["name_en"] and fee["amount_cny"] >= 0, c
        assert m["process"] in {"standard", "simple"}, c
        if m["process"] == "standard":
            assert m["reviewers"], c
        else:
            assert m["reviewers"] == [], c
        cert = m["certificate"]
        if cert is not None:
            assert cert["type"] and cert["name_zh"] and cert["name_en"], c
            assert cert["valid_days"] is None or (isinstance(cert["valid_days"], int) and cert["valid_days"] > 0), c


def test_materials(matters, issued):
    for m in matters:
        codes = [x["code"] for x in m["materials"]]
        assert codes and len(codes) == len(set(codes)), m["code"]
        for x in m["materials"]:
            assert x["name_zh"] and x["name_en"] and isinstance(x["required"], bool), (m["code"], x["code"])
            rb = x["replaced_by"]
            if rb is None or rb == "profile":
                continue
            kind, _, ctype = rb.partition(":")
            assert kind == "certificate", (m["code"], rb)
            assert ctype in WALLET_ONLY or ctype in issued, (m["code"], rb)


def test_identity_documents_use_resident_id(matters):
    assert any(x["replaced_by"] == "certificate:resident_id" for m in matters for x in m["materials"])


def test_forms_are_valid_schemas(matters):
    for m in matters:
        f = m["form"]
        Draft202012Validator.check_schema(f)
        assert f["type"] == "object", m["code"]
        assert set(f["required"]) <= set(f["properties"]), m["code"]
        assert 4 <= len(f["properties"]) <= 10, m["code"]


def test_form_properties(matters):
    for m in matters:
        for key, p in m["form"]["properties"].items():
            assert p.get("title") and p.get("x-title-en"), (m["code"], key)
        for key, p in _props(m):
            where = (m["code"], key)
            assert "type" in p, where
            if p["type"] == "string":
                assert isinstance(p.get("maxLength"), int), where
            if p["type"] in ("number", "integer"):
                assert "minimum" in p and "maximum" in p, where
            if "enum" in p:
                assert len(p.get("x-enum-en", [])) == len(p["enum"]), where


def test_phone_fields_have_pattern(matters):
    for m in matters:
        for key, p in m["form"]["properties"].items():
            if "phone" in key:
                assert p.get("pattern") == r"^1[3-9]\d{9}$", (m["code"], key)


def test_prefill(matters, issued):
    for m in matters:
        for key, p in m["form"]["properties"].items():
            pre = p.get("x-prefill")
            if pre is None:
                continue
            where = (m["code"], key)
            if pre["source"] == "profile":
                assert pre["field"] in PROFILE_FIELDS, where
                continue
            assert pre["source"] == "certificate", where
            assert pre["type"] in WALLET_ONLY or pre["type"] in issued, where
            if pre["type"] in issued:
                # certificate fields are copied from the issuing application's form data
                assert pre["field"] in issued[pre["type"]]["form"]["properties"], where
                assert issued[pre["type"]]["code"] != m["code"], where


def test_once_only_reuse(matters):
    """At least two matters pre-fill two or more fields from a certificate issued by another matter."""
    rich = [m["code"] for m in matters
            if sum(1 for p in m["form"]["properties"].values()
                   if p.get("x-prefill", {}).get("source") == "certificate") >= 2]
    assert len(rich) >= 2, rich


def test_demo_forms_accept_a_sample(matters):
    """Each form accepts an object built from its own constraints, so the schemas are usable, not only valid."""
    samples = {"string": "x", "number": 1, "integer": 1, "boolean": True}
    for m in matters:
        obj = {}
        for key, p in m["form"]["properties"].items():
            if "enum" in p:
                obj[key] = p["enum"][0]
            elif p["type"] == "array":
                obj[key] = [p["items"]["enum"][0]]
            elif p.get("pattern") == r"^1[3-9]\d{9}$":
                obj[key] = "13800000000"
            elif p.get("pattern") == r"^\d{17}[\dXx]$":
                obj[key] = "43010219900101001X"
            elif p.get("pattern", "").startswith("^[A-HJ-NPR-Z0-9]{17}"):
                obj[key] = "LSVAA4187E2123456"
            elif p.get("pattern"):
                obj[key] = "91430100MA4L000000"
            elif p.get("format") == "date":
                obj[key] = "2026-12-04"
            elif p["type"] in ("number", "integer"):
                obj[key] = max(p["minimum"], 1)
            else:
                obj[key] = samples[p["type"]]
        errors = list(Draft202012Validator(m["form"]).iter_errors(obj))
        assert not errors, (m["code"], [e.message for e in errors])
