"""The catalogue of matters (事项目录): what the city grants, imported and exported as one JSON document.

The document's format is `wecity-matters/1` (docs/govservice.md; the demo city's is
wecity/govservice/data/demo-matters.json). Import is all or nothing: every matter is checked (its own shape
by MATTER_SCHEMA, its form as a JSON Schema, its departments, its process) before any is written. A matter
whose definition changed gets the next version; applications keep the version they were made under.
"""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from jsonschema import Draft202012Validator

from wecity.core import cache
from wecity.core.errors import NotFound, ValidationFailed
from wecity.govservice.forms import check_form_schema
from wecity.govservice.models import matter_versions, matters
from wecity.identity.models import departments

FORMAT = "wecity-matters/1"
CATALOGUE_CACHE = "govservice catalogue"  # the key of wecity.govservice.queries' cached catalogue
UNCOUNTED_STEPS = ("hearing", "inspection", "expert_review", "public_notice")
APPLICANT_KINDS = ("citizen", "enterprise")
ONLINE_LEVELS = ("full_online", "at_most_once")
PROCESSES = ("standard", "simple")

_TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
_CODE = {"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}
_DAYS = {"type": "integer", "minimum": 0, "maximum": 365}

# The shape of one matter in the catalogue document.
MATTER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "name_zh", "name_en", "department", "legal_basis_zh", "legal_limit_days",
                 "promised_limit_days", "applicants", "online_level", "process", "materials", "form"],
    "properties": {
        "code": _CODE, "name_zh": _TEXT, "name_en": _TEXT, "department": _CODE,
        "legal_basis_zh": {"type": "string", "maxLength": 2000}, "legal_basis_en": {"type": "string", "maxLength": 2000},
        "legal_limit_days": _DAYS, "promised_limit_days": _DAYS,
        "uncounted_steps": {"type": "array", "items": {"enum": list(UNCOUNTED_STEPS)}, "uniqueItems": True},
        "applicants": {"type": "array", "items": {"enum": list(APPLICANT_KINDS)}, "minItems": 1, "uniqueItems": True},
        "online_level": {"enum": list(ONLINE_LEVELS)},
        "process": {"enum": list(PROCESSES)},
        "reviewers": {"type": "array", "items": _CODE, "uniqueItems": True, "maxItems": 20},
        "fees": {"type": "array", "maxItems": 20, "items": {
            "type": "object", "required": ["name_zh", "amount_cny"],
            "properties": {"name_zh": _TEXT, "name_en": _TEXT, "amount_cny": {"type": "number", "minimum": 0}}}},
        "materials": {"type": "array", "maxItems": 50, "items": {
            "type": "object", "required": ["code", "name_zh", "required"],
            "properties": {"code": _CODE, "name_zh": _TEXT, "name_en": _TEXT, "required": {"type": "boolean"},
                           "replaced_by": {"anyOf": [{"type": "null"}, {"const": "profile"},
                                                     {"type": "string", "pattern": "^certificate:[A-Za-z0-9_.-]{1,64}$"}]}}}},
        "form": {"type": "object"},
        "certificate": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["type", "name_zh", "name_en"],
            "properties": {"type": _CODE, "name_zh": _TEXT, "name_en": _TEXT,
                           "valid_days": {"anyOf": [{"type": "null"}, {"type": "integer", "minimum": 1}]}}}]},
    },
}
_MATTER_VALIDATOR = Draft202012Validator(MATTER_SCHEMA)


def check_matter(matter: Any, known_departments: set[str]) -> None:
    """Everything wrong with one matter, as one ValidationFailed naming the matter and the place."""
    code = matter.get("code", "?") if isinstance(matter, dict) else "?"
    errors = sorted(_MATTER_VALIDATOR.iter_errors(matter), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(matter)"
        raise ValidationFailed(f"matter {code}: {where}: {errors[0].message}",
                               message_zh=f"事项 {code}：{where}：{errors[0].message}", code="govservice.matter_invalid")
    for dept in [matter["department"], *matter.get("reviewers", [])]:
        if dept not in known_departments:
            raise ValidationFailed(f"matter {code}: no department {dept!r}; create it first",
                                   message_zh=f"事项 {code}：部门 {dept!r} 不存在，请先创建",
                                   code="govservice.unknown_department")
    if matter["process"] == "standard" and not matter.get("reviewers"):
        raise ValidationFailed(f"matter {code}: the standard process needs reviewers (parallel review)",
                               message_zh=f"事项 {code}：标准流程须列出并联审查部门", code="govservice.matter_invalid")
    if matter["promised_limit_days"] > matter["legal_limit_days"] > 0:
        raise ValidationFailed(f"matter {code}: the promised limit exceeds the legal limit",
                               message_zh=f"事项 {code}：承诺时限超过法定时限", code="govservice.matter_invalid")
    check_form_schema(matter["form"], matter=code)


def import_catalogue(conn: sa.Connection, document: Any, *, now: datetime) -> dict[str, int]:
    """Create or update every matter of `document`; returns how many were created, updated, unchanged."""
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(document.get("matters"), list):
        raise ValidationFailed(f"a catalogue is a JSON object with \"format\": \"{FORMAT}\" and a list of matters",
                               message_zh=f"事项目录须为 JSON 对象，含 \"format\": \"{FORMAT}\" 及 matters 列表",
                               code="govservice.catalogue_format")
    known = set(conn.execute(sa.select(departments.c.code)).scalars())
    seen: set[str] = set()
    for matter in document["matters"]:
        check_matter(matter, known)
        if matter["code"] in seen:
            raise ValidationFailed(f"matter {matter['code']} appears twice", message_zh=f"事项 {matter['code']} 重复",
                                   code="govservice.matter_invalid")
        seen.add(matter["code"])
    current = {r.code: r for r in conn.execute(sa.select(matters.c.code, matters.c.version, matters.c.definition))}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for matter in document["matters"]:
        row = current.get(matter["code"])
        if row is not None and _canonical(row.definition) == _canonical(matter):
            counts["unchanged"] += 1
            continue
        version = 1 if row is None else row.version + 1
        values = dict(version=version, name_zh=matter["name_zh"], name_en=matter["name_en"],
                      department_code=matter["department"], applicants=" ".join(matter["applicants"]),
                      online_level=matter["online_level"], active=True, definition=matter, updated_at=now)
        if row is None:
            conn.execute(matters.insert().values(code=matter["code"], **values))
        else:
            conn.execute(matters.update().where(matters.c.code == matter["code"]).values(**values))
        conn.execute(matter_versions.insert().values(code=matter["code"], version=version, definition=matter,
                                                     created_at=now))
        counts["created" if row is None else "updated"] += 1
    cache.invalidate(conn, CATALOGUE_CACHE)
    return counts


async def forget_cached(db: Any) -> None:
    """Drop this process's cached catalogue once a change is committed. The change's own transaction drops
    it too, but before its commit: a search in between would load the old catalogue and keep it for the
    cache's lifetime."""
    await db.read(lambda conn: cache.invalidate(conn, CATALOGUE_CACHE))


def export_catalogue(conn: sa.Connection) -> dict[str, Any]:
    """The active catalogue in the import format (a city's export imports unchanged into another)."""
    rows = conn.execute(sa.select(matters.c.definition).where(matters.c.active).order_by(matters.c.code))
    return {"format": FORMAT, "matters": [r.definition for r in rows]}


def set_active(conn: sa.Connection, code: str, active: bool, *, now: datetime) -> None:
    """Withdraw a matter from the catalogue (no new applications) or bring it back."""
    if not conn.execute(matters.update().where(matters.c.code == code).values(active=active, updated_at=now)).rowcount:
        raise NotFound(f"no matter {code}", message_zh=f"事项 {code} 不存在")
    cache.invalidate(conn, CATALOGUE_CACHE)


def packaged_demo_catalogue() -> dict[str, Any]:
    text = resources.files("wecity.govservice").joinpath("data/demo-matters.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _canonical(definition: Any) -> str:
    return json.dumps(definition, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
