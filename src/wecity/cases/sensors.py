"""Sensor rules: a reading that meets a rule's condition opens a case through the same intake as a citizen.

A rule is an NGSI-LD `q` condition on an entity type (`tiltAngle>15` on `Manhole`) and a category
(井盖缺失/破损). When the context broker stores a change of a matching entity and the condition holds,
the entity's location becomes a report with source "sensor" and source_ref "<tenant>|<entity>|<rule>":
one open case per entity and rule, so a flapping sensor does not flood the queue, and a citizen's
report of the same manhole nearby merges into it (and the other way round).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.cases.categories import get_category
from wecity.cases.choices import MERGEABLE, CaseStatus, Channel, Source
from wecity.cases.intake import NewReport, submit_report
from wecity.cases.models import cases, categories, sensor_rules
from wecity.core import cache
from wecity.core.db import inserted_id
from wecity.core.errors import NotFound, ValidationFailed, WeCityError

log = logging.getLogger(__name__)
LOCATION = "https://uri.etsi.org/ngsi-ld/location"


def add_rule(conn: Connection, *, entity_type: str, q: str, category_code: str, description_zh: str,
             description_en: str, now: datetime, tenant: str = "") -> int:
    from wecity.context.ldcontext import ContextStore
    from wecity.context.query import compile_q

    get_category(conn, category_code)
    if not entity_type.strip():
        raise ValidationFailed("entity_type is required", message_zh="必须指定实体类型", code="rule.entity_type")
    compile_q(q, ContextStore().core)  # refuse a condition that does not parse, now rather than at run time
    rule_id = inserted_id(conn.execute(sensor_rules.insert().values(
        tenant=tenant, entity_type=entity_type, q=q, category_code=category_code, description_zh=description_zh,
        description_en=description_en, active=True, created_at=now)))
    cache.invalidate(conn, "sensor rules")
    return rule_id


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


def on_entity_changed(conn: Connection, *, tenant: str, now: datetime, terms: Any, entity: Any,
                      changed: set[str], deleted: bool) -> None:
    if deleted:
        return
    # Read on every stored reading: kept per process for a few seconds (changes here drop it at once).
    rules = cache.cached(conn, ("sensor rules", tenant), lambda: conn.execute(sa.select(sensor_rules).where(
        sensor_rules.c.active.is_(True), sensor_rules.c.tenant == tenant)).all())
    if not rules:
        return
    from wecity.context.query import compile_stored_q

    for rule in rules:
        if terms.expand(rule.entity_type) not in entity.types and rule.entity_type not in entity.types:
            continue
        key = (rule.q, id(terms))
        predicate = _compiled.get(key)
        if predicate is None:
            predicate = _compiled[key] = compile_stored_q(rule.q, terms)
        if not predicate(entity.attrs):
            continue
        source_ref = f"{tenant}|{entity.id}|{rule.id}"
        already = conn.execute(sa.select(cases.c.id).where(
            cases.c.source_ref == source_ref, cases.c.status.in_([s.value for s in MERGEABLE])).limit(1)).first()
        if already:
            continue  # one open case per entity and rule: a flapping sensor adds nothing
        point = _point(entity)
        if point is None:
            log.warning("sensor rule %s matched %s, which has no location; no case opened", rule.id, entity.id)
            continue
        _open(conn, rule, entity.id, point, source_ref, now)


def _open(conn: Connection, rule: Any, entity_id: str, point: tuple[float, float], source_ref: str,
          now: datetime) -> None:
    from wecity.geo.service import load_area_index

    report = NewReport(
        service_code=rule.category_code, channel=Channel.SENSOR, source=Source.SENSOR, lat=point[0],
        long=point[1], description=f"{rule.description_zh} / {rule.description_en} ({entity_id})",
        device_id=entity_id, source_ref=source_ref)
    try:
        with conn.begin_nested():  # a refused report (e.g. outside the city) must not undo the reading
            index = cache.cached(conn, ("area index",), lambda: load_area_index(conn))
            result = submit_report(conn, report, area_index=index, now=now)
        log.info("sensor rule opened or joined a case", extra={"fields": {
            "rule": rule.id, "entity": entity_id, "case": result.case_id, "merged": result.merged}})
    except WeCityError as exc:
        log.warning("sensor rule %s for %s: no case (%s)", rule.id, entity_id, exc.message)

