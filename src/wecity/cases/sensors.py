"""Sensor rules: a reading that meets a rule's condition opens a case through the same intake as a citizen.

A rule is an NGSI-LD `q` condition on an entity type (`tiltAngle>15` on `Manhole`) and a category
(井盖缺失/破损). When the context broker stores a change of a matching entity and the condition holds,
the entity's location becomes a report with source "sensor" and source_ref "<tenant>|<entity>|<rule>":
one open case per entity and rule, so a flapping sensor does not flood the queue, and a citizen's
report of the same manhole nearby merges into it (and the other way round).

A rule may instead (or as well) watch one attribute for **reading anomalies**: a spike, a stuck device or
drift, judged against the sensor's own history (`anomaly_attribute`, `anomaly_kind`, `anomaly_threshold`).
Such rules need the history the broker keeps and the statistics of the AI platform, which comes after this
domain: `wecity.ai.anomaly_rules` listens to the same changes, judges them and opens the case through
`open_case_for` here. This module's listener passes them by, so rules without one cost next to nothing more.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import get_category
from wecity.cases.choices import MERGEABLE, AnomalyKind, CaseStatus, Channel, Source
from wecity.cases.intake import NewReport, submit_report
from wecity.cases.models import cases, categories, sensor_rules
from wecity.core import cache
from wecity.core.db import inserted_id
from wecity.core.errors import NotFound, ValidationFailed, WeCityError

log = logging.getLogger(__name__)
LOCATION = "https://uri.etsi.org/ngsi-ld/location"


def add_rule(conn: Connection, *, entity_type: str, q: str, category_code: str, description_zh: str,
             description_en: str, now: datetime, tenant: str = "", anomaly_attribute: str | None = None,
             anomaly_kind: str | None = None, anomaly_threshold: float | None = None) -> int:
    from wecity.context.ldcontext import ContextStore
    from wecity.context.query import compile_q

    get_category(conn, category_code)
    if not entity_type.strip():
        raise ValidationFailed("entity_type is required", message_zh="必须指定实体类型", code="rule.entity_type")
    q = q.strip()
    anomaly = _anomaly_condition(anomaly_attribute, anomaly_kind, anomaly_threshold)
    if not q and anomaly[0] is None:
        raise ValidationFailed("a rule needs a q condition, an anomaly condition (anomaly_attribute) or both",
                               message_zh="规则需要 q 条件、读数异常条件（anomaly_attribute）或两者兼有", code="rule.condition")
    if q:
        compile_q(q, ContextStore().core)  # refuse a condition that does not parse, now rather than at run time
    rule_id = inserted_id(conn.execute(sensor_rules.insert().values(
        tenant=tenant, entity_type=entity_type, q=q, category_code=category_code, description_zh=description_zh,
        description_en=description_en, active=True, created_at=now, anomaly_attribute=anomaly[0],
        anomaly_kind=anomaly[1], anomaly_threshold=anomaly[2])))
    cache.invalidate(conn, "sensor rules")
    return rule_id


# A rule's own z threshold: below 2 about one normal reading in twenty would be "anomalous".
MIN_THRESHOLD, MAX_THRESHOLD = 2.0, 100.0


def _anomaly_condition(attribute: str | None, kind: str | None,
                       threshold: float | None) -> tuple[str | None, str | None, float | None]:
    """The anomaly condition as stored, checked: (attribute, kind, threshold), or all None for none."""
    from wecity.context.entity import check_attribute_name

    attribute = (attribute or "").strip() or None
    if attribute is None:
        if kind is not None or threshold is not None:
            raise ValidationFailed("anomaly_kind and anomaly_threshold need anomaly_attribute",
                                   message_zh="anomaly_kind 与 anomaly_threshold 需要同时指定 anomaly_attribute",
                                   code="rule.anomaly_attribute")
        return None, None, None
    try:
        check_attribute_name(attribute)
    except WeCityError:
        raise ValidationFailed(f"anomaly_attribute {attribute!r} is not an NGSI-LD attribute name",
                               message_zh=f"anomaly_attribute {attribute!r} 不是有效的 NGSI-LD 属性名",
                               code="rule.anomaly_attribute") from None
    kinds = ", ".join(k.value for k in AnomalyKind)
    if kind is None:
        kind = AnomalyKind.ANY.value
    elif kind not in {k.value for k in AnomalyKind}:
        raise ValidationFailed(f"anomaly_kind must be one of {kinds}", message_zh=f"anomaly_kind 必须是 {kinds} 之一",
                               code="rule.anomaly_kind")
    if threshold is not None:
        if kind == AnomalyKind.STUCK:
            raise ValidationFailed("anomaly_threshold applies to spikes and drift, not to a stuck device",
                                   message_zh="anomaly_threshold 只适用于突变和漂移，不适用于卡滞",
                                   code="rule.anomaly_threshold")
        if not MIN_THRESHOLD <= threshold <= MAX_THRESHOLD:  # NaN fails too
            raise ValidationFailed(
                f"anomaly_threshold must be between {MIN_THRESHOLD:g} and {MAX_THRESHOLD:g} (robust z)",
                message_zh=f"anomaly_threshold 必须在 {MIN_THRESHOLD:g} 到 {MAX_THRESHOLD:g} 之间（稳健 z 值）",
                code="rule.anomaly_threshold")
    return attribute, kind, threshold


def list_rules(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(sa.select(sensor_rules).order_by(sensor_rules.c.id))]


def get_rule(conn: Connection, rule_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(sensor_rules).where(sensor_rules.c.id == rule_id)).first()
    if row is None:
        raise NotFound(f"no sensor rule {rule_id}", message_zh=f"传感规则 {rule_id} 不存在")
    return dict(row._mapping)


def set_rule_active(conn: Connection, rule_id: int, active: bool) -> bool:
    """Pause (False) or resume (True) a rule; False when there is no such rule."""
    cache.invalidate(conn, "sensor rules")
    return conn.execute(sensor_rules.update().where(sensor_rules.c.id == rule_id).values(active=active)).rowcount == 1


def delete_rule(conn: Connection, rule_id: int) -> bool:
    cache.invalidate(conn, "sensor rules")
    return conn.execute(sensor_rules.delete().where(sensor_rules.c.id == rule_id)).rowcount == 1


def open_sensor_cases(conn: Connection) -> list[dict[str, Any]]:
    """Open cases a rule opened, newest first: the case, its entity and rule (from source_ref) and category."""
    open_states = [s.value for s in CaseStatus if s.is_open]
    rows = conn.execute(sa.select(cases.c.id, cases.c.status, cases.c.source_ref, cases.c.created_at,
                                  categories.c.name_zh, categories.c.name_en)
                        .select_from(cases.join(categories, categories.c.code == cases.c.category_code))
                        .where(cases.c.source == Source.SENSOR.value, cases.c.status.in_(open_states))
                        .order_by(cases.c.created_at.desc(), cases.c.id.desc()))
    out = []
    for r in rows:
        tenant, entity_id, rule_id = (r.source_ref or "||").split("|", 2)
        out.append({"case_id": r.id, "status": r.status, "entity_id": entity_id, "tenant": tenant,
                    "rule_id": int(rule_id) if rule_id.isdigit() else None, "created_at": r.created_at,
                    "category": {"zh_CN": r.name_zh, "en": r.name_en}})
    return out


def _point(entity: Any) -> tuple[float, float] | None:
    attr = entity.attrs.get(LOCATION)
    if isinstance(attr, list):
        attr = attr[0] if attr else None
    value = attr.get("value") if isinstance(attr, dict) else None
    if isinstance(value, dict) and value.get("type") == "Point":
        lon, lat = value["coordinates"][:2]
        return float(lat), float(lon)
    return None


_compiled: dict[tuple[str, int], Any] = {}


def active_rules(conn: Connection, tenant: str) -> list[Any]:
    """The tenant's active rules. Read on every stored reading: kept per process for a few seconds
    (changes here drop it at once)."""
    return cache.cached(conn, ("sensor rules", tenant), lambda: list(conn.execute(sa.select(sensor_rules).where(
        sensor_rules.c.active.is_(True), sensor_rules.c.tenant == tenant))))


def anomaly_rules(conn: Connection, tenant: str) -> list[Any]:
    """The tenant's active rules with an anomaly condition, kept as `active_rules` are."""
    return cache.cached(conn, ("sensor rules", tenant, "anomaly"),
                        lambda: [r for r in active_rules(conn, tenant) if r.anomaly_attribute])


def condition_holds(rule: Any, terms: Any, entity: Any) -> bool:
    """Whether `entity` is of the rule's type and meets its `q` (an empty `q` always holds)."""
    if terms.expand(rule.entity_type) not in entity.types and rule.entity_type not in entity.types:
        return False
    if not rule.q:
        return True
    key = (rule.q, id(terms))
    predicate = _compiled.get(key)
    if predicate is None:
        from wecity.context.query import compile_stored_q

        predicate = _compiled[key] = compile_stored_q(rule.q, terms)
    return bool(predicate(entity.attrs))


def source_ref(tenant: str, entity_id: str, rule_id: int) -> str:
    return f"{tenant}|{entity_id}|{rule_id}"


def has_open_case(conn: Connection, tenant: str, entity_id: str, rule_id: int) -> bool:
    """Whether the rule already has an open case for the entity (one per entity and rule)."""
    return conn.execute(sa.select(cases.c.id).where(
        cases.c.source_ref == source_ref(tenant, entity_id, rule_id),
        cases.c.status.in_([s.value for s in MERGEABLE])).limit(1)).first() is not None


def on_entity_changed(conn: Connection, *, tenant: str, now: datetime, terms: Any, entity: Any,
                      changed: set[str], deleted: bool) -> None:
    if deleted:
        return
    rules = active_rules(conn, tenant)
    if not rules:
        return
    for rule in rules:
        if rule.anomaly_attribute:
            continue  # judged against the sensor's history by wecity.ai.anomaly_rules
        if condition_holds(rule, terms, entity):
            open_case_for(conn, rule, entity, tenant=tenant, now=now)


def open_case_for(conn: Connection, rule: Any, entity: Any, *, tenant: str, now: datetime,
                  finding: tuple[str, str] | None = None) -> None:
    """Open the rule's case for `entity` at its location, unless one is open already (a flapping sensor adds
    nothing); `finding` (zh, en) says what was found, for a rule whose anomaly condition held."""
    if has_open_case(conn, tenant, entity.id, rule.id):
        return
    point = _point(entity)
    if point is None:
        log.warning("sensor rule %s matched %s, which has no location; no case opened", rule.id, entity.id)
        return
    _open(conn, rule, entity.id, point, source_ref(tenant, entity.id, rule.id), now, finding)


def _open(conn: Connection, rule: Any, entity_id: str, point: tuple[float, float], ref: str, now: datetime,
          finding: tuple[str, str] | None) -> None:
    from wecity.geo.service import current_area_index

    zh, en = rule.description_zh, rule.description_en
    if finding is not None:
        zh, en = f"{zh}（{finding[0]}）", f"{en} ({finding[1]})"
    report = NewReport(
        service_code=rule.category_code, channel=Channel.SENSOR, source=Source.SENSOR, lat=point[0],
        long=point[1], description=f"{zh} / {en} ({entity_id})", device_id=entity_id, source_ref=ref)
    try:
        with conn.begin_nested():  # a refused report (e.g. outside the city) must not undo the reading
            result = submit_report(conn, report, area_index=current_area_index(conn), now=now)
        log.info("sensor rule opened or joined a case", extra={"fields": {
            "rule": rule.id, "entity": entity_id, "case": result.case_id, "merged": result.merged}})
    except WeCityError as exc:
        log.warning("sensor rule %s for %s: no case (%s)", rule.id, entity_id, exc.message)

