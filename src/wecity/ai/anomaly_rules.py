"""Sensor rules with an anomaly condition: a stored reading of the watched attribute is judged against the
sensor's own history (`wecity.ai.anomalies`) and, when it is the anomaly the rule asks for, opens the rule's
case through the case engine (`wecity.cases.sensors.open_case_for`), in the broker's transaction.

This runs inside every write of the context broker, so the checks go cheapest first and stop early: a rule
with an anomaly condition at all (none: one look-up in the per-process cache), the rule's entity type, its
attribute among those the change wrote, its `q`, an open case of the rule for the entity already (a stuck
device costs one indexed look-up per reading once its case is open) — and only then the history (one
index range of at most 101 rows, read once per attribute and change) and the statistics.

The newest reading is the newest by observedAt: a late reading with an older time is judged when it is
the newest, not when it arrives. Attribute names are expanded with the core @context, as a rule's `q`
is; an attribute of another vocabulary is named by its full IRI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from wecity.ai.anomalies import Assessment, Kind, Limits, assess, rolling
from wecity.cases import sensors
from wecity.cases.choices import AnomalyKind
from wecity.context.entity import now_text
from wecity.context.history import from_epoch, recent_readings

LIMITS = Limits()
MAX_SHOWN = 200  # readings a sensor's page may ask to see judged


def wanted_kind(rule: Any) -> Kind | None:
    """The kind of anomaly the rule opens a case for; None for any."""
    return None if rule.anomaly_kind in (None, AnomalyKind.ANY) else Kind(rule.anomaly_kind)


def describe(attribute: str, found: Assessment, kind: Kind | None) -> tuple[str, str]:
    """What was found, in Chinese and English, for the case's description."""
    zh, en = [], []
    for k in found.kinds if kind is None else (kind,):
        if k is Kind.STUCK:
            zh.append(f"卡滞（连续 {found.run} 个相同读数 {found.value:g}）")
            en.append(f"stuck ({found.run} equal readings of {found.value:g} in a row)")
        elif k is Kind.SPIKE:
            zh.append(f"突变（读数 {found.value:g}，z = {found.z:.1f}）")
            en.append(f"spike (reading {found.value:g}, z = {found.z:.1f})")
        else:
            zh.append(f"漂移（最近 {LIMITS.recent} 个读数的中位数 z = {found.drift_z:.1f}）")
            en.append(f"drift (median of the last {LIMITS.recent} readings at z = {found.drift_z:.1f})")
    return f"读数异常：{attribute} {'、'.join(zh)}", f"reading anomaly: {attribute} {', '.join(en)}"


def on_entity_changed(conn: Connection, *, tenant: str, now: datetime, terms: Any, entity: Any,
                      changed: set[str], deleted: bool) -> None:
    if deleted:
        return
    rules = sensors.anomaly_rules(conn, tenant)
    if not rules:
        return
    series: dict[str, list[float]] = {}
    for rule in rules:
        attr = terms.expand(rule.anomaly_attribute)
        if attr not in changed or not sensors.condition_holds(rule, terms, entity):
            continue
        if sensors.has_open_case(conn, tenant, entity.id, rule.id):
            continue  # one open case per entity and rule: no need to read the history again
        if attr not in series:
            series[attr] = [v for _, v in recent_readings(conn, tenant, entity.id, attr, LIMITS.window + 1)]
        found = assess(series[attr], LIMITS.with_threshold(rule.anomaly_threshold))
        kind = wanted_kind(rule)
        if found.has(kind):
            sensors.open_case_for(conn, rule, entity, tenant=tenant, now=now,
                                  finding=describe(rule.anomaly_attribute, found, kind))


def judged_readings(conn: Connection, *, tenant: str, entity_id: str, attribute: str, iri: str,
                    last: int) -> dict[str, Any]:
    """A sensor's last `last` readings of one attribute, each with the verdict it had when it arrived (the
    past before it, not after): what staff look at when a rule opened a case, or to choose a threshold."""
    readings = recent_readings(conn, tenant, entity_id, iri, last + LIMITS.window)
    verdicts = rolling([v for _, v in readings], LIMITS, last=last)
    shown = readings[len(readings) - len(verdicts):]
    return {
        "entity": entity_id, "attribute": attribute, "tenant": tenant,
        "limits": {"window": LIMITS.window, "min_history": LIMITS.min_history, "threshold": LIMITS.threshold,
                   "recent": LIMITS.recent, "stuck_run": LIMITS.stuck_run},
        "flagged": sum(1 for v in verdicts if v.kinds),
        "readings": [{"observedAt": now_text(from_epoch(ts)), "value": v.value, "z": _round(v.z),
                      "drift_z": _round(v.drift_z), "run": v.run, "kinds": [str(k) for k in v.kinds]}
                     for (ts, _), v in zip(shown, verdicts, strict=True)],
    }


def _round(z: float | None) -> float | None:
    return None if z is None else round(z, 2)
