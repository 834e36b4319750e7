"""A form's numbers are numbers a certificate can carry: NaN and infinity (which pass every minimum and
maximum) and integers past 2^53 - 1 (which no signed document holds) are refused when the form is checked,
through the API and the page alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from wecity.core.errors import ValidationFailed
from wecity.govservice import applications as apply
from wecity.govservice.forms import MAX_SAFE_INTEGER, check_form, form_errors

from ..conftest import make_client
from ..web.conftest import csrf_token
from .conftest import SIGN_MATTER, Services
from .test_api import citizen_headers
from .test_flow import licensed, view, write
from .test_pages import EN, _as_citizen

FORM = {"type": "object", "properties": {
    "width": {"type": "number", "title": "宽度", "x-title-en": "Width", "minimum": 0.5, "maximum": 30},
    "count": {"type": "integer", "title": "数量", "x-title-en": "Count"},
    "sizes": {"type": "array", "title": "尺寸", "items": {"type": "number"}}}}


@pytest.mark.parametrize("data", [{"width": float("nan")}, {"width": float("inf")}, {"width": -float("inf")},
                                  {"sizes": [1.0, float("nan")]}])
def test_a_number_that_is_not_one_is_refused(data: dict[str, object]) -> None:
    errors = form_errors(FORM, data)
    assert [e.field for e in errors] == list(data) and "not a number" in errors[0].message_en
    with pytest.raises(ValidationFailed):
        check_form(FORM, data)


def test_an_integer_past_2_53_is_refused_and_up_to_it_taken() -> None:
    assert form_errors(FORM, {"count": MAX_SAFE_INTEGER, "width": 2}) == []
    for big in (MAX_SAFE_INTEGER + 1, -(MAX_SAFE_INTEGER + 1), 10**30):
        assert [e.field for e in form_errors(FORM, {"count": big})] == ["count"]
    assert [e.field for e in form_errors(FORM, {"sizes": [2**60]})] == ["sizes"]
    # A large negative one is told the range, not "at most".
    (negative,) = form_errors(FORM, {"count": -(10**30)})
    assert negative.message_en.endswith(f"between −{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}")
    assert negative.message_zh.endswith(f"应在 −{MAX_SAFE_INTEGER} 至 {MAX_SAFE_INTEGER} 之间")


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with make_client(services.city) as c:
        yield c


def test_nan_through_the_api_and_the_page_is_a_form_error_not_a_saved_answer(client: TestClient,
                                                                               services: Services) -> None:
    s = services
    assert SIGN_MATTER["form"]["properties"]["width_m"]["type"] == "number"
    licensed(s)
    app_id = write(s, lambda c: apply.start_application(c, citizen=s.citizen, matter_code="T-SIGN",
                                                         now=s.city.clock.now()))
    me = {**citizen_headers(s, "13912345678"), "Content-Type": "application/json"}
    for raw in (b"NaN", b"Infinity", b"1e400", b"12345678901234567890"):
        r = client.patch(f"/api/v1/applications/{app_id}", headers=me,
                         content=b'{"form_data": {"address": "x", "width_m": ' + raw + b"}}")
        assert r.status_code == 400, (raw, r.text)
        assert r.json()["code"] == "govservice.form_invalid"
    assert "width_m" not in view(s, app_id)["form_data"]
    _as_citizen(client, s, "13912345678")
    token = csrf_token(client.get(f"/services/applications/{app_id}", headers=EN).text)
    for typed in ("nan", "inf", "-Infinity"):
        r = client.post(f"/services/applications/{app_id}/save", headers=EN, follow_redirects=False,
                        data={"csrf_token": token, "f.address": "x", "f.width_m": typed})
        assert r.status_code == 400, typed
    assert "width_m" not in view(s, app_id)["form_data"]


# -- patterns run on RE2, at every depth -------------------------------------------------------------------

SLOW = "^(a+)+$"  # catastrophic for a backtracking engine on "aaa…ab"


def _nested(where: str) -> dict[str, object]:
    inner: dict[str, object] = {"type": "object", "patternProperties": {SLOW: {"type": "string"}}}
    if where == "pattern":
        inner = {"type": "object", "properties": {"code": {"type": "string", "pattern": "(a)\\1"}}}
    return {"type": "object", "properties": {"extra": {"type": "object", "properties": {"inner": inner}}}}


def test_pattern_properties_run_on_re2_on_the_applicant_s_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    def no_backtracking(*args: object, **kwargs: object) -> None:
        raise AssertionError("Python's re ran on an applicant's key")

    form = {"type": "object", "properties": {"extra": {
        "type": "object", "patternProperties": {SLOW: {"type": "integer"}}, "additionalProperties": False}}}
    monkeypatch.setattr(re, "search", no_backtracking)
    key = "a" * 40 + "b"
    errors = form_errors(form, {"extra": {key: 1}})
    assert [e.field for e in errors] == ["extra"]  # not one of the keys allowed: additionalProperties
    assert form_errors(form, {"extra": {"aaaa": 1}}) == []
    assert [e.field for e in form_errors(form, {"extra": {"aaaa": "one"}})] == ["extra"]  # matched: an integer


@pytest.mark.parametrize("where", ["patternProperties", "pattern"])
def test_a_pattern_re2_refuses_is_refused_at_import_however_deep(where: str) -> None:
    from wecity.govservice.forms import check_form_schema

    schema = _nested(where)
    if where == "patternProperties":  # RE2 takes ^(a+)+$; a backreference it refuses
        schema["properties"]["extra"]["properties"]["inner"]["patternProperties"] = {"(a)\\1": {}}  # type: ignore[index]
    with pytest.raises(ValidationFailed) as refused:
        check_form_schema(schema, matter="T-X")
    assert refused.value.code == "govservice.form_schema" and "/properties/extra/properties/inner" in refused.value.message
    check_form_schema(_nested("patternProperties"), matter="T-X")  # RE2 runs ^(a+)+$ in linear time
    # A "pattern" key inside an enum's value is data, not a pattern.
    check_form_schema({"type": "object", "properties": {"k": {"enum": [{"pattern": "(a)\\1"}]}}}, matter="T-X")


def test_patterns_are_found_by_schema_keyword_not_by_a_field_s_name() -> None:
    from wecity.govservice.forms import check_form_schema

    # Fields called pattern, enum, default, const and examples are fields like any other.
    fields = {name: {"type": "string", "title": name} for name in ("pattern", "enum", "default", "const", "examples")}
    check_form_schema({"type": "object", "properties": fields}, matter="T-X")
    # And a pattern RE2 refuses inside such a field, or behind allOf, items or $defs, is refused.
    for place in ("pattern", "enum", "default", "const", "examples"):
        schema = {"type": "object", "properties": {place: {"type": "string", "pattern": "(a)\\1"}}}
        with pytest.raises(ValidationFailed) as refused:
            check_form_schema(schema, matter="T-X")
        assert f"/properties/{place}/pattern" in refused.value.message, place
    for schema in ({"type": "object", "properties": {"k": {"allOf": [{"pattern": "(a)\\1"}]}}},
                   {"type": "object", "properties": {"k": {"type": "array", "items": {"pattern": "(a)\\1"}}}},
                   {"type": "object", "properties": {"k": {"$ref": "#/$defs/code"}}, "$defs": {"code": {"pattern": "(a)\\1"}}}):
        with pytest.raises(ValidationFailed):
            check_form_schema(schema, matter="T-X")
    # A field called unevaluatedProperties is no keyword either.
    check_form_schema({"type": "object", "properties": {"unevaluatedProperties": {"type": "string"}},
                       "patternProperties": {"^x": {"type": "string"}}}, matter="T-X")
