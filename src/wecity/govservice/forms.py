"""Application forms: a matter's form is a JSON Schema (draft 2020-12), checked on the server with the
`jsonschema` library, and pre-filled once-only from what the city already holds.

The schema's own keywords carry the form: `title` (Chinese) and `x-title-en` for each field's label,
`x-enum-zh` and `x-enum-en` for the labels of an `enum`'s codes, and `x-prefill` for where a value can come from:
`{"source": "profile", "field": "name"}` (the applicant's record in the base registers) or
`{"source": "certificate", "type": "business_licence", "field": "credit_code"}` (a certificate the
applicant holds, issued by an earlier application: its fields are that application's form data).

`pattern` keywords and `patternProperties` keys run on RE2 (wecity.core.patterns), as every pattern the
platform runs does, at any depth of the schema: a city's catalogue is trusted, but a slow pattern would
still stall every applicant's submission (and patternProperties runs on keys the applicant chooses).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation

from wecity.core.errors import ValidationFailed
from wecity.core.patterns import BadPattern, compile_pattern

PROFILE = "profile"
CERTIFICATE = "certificate"
# A field's provenance: filled from a source, the source failed or held nothing, or filled and then
# changed by the applicant (staff must not read the applicant's value as the city's).
FILLED, FAILED, ABSENT, EDITED = "filled", "failed", "absent", "edited"


def _re2_pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[SchemaViolation]:
    if not validator.is_type(instance, "string"):
        return
    try:
        matches = compile_pattern(pattern).search(instance)
    except BadPattern as exc:
        yield SchemaViolation(f"the form's pattern {pattern!r} cannot be used: {exc}")
        return
    if not matches:
        yield SchemaViolation(f"{instance!r} does not match {pattern!r}")


def _re2_search(pattern: str, text: str) -> bool:
    """Whether `pattern` (a key of `patternProperties`) matches in `text`, on RE2; a pattern RE2 refuses
    matches nothing (import refuses it first: check_form_schema)."""
    try:
        return compile_pattern(pattern).search(text)
    except BadPattern:
        return False


def _re2_pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any,
                            schema: Mapping[str, Any]) -> Iterator[SchemaViolation]:
    # jsonschema's own runs Python's re on the keys, which the applicant chooses: ^(a+)+$ took seconds.
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _re2_search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _re2_additional_properties(validator: Any, additional: Any, instance: Any,
                               schema: Mapping[str, Any]) -> Iterator[SchemaViolation]:
    """jsonschema's additionalProperties, with the keys matched against `patternProperties` on RE2."""
    if not validator.is_type(instance, "object"):
        return
    properties, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
    extras = sorted((key for key in instance if key not in properties
                     and not any(_re2_search(p, key) for p in patterns)), key=str)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        yield SchemaViolation(f"Additional properties are not allowed ({', '.join(map(repr, extras))} unexpected)")


FormValidator = validators.extend(Draft202012Validator, validators={
    "pattern": _re2_pattern, "patternProperties": _re2_pattern_properties,
    "additionalProperties": _re2_additional_properties})

# Where a schema holds schemas (draft 2020-12, and the older names jsonschema still reads): by keyword,
# never by a key's name, so a field called "pattern" is a field, and an enum's values are data.
_SCHEMA_KEYWORDS = frozenset({"items", "additionalItems", "additionalProperties", "contains", "not", "if", "then",
                              "else", "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema"})
_SCHEMA_LIST_KEYWORDS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})
_SCHEMA_MAP_KEYWORDS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})


def _schemas(node: Any, where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every schema within a schema, itself first, with where it is."""
    if not isinstance(node, Mapping):
        return  # true, false: no keywords
    yield where, node
    for key, value in node.items():
        if key in _SCHEMA_KEYWORDS and isinstance(value, Mapping):
            yield from _schemas(value, f"{where}/{key}")
        elif key in _SCHEMA_LIST_KEYWORDS and isinstance(value, list):
            for index, item in enumerate(value):
                yield from _schemas(item, f"{where}/{key}/{index}")
        elif key in _SCHEMA_MAP_KEYWORDS and isinstance(value, Mapping):
            for name, item in value.items():
                yield from _schemas(item, f"{where}/{key}/{name}")


def _patterns(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """Every pattern in a schema, however deep (`pattern` values and `patternProperties` keys), with
    where it is: a nested one runs on every submission as a top-level one does."""
    for at, schema in _schemas(node, where):
        if "pattern" in schema:
            yield f"{at}/pattern", schema["pattern"]
        if isinstance(schema.get("patternProperties"), Mapping):
            for key in schema["patternProperties"]:
                yield f"{at}/patternProperties", key


def answer_label(prop: Mapping[str, Any], value: Any, locale: str) -> str:
    """An answer as a person reads it: an enum's label in their language, a yes/no in words."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return ("是" if value else "否") if locale.startswith("zh") else ("yes" if value else "no")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    options = prop.get("enum")
    labels = prop.get("x-enum-zh" if locale.startswith("zh") else "x-enum-en")
    if isinstance(options, list) and isinstance(labels, list) and value in options:
        index = options.index(value)
        if index < len(labels):
            return str(labels[index])
    return str(value)


def check_form_schema(schema: Any, *, matter: str) -> None:
    """A form schema a city imports: a valid draft 2020-12 schema of an object, whose patterns RE2 takes."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValidationFailed(f"matter {matter}: the form is not a valid JSON Schema: {exc.message}",
                               message_zh=f"事项 {matter} 的表单不是有效的 JSON Schema：{exc.message}",
                               code="govservice.form_schema") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValidationFailed(f"matter {matter}: the form must be an object with properties",
                               message_zh=f"事项 {matter} 的表单须为带 properties 的 object",
                               code="govservice.form_schema")
    if _uses(schema, "unevaluatedProperties") and _uses(schema, "patternProperties"):
        # jsonschema matches patternProperties for unevaluatedProperties with Python's re.
        raise ValidationFailed(f"matter {matter}: a form may not use unevaluatedProperties with patternProperties",
                               message_zh=f"事项 {matter} 的表单不能同时使用 unevaluatedProperties 与 patternProperties",
                               code="govservice.form_schema")
    for where, pattern in _patterns(schema, ""):
        try:
            compile_pattern(pattern)
        except (BadPattern, TypeError) as exc:
            raise ValidationFailed(f"matter {matter}: {where or '/'}: pattern not supported: {exc}",
                                   message_zh=f"事项 {matter} 的 {where or '/'} 处的正则表达式不受支持：{exc}",
                                   code="govservice.form_schema") from None


def _uses(node: Any, keyword: str) -> bool:
    return any(keyword in schema for _, schema in _schemas(node, ""))


@dataclass(frozen=True)
class FieldError:
    field: str
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message_en, "message_zh": self.message_zh}


def _labels(schema: Mapping[str, Any], field: str) -> tuple[str, str]:
    prop = schema.get("properties", {}).get(field, {})
    return str(prop.get("x-title-en") or prop.get("title") or field), str(prop.get("title") or field)


def _explain(error: SchemaViolation, schema: Mapping[str, Any]) -> FieldError:
    """One violation in words an applicant understands, in both languages."""
    if error.validator == "required":
        field = str(error.message.split("'")[1]) if "'" in error.message else ""
    else:
        field = str(error.path[0]) if error.path else ""
    en, zh = _labels(schema, field)
    v, expected = error.validator, error.validator_value
    if v == "required":
        return FieldError(field, f"{en} is required", f"请填写{zh}")
    if v == "maxLength":
        return FieldError(field, f"{en}: at most {expected} characters", f"{zh}最多 {expected} 个字")
    if v == "minLength":
        return FieldError(field, f"{en}: at least {expected} characters", f"{zh}至少 {expected} 个字")
    if v in ("pattern", "format"):
        return FieldError(field, f"{en} is not in the expected form", f"{zh}格式不正确")
    if v == "enum":
        return FieldError(field, f"{en}: choose one of the options", f"{zh}：请从选项中选择")
    if v in ("minimum", "exclusiveMinimum"):
        return FieldError(field, f"{en}: at least {expected}", f"{zh}不得小于 {expected}")
    if v in ("maximum", "exclusiveMaximum"):
        return FieldError(field, f"{en}: at most {expected}", f"{zh}不得大于 {expected}")
    if v == "type":
        return FieldError(field, f"{en}: expected {expected}", f"{zh}的类型不正确")
    if v == "additionalProperties":
        return FieldError(field, "the form has fields it does not ask for", "表单含有未定义的字段")
    return FieldError(field, f"{en}: {error.message}", f"{zh}：{error.message}")


# The largest integer a JSON number carries exactly (2^53 - 1): a larger one could not be signed into a
# certificate (certificates._check_json), so the application could never be approved.
MAX_SAFE_INTEGER = 2**53 - 1


def _unsafe_number(value: Any) -> str | None:
    """"nan" for a NaN or infinity anywhere in `value` (it passes minimum and maximum, as every comparison
    with it is false), "big" for an integer past MAX_SAFE_INTEGER, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "nan"
    if isinstance(value, int):
        return "big" if abs(value) > MAX_SAFE_INTEGER else None
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, list | tuple):
        return next((found for found in map(_unsafe_number, value) if found), None)
    return None


def form_errors(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[FieldError]:
    """Every problem of `data` against the form, one per field, in the form's order."""
    validator = FormValidator(schema, format_checker=FormatChecker())
    found: dict[str, FieldError] = {}
    for field, value in data.items():
        unsafe = _unsafe_number(value)
        if unsafe is not None:
            en, zh = _labels(schema, str(field))
            found[str(field)] = (FieldError(str(field), f"{en}: not a number", f"{zh}不是有效的数字") if unsafe == "nan"
                                 else FieldError(str(field), f"{en}: between −{MAX_SAFE_INTEGER} and {MAX_SAFE_INTEGER}",
                                                 f"{zh}应在 −{MAX_SAFE_INTEGER} 至 {MAX_SAFE_INTEGER} 之间"))
    # A field the form does not ask for is refused whatever the schema says of additional properties: the
    # approval's certificate carries the form's answers, signed, and nobody reviewed a field not shown.
    asked = schema.get("properties", {})
    for field in data:
        if field not in asked:
            found[str(field)] = FieldError(str(field), f"the form does not ask for {str(field)[:40]!r}",
                                           f"表单中没有字段「{str(field)[:40]}」")
    for error in validator.iter_errors(dict(data)):
        if error.validator == "additionalProperties" and not error.path:
            continue  # the form's own fields: named one by one above (a nested object's are its field's)
        explained = _explain(error, schema)
        found.setdefault(explained.field, explained)
    order = list(schema.get("properties", {}))
    return sorted(found.values(), key=lambda e: order.index(e.field) if e.field in order else len(order))


def check_form(schema: Mapping[str, Any], data: Mapping[str, Any]) -> None:
    """Raise ValidationFailed naming every field that is wrong (the portal shows each next to its field)."""
    errors = form_errors(schema, data)
    if errors:
        raise ValidationFailed("; ".join(e.message_en for e in errors), message_zh="；".join(e.message_zh for e in errors),
                               code="govservice.form_invalid", details={"fields": [e.as_dict() for e in errors]})


def draft_errors(schema: Mapping[str, Any], data: Mapping[str, Any]) -> list[FieldError]:
    """A draft may be incomplete, but what it holds is checked (types, lengths), so that no junk is kept."""
    return [e for e in form_errors(schema, data) if e.field in data]


# -- once-only pre-filling -------------------------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """A value a source holds, and what it came from (a certificate's number, a register's name)."""

    value: Any
    via: str = ""


# A source answers Found, or None when it holds nothing, or raises: a raise is shown as failed.
Source = Callable[[Mapping[str, Any]], Found | None]


def _as_schema_type(value: Any, prop: Mapping[str, Any]) -> Any:
    """A number kept as text (certificates sign decimals as text) back as the number the form asks for."""
    if isinstance(value, str) and prop.get("type") in ("number", "integer"):
        try:
            number = float(value)
        except ValueError:
            return value
        if not math.isfinite(number):
            return value  # "nan" is not a number: the form check names the field
        return int(number) if prop["type"] == "integer" and number.is_integer() else number
    return value


def provenance_after(provenance: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The provenance once the applicant has saved `data`: a pre-filled field whose value they changed is
    `edited` (the source's value kept beside it), one changed back is `filled` again."""
    out = dict(provenance)
    for field, record in provenance.items():
        if not isinstance(record, dict) or record.get("status") not in (FILLED, EDITED) or "value" not in record:
            continue  # recorded before the pre-filled value was kept: nothing to compare
        changed = data.get(field) != record["value"]
        out[field] = {**record, "status": EDITED if changed else FILLED}
    return out


def prefill(schema: Mapping[str, Any], sources: Mapping[str, Source]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values and their provenance for every field with `x-prefill`.

    `sources` maps "profile" and "certificate:<type>" to a function of the field's `x-prefill` spec. Each
    field is asked separately, so one failing source leaves the others filled; a failure is recorded as
    failed with its reason and the field left for the applicant, never shown as an empty success."""
    values: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    for field, prop in schema.get("properties", {}).items():
        spec = prop.get("x-prefill") if isinstance(prop, dict) else None
        if not isinstance(spec, dict):
            continue
        key = spec.get("source", "")
        if key == CERTIFICATE:
            key = f"{CERTIFICATE}:{spec.get('type', '')}"
        source = sources.get(key)
        record: dict[str, Any] = {"source": key}
        if source is None:
            record.update(status=ABSENT)
        else:
            try:
                value = source(spec)
            except Exception as exc:  # noqa: BLE001 - any failure of a source is shown, never hidden
                record.update(status=FAILED, error=str(getattr(exc, "message", exc))[:300],
                              error_zh=str(getattr(exc, "message_zh", exc))[:300])
            else:
                if value is None or value.value is None or value.value == "":
                    record.update(status=ABSENT)
                else:
                    values[field] = _as_schema_type(value.value, prop)
                    record.update(status=FILLED, via=value.via, value=values[field])
        provenance[field] = record
    return values, provenance
