"""The data catalogue (数据资源目录): a department publishes a dataset with its DCAT-AP metadata, its fields and
their sensitivity, and its share class with the legal basis for it.

A dataset is given as one JSON document (format below, `DATASET_SCHEMA`), checked whole before anything is
written; publishing a name again updates it. The rules the schema cannot say are checked here: open data
is unconditional and holds no personal field; a dataset that is not shared, or shared on conditions,
says why (its legal basis).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import date, datetime
from importlib import resources
from typing import Any

import sqlalchemy as sa
from jsonschema import Draft202012Validator

from wecity.core import cache
from wecity.core.db import inserted_id
from wecity.core.errors import NotFound, PermissionDenied, ValidationFailed
from wecity.datashare.models import dataset_fields, datasets
from wecity.identity.models import departments

# EU vocabularies DCAT-AP uses: data themes and update frequencies (publications.europa.eu authority tables).
THEMES = ("AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH", "TRAN")
FREQUENCIES = ("CONT", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "QUARTERLY", "ANNUAL", "IRREG", "NEVER")
SOURCES = ("cases", "ngsild", "applications", "certificates", "enterprises", "table")
SHARE_CLASSES = ("unconditional", "conditional", "not_shared")
SENSITIVITIES = ("public", "internal", "personal", "sensitive")
FIELD_TYPES = ("string", "integer", "number", "boolean", "date", "datetime", "geometry")
PERSONAL = frozenset({"personal", "sensitive"})
# Sources holding records of the platform's own domains, across departments and about people: a new dataset
# over one is catalogued by an administrator (its publisher maintains it after); a department catalogues
# its own tables (table) itself.
DOMAIN_SOURCES = frozenset({"cases", "applications", "certificates", "enterprises"})
# The city's NGSI-LD entity types belong to no department in the broker: which department publishes one
# (and so may open it up) is an administrator's to say, once; the department maintains the dataset after.
ADMIN_CATALOGUED = DOMAIN_SOURCES | {"ngsild"}
# Columns the platform knows to be about a person, whatever a document says: the least sensitivity a field
# of that name over that source may declare (so that no document serves them unmasked, or as open data).
KNOWN_PERSONAL: dict[tuple[str, str], str] = {
    ("cases", "reporter_phone"): "personal",
    ("applications", "applicant_name"): "personal",
    ("applications", "applicant_id_number"): "sensitive",
    ("certificates", "holder_name"): "personal",
    ("certificates", "id_number"): "sensitive",
}
CATALOGUE_CACHE = "datashare catalogue"

_TEXT = {"type": "string", "minLength": 1, "maxLength": 300}
DATASET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "title_zh", "title_en", "description_zh", "description_en", "publisher", "theme",
                 "keywords", "frequency", "spatial", "source", "share_class", "legal_basis", "fields"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{1,99}$"},
        "title_zh": _TEXT, "title_en": _TEXT,
        "description_zh": {"type": "string", "minLength": 1, "maxLength": 4000},
        "description_en": {"type": "string", "minLength": 1, "maxLength": 4000},
        "publisher": {"type": "string", "minLength": 1, "maxLength": 64},
        "theme": {"enum": list(THEMES)},
        "keywords": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 50}, "maxItems": 20},
        "frequency": {"enum": list(FREQUENCIES)},
        "spatial": {"type": "string", "minLength": 1, "maxLength": 200},
        "temporal": {"type": "object", "additionalProperties": False, "properties": {
            "start": {"type": "string", "format": "date"}, "end": {"type": "string", "format": "date"}}},
        "source": {"enum": list(SOURCES)},
        "source_ref": {"type": "string", "maxLength": 200},
        "share_class": {"enum": list(SHARE_CLASSES)},
        "legal_basis": {"type": "string", "maxLength": 2000},
        "open_data": {"type": "boolean"},
        "fields": {"type": "array", "minItems": 1, "maxItems": 200, "items": {
            "type": "object", "required": ["name", "title_zh", "title_en", "type", "sensitivity"],
            "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,99}$"},
                           "title_zh": _TEXT, "title_en": _TEXT, "type": {"enum": list(FIELD_TYPES)},
                           "sensitivity": {"enum": list(SENSITIVITIES)},
                           "description": {"type": "string", "maxLength": 2000}}}},
    },
}
_VALIDATOR = Draft202012Validator(DATASET_SCHEMA)


def _invalid(name: str, message: str, message_zh: str) -> ValidationFailed:
    return ValidationFailed(f"dataset {name}: {message}", message_zh=f"数据集 {name}：{message_zh}",
                            code="datashare.dataset_invalid")


def check_dataset(conn: sa.Connection, doc: Any) -> None:
    """Everything wrong with a dataset document, as one ValidationFailed naming the place."""
    name = doc.get("name", "?") if isinstance(doc, dict) else "?"
    errors = sorted(_VALIDATOR.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(dataset)"
        raise _invalid(name, f"{where}: {errors[0].message}", f"{where}：{errors[0].message}")
    if doc["name"].isdigit():  # the API and CKAN find a dataset by name or id: "12" would hide dataset 12
        raise _invalid(name, "a name is not all digits (datasets are also found by their number)",
                       "名称不能全为数字（数据集也按编号查找）")
    if conn.execute(sa.select(departments.c.id).where(departments.c.code == doc["publisher"])).first() is None:
        raise _invalid(name, f"no department {doc['publisher']!r}", f"部门 {doc['publisher']!r} 不存在")
    names = [f["name"] for f in doc["fields"]]
    if len(set(names)) != len(names):
        raise _invalid(name, "a field is named twice", "字段名重复")
    # A row read from a source carries the record it is about under "_record" (sources.py): a field of that
    # name would be overwritten by it, so names beginning with "_" are the platform's own.
    reserved = [n for n in names if n.startswith("_")]
    if reserved:
        raise _invalid(name, f"a field's name does not begin with _ ({', '.join(reserved)})",
                       f"字段名不能以 _ 开头（{'、'.join(reserved)}）")
    lowered = [f["name"] for f in doc["fields"]
               if SENSITIVITIES.index(f["sensitivity"]) < SENSITIVITIES.index(
                   KNOWN_PERSONAL.get((doc["source"], f["name"]), "public"))]
    if lowered:
        raise _invalid(name, f"{', '.join(lowered)} is about a person: it is personal or sensitive",
                       f"{'、'.join(lowered)} 属于个人信息，敏感级别须为个人或敏感")
    personal = [f["name"] for f in doc["fields"] if f["sensitivity"] in PERSONAL]
    if doc.get("open_data") and (doc["share_class"] != "unconditional" or personal):
        raise _invalid(name, "open data is shared unconditionally and holds no personal field"
                       + (f" ({', '.join(personal)})" if personal else ""),
                       "开放数据须为无条件共享且不含个人信息字段" + (f"（{'、'.join(personal)}）" if personal else ""))
    if doc["share_class"] != "unconditional" and not doc["legal_basis"].strip():
        raise _invalid(name, "a dataset shared on conditions, or not shared, gives its legal basis",
                       "有条件共享或不予共享的数据集须说明法律依据")
    period = doc.get("temporal") or {}
    if period.get("start") and period.get("end") and period["end"] < period["start"]:
        raise _invalid(name, "the temporal coverage ends before it starts", "时间范围的结束早于开始")


def may_publish(conn: sa.Connection, department_id: int | None, doc: Any, roles: Collection[str] = ()) -> None:
    """Refuse a department's staff a dataset document they may not publish (administrators publish any): a
    department publishes under its own name, updates only its own datasets (the stored publisher, not the
    document's, decides), points a dataset at the platform's domain records or at an NGSI-LD entity type
    only where an administrator already did, and makes a dataset open data only by a supervisor."""
    own = conn.execute(sa.select(departments.c.code).where(departments.c.id == department_id)).scalar()
    name = doc.get("name") if isinstance(doc, dict) else None
    stored = conn.execute(sa.select(datasets.c.id, datasets.c.publisher, datasets.c.source, datasets.c.source_ref,
                                    datasets.c.share_class, datasets.c.open_data)
                          .where(datasets.c.name == name)).first() if isinstance(name, str) else None
    if own is None or own != doc.get("publisher") or (stored is not None and stored.publisher != own):
        raise PermissionDenied("a department publishes and updates its own datasets only",
                               message_zh="部门只能发布和更新本部门的数据集", code="datashare.not_publisher")
    source = (doc.get("source"), doc.get("source_ref", ""))
    if source[0] in DOMAIN_SOURCES and stored is not None and (stored.source, stored.source_ref) == source:
        # Over the platform's records its department keeps the words up to date; what is shared, how, and how
        # sensitive each field is stay as an administrator catalogued them.
        fields = [(r.name, r.type, r.sensitivity) for r in conn.execute(
            sa.select(dataset_fields.c.name, dataset_fields.c.type, dataset_fields.c.sensitivity)
            .where(dataset_fields.c.dataset_id == stored.id).order_by(dataset_fields.c.position))]
        asked = [(f.get("name"), f.get("type"), f.get("sensitivity")) for f in doc.get("fields") or []
                 if isinstance(f, dict)]
        if (asked != fields or doc.get("share_class") != stored.share_class
                or bool(doc.get("open_data")) != bool(stored.open_data)):
            raise PermissionDenied("the fields, their sensitivity and how a dataset over the platform's records is "
                                   "shared are an administrator's to change; its department edits its descriptions",
                                   message_zh="基于平台业务记录的数据集，其字段、敏感级别和共享方式由管理员修改，发布部门可修改描述",
                                   code="datashare.admin_catalogues")
    if source[0] in DOMAIN_SOURCES and (stored is None or (stored.source, stored.source_ref) != source):
        raise PermissionDenied("a dataset over the platform's records (cases, applications, certificates, "
                               "enterprises) is catalogued by an administrator; its department maintains it after",
                               message_zh="基于平台业务记录（案件、办件、证照、企业）的数据集由管理员编目，之后由发布部门维护",
                               code="datashare.admin_catalogues")
    if source[0] in ADMIN_CATALOGUED and (stored is None or (stored.source, stored.source_ref) != source):
        raise PermissionDenied("a dataset over the city's NGSI-LD entities is catalogued by an administrator, who "
                               "says which department publishes the entity type; its department maintains it after",
                               message_zh="基于城市 NGSI-LD 实体的数据集由管理员编目并指定发布部门，之后由发布部门维护",
                               code="datashare.admin_catalogues")
    if doc.get("open_data") is True and not (stored is not None and stored.open_data) and "supervisor" not in roles:
        raise PermissionDenied("making a dataset open data is for its department's supervisors or an administrator",
                               message_zh="将数据集设为开放数据须由本部门负责人或管理员操作",
                               code="datashare.open_data_supervisor")


async def forget_cached(db: Any) -> None:
    """Drop this process's cached catalogue once a change is committed. The change's own transaction drops
    it too, but before its commit: a search in between would load the old catalogue and keep it for the
    cache's lifetime."""
    await db.read(lambda conn: cache.invalidate(conn, CATALOGUE_CACHE))


def publish(conn: sa.Connection, doc: dict[str, Any], *, now: datetime) -> int:
    """Publish a dataset, or update the one of that name; returns its id."""
    check_dataset(conn, doc)
    period = doc.get("temporal") or {}
    values = dict(
        title_zh=doc["title_zh"], title_en=doc["title_en"], description_zh=doc["description_zh"],
        description_en=doc["description_en"], publisher=doc["publisher"], theme=doc["theme"],
        keywords=list(doc["keywords"]), frequency=doc["frequency"], spatial=doc["spatial"],
        temporal_start=date.fromisoformat(period["start"]) if period.get("start") else None,
        temporal_end=date.fromisoformat(period["end"]) if period.get("end") else None,
        source=doc["source"], source_ref=doc.get("source_ref", ""), share_class=doc["share_class"],
        legal_basis=doc["legal_basis"], open_data=bool(doc.get("open_data")), state="published", modified_at=now)
    found = conn.execute(sa.select(datasets.c.id, datasets.c.issued_at).where(datasets.c.name == doc["name"])).first()
    if found is None:
        dataset_id = inserted_id(conn.execute(datasets.insert().values(
            name=doc["name"], created_at=now, issued_at=now, **values)))
    else:
        dataset_id = found.id
        conn.execute(datasets.update().where(datasets.c.id == dataset_id).values(
            issued_at=found.issued_at or now, **values))
        conn.execute(dataset_fields.delete().where(dataset_fields.c.dataset_id == dataset_id))
    conn.execute(dataset_fields.insert(), [
        dict(dataset_id=dataset_id, position=i, name=f["name"], title_zh=f["title_zh"], title_en=f["title_en"],
             type=f["type"], sensitivity=f["sensitivity"], description=f.get("description"))
        for i, f in enumerate(doc["fields"])])
    cache.invalidate(conn, CATALOGUE_CACHE)
    return dataset_id


FORMAT = "wecity-datasets/1"


def publish_all(conn: sa.Connection, document: Any, *, now: datetime) -> int:
    """Publish every dataset of a `wecity-datasets/1` document (all or none); returns how many."""
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(document.get("datasets"), list):
        raise ValidationFailed(f'a dataset file is a JSON object with "format": "{FORMAT}" and a list of datasets',
                               message_zh=f'数据集文件须为 JSON 对象，含 "format": "{FORMAT}" 及 datasets 列表',
                               code="datashare.file_format")
    for doc in document["datasets"]:
        publish(conn, doc, now=now)
    return len(document["datasets"])


def packaged_demo_datasets() -> dict[str, Any]:
    text = resources.files("wecity.datashare").joinpath("data/demo-datasets.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def withdraw(conn: sa.Connection, name: str, *, now: datetime) -> None:
    """Take a dataset out of the catalogue (its record stays, marked withdrawn)."""
    if not conn.execute(datasets.update().where(datasets.c.name == name).values(
            state="withdrawn", modified_at=now)).rowcount:
        raise NotFound(f"no dataset {name}", message_zh=f"数据集 {name} 不存在")
    cache.invalidate(conn, CATALOGUE_CACHE)
