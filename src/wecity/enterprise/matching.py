"""Matching the register against the policies: in one batch over everything, and incrementally when an
enterprise's data or a policy changes.

Both run the same code: the enterprises concerned are read as columns and every policy is evaluated over
them at once (`policies.evaluate_all`), then `policy_matches` is brought in step — eligible and unknown
outcomes kept with the amount or what is lacking, rows that are now ineligible removed. What a match
changes is what follows from it:

- newly eligible for a 免申即享 policy in force: the grant is due (`grant_due`), made by the runner in
  small transactions (`grant_pending`), each recorded as a decided application with its certificate;
- newly eligible for any other policy: the enterprise is told, once, that it can apply with one click (快申快享);
- the incremental run (`match_pending`, the runner every few seconds) takes the enterprises whose
  `data_version` moved on and the policies whose `version` did, and once a day every active policy again
  (`matched_on`): outcomes move with the day alone, as a policy comes into force or ends, a dated
  parameter changes or an enterprise grows a year older.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.core.outbox import enqueue_many
from wecity.enterprise import catalogue
from wecity.enterprise.models import enterprises, policies, policy_matches
from wecity.enterprise.policies import ELIGIBLE, UNKNOWN, Policy, evaluate_all, money
from wecity.enterprise.register import columns_of, known_variables, register_rows
from wecity.geo.service import city_today
from wecity.govservice.models import applications

log = logging.getLogger(__name__)
PENDING_BATCH = 500       # enterprises per incremental run
REMATCH_CHUNK = 10_000    # enterprises per transaction when the register is matched against a changed policy
# 免申即享 grants per transaction: one grant (its application, e-certificate, audit and notice) takes about
# 5 ms, so a transaction holds the database's one writer for tens of milliseconds, not hundreds.
GRANT_BATCH = 10
GRANTS_PER_ROUND = 50     # grants per run of the periodic task, in GRANT_BATCH-sized transactions


@dataclass
class MatchReport:
    enterprises: int = 0
    policies: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"eligible": 0, "ineligible": 0, "unknown": 0})
    written: int = 0
    removed: int = 0
    newly_eligible: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"enterprises": self.enterprises, "policies": self.policies, "outcomes": self.outcomes,
                "written": self.written, "removed": self.removed, "newly_eligible": self.newly_eligible}


def match(conn: Connection, rows: Sequence[dict[str, Any]], chosen: Sequence[Policy], *, now: datetime,
          whole_register: bool = False, id_range: tuple[int, int | None] | None = None) -> MatchReport:
    """Evaluate `chosen` over the enterprises `rows` (register_rows) and keep what changed."""
    day = city_today(conn, now)
    report = MatchReport(enterprises=len(rows), policies=len(chosen))
    if not rows or not chosen:
        return report
    names: set[str] = set()
    for p in chosen:
        names |= p.names
    ids, columns = columns_of(rows, known_variables(conn), day, names)
    n = len(ids)
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(order, np.arange(n)):  # _keep finds enterprises by binary search
        raise ValueError("the register's rows must come in ascending id order")
    for p in chosen:
        outcomes = evaluate_all(p, columns, n, on=day)
        counts = np.bincount(outcomes.codes, minlength=3)
        report.outcomes["ineligible"] += int(counts[0])
        report.outcomes["eligible"] += int(counts[1])
        report.outcomes["unknown"] += int(counts[2])
        _keep(conn, p, ids, outcomes, now=now, report=report, whole_register=whole_register, id_range=id_range)
    return report


def _keep(conn: Connection, p: Policy, ids: np.ndarray, outcomes: Any, *, now: datetime, report: MatchReport,
          whole_register: bool, id_range: tuple[int, int | None] | None = None) -> None:
    """Bring `policy_matches` for policy `p` and the enterprises `ids` (ascending) in step with `outcomes`.

    Written for the whole register at once (2 million outcomes in the benchmark): only enterprises that
    are not ineligible, or that had a row, are looked at one by one; what is missing is turned into its
    stored JSON text once per combination; new rows go to the driver as tuples of already-converted values
    (SQLAlchemy converting each of millions of rows was a third of the time)."""
    dialect = conn.dialect
    as_json = policy_matches.c.missing.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
    as_time = policy_matches.c.matched_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
    query = sa.select(policy_matches.c.enterprise_id, policy_matches.c.outcome, policy_matches.c.amount,
                      sa.cast(policy_matches.c.missing, sa.Text), policy_matches.c.policy_version
                      ).where(policy_matches.c.policy_code == p.code)
    if id_range is not None:  # a chunk of the register: every enterprise with an id in (after, up to]
        after, up_to = id_range
        query = query.where(policy_matches.c.enterprise_id > after)
        if up_to is not None:
            query = query.where(policy_matches.c.enterprise_id <= up_to)
    elif not whole_register:
        query = query.where(policy_matches.c.enterprise_id.in_(ids.tolist()))
    before = {r[0]: r for r in conn.execute(query)}
    # Per combination of missing variables: the value to bind, and the text both databases store for it
    # (json.dumps, as SQLite's JSON type and psycopg's Json write it), to compare with what is there.
    texts: dict[int, tuple[Any, str]] = {}

    def missing_value(i: int) -> tuple[Any, str]:
        mask = int(outcomes.lacks[i]) if codes[i] == 2 else 0
        if mask not in texts:
            names = list(outcomes.missing(i)) if mask else []
            texts[mask] = (as_json(names), json.dumps(names))
        return texts[mask]

    codes, amounts = outcomes.codes, outcomes.amounts
    matched_at = as_time(now)
    inserts: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    for i in np.flatnonzero(codes != 0).tolist():
        enterprise_id, code = int(ids[i]), int(codes[i])
        outcome = ELIGIBLE if code == 1 else UNKNOWN
        amount = money(float(amounts[i])) if code == 1 and amounts[i] == amounts[i] else None
        missing, missing_text = missing_value(i)
        old = before.get(enterprise_id)
        if old is None:
            inserts.append((enterprise_id, p.code, p.version, outcome, amount, missing, matched_at))
            report.newly_eligible += code == 1
        elif (old[1], old[2], old[3], old[4]) != (outcome, amount, missing_text, p.version):
            newly = old[1] != ELIGIBLE and outcome == ELIGIBLE
            updates.append({"e": enterprise_id, "v": p.version, "o": outcome, "a": amount,
                            "m": list(outcomes.missing(i)) if code == 2 else [], "t": now, "newly": newly})
            report.newly_eligible += newly
    gone: list[int] = []
    if before:
        had = np.fromiter(before, np.int64, count=len(before))
        at = np.searchsorted(ids, had)
        inside = at < len(ids)
        found = np.zeros(len(had), bool)
        found[inside] = ids[at[inside]] == had[inside]
        now_ineligible = np.zeros(len(had), bool)
        now_ineligible[found] = codes[at[found]] == 0
        gone = had[now_ineligible].tolist()
    if inserts:
        marks = ", ".join(["?"] * 7) if dialect.paramstyle == "qmark" else ", ".join(["%s"] * 7)
        conn.exec_driver_sql(
            "INSERT INTO policy_matches (enterprise_id, policy_code, policy_version, outcome, amount, missing, "
            f"matched_at) VALUES ({marks})", inserts)  # type: ignore[arg-type]
    if updates:
        # An enterprise newly eligible is told again (notified_at cleared); one whose amount moved is not.
        for newly in (True, False):
            chunk = [u for u in updates if u["newly"] is newly]
            if not chunk:
                continue
            values: dict[str, Any] = {"policy_version": sa.bindparam("v"), "outcome": sa.bindparam("o"),
                                      "amount": sa.bindparam("a"), "missing": sa.bindparam("m"),
                                      "matched_at": sa.bindparam("t")}
            if newly:
                values["notified_at"] = None
            conn.execute(policy_matches.update().where(
                policy_matches.c.policy_code == p.code, policy_matches.c.enterprise_id == sa.bindparam("e"),
                policy_matches.c.granted_at.is_(None)).values(**values),
                [{k: u[k] for k in ("e", "v", "o", "a", "m", "t")} for u in chunk])
    if gone:
        for begin in range(0, len(gone), 500):
            conn.execute(policy_matches.delete().where(
                policy_matches.c.policy_code == p.code, policy_matches.c.enterprise_id.in_(gone[begin:begin + 500]),
                policy_matches.c.granted_at.is_(None), policy_matches.c.application_id.is_(None)))
    report.written += len(inserts) + len(updates)
    report.removed += len(gone)


def match_all(conn: Connection, *, now: datetime, codes: Sequence[str] | None = None) -> MatchReport:
    """The batch: every active policy (or those named) over the whole register."""
    chosen = [p for p in catalogue.load_all(conn, city_today(conn, now)) if codes is None or p.code in codes]
    rows = register_rows(conn)
    report = match(conn, rows, chosen, now=now, whole_register=True)
    if codes is None:  # every enterprise now matched against every policy
        conn.execute(enterprises.update().values(matched_version=enterprises.c.data_version))
    day = city_today(conn, now)
    for p in chosen:
        conn.execute(policies.update().where(policies.c.code == p.code).values(matched_version=p.version,
                                                                              matched_on=day, match_cursor=None))
    return report


def match_pending(conn: Connection, *, now: datetime) -> MatchReport:
    """The incremental run, one transaction's worth: the next chunk of the register for a policy whose
    version moved on, or that was last matched on an earlier day (its cursor says where it stands); else
    enterprises whose data moved on (a batch of them), against every policy."""
    day = city_today(conn, now)
    stale = conn.execute(sa.select(policies.c.code, policies.c.version, policies.c.match_cursor).where(
        policies.c.active, (policies.c.matched_version < policies.c.version) | policies.c.matched_on.is_(None)
        | (policies.c.matched_on < day))
        .order_by(policies.c.matched_version >= policies.c.version, policies.c.code)).first()
    if stale is not None:
        after = stale.match_cursor or 0
        rows = register_rows(conn, enterprises.c.id > after, limit=REMATCH_CHUNK)
        last = len(rows) < REMATCH_CHUNK
        policy = catalogue.load(conn, stale.code, day)
        report = match(conn, rows, [policy], now=now,
                       id_range=(after, None if last else rows[-1]["id"]))
        report.policies = 1
        conn.execute(policies.update().where(policies.c.code == stale.code, policies.c.version == stale.version).values(
            **({"matched_version": stale.version, "matched_on": day, "match_cursor": None} if last
               else {"match_cursor": rows[-1]["id"]})))
        return report
    changed = register_rows(conn, enterprises.c.matched_version < enterprises.c.data_version, limit=PENDING_BATCH)
    report = MatchReport()
    if changed:
        report = match(conn, changed, catalogue.load_all(conn, day), now=now)
        ids = [r["id"] for r in changed]
        conn.execute(enterprises.update().where(enterprises.c.id.in_(ids))
                     .values(matched_version=enterprises.c.data_version))
    return report


# -- what follows a match -----------------------------------------------------------------------------------

def grant_due(conn: Connection, *, limit: int = GRANT_BATCH) -> list[Any]:
    """Eligible outcomes of 免申即享 policies not yet granted (oldest match first): with no application, or
    one that does not stand in the way (a draft the grant withdraws, one withdrawn or refused)."""
    from wecity.enterprise.benefits import PASSIVE

    return list(conn.execute(
        sa.select(policy_matches.c.enterprise_id, policy_matches.c.policy_code, policy_matches.c.policy_version,
                  policy_matches.c.amount)
        .select_from(policy_matches.join(policies, policies.c.code == policy_matches.c.policy_code)
                     .outerjoin(applications, applications.c.id == policy_matches.c.application_id))
        .where(policy_matches.c.outcome == ELIGIBLE, policies.c.automatic, policies.c.active,
               policy_matches.c.granted_at.is_(None),
               policy_matches.c.application_id.is_(None) | applications.c.status.in_(PASSIVE))
        .order_by(policy_matches.c.matched_at, policy_matches.c.enterprise_id).limit(limit)))


def grant_pending(conn: Connection, *, now: datetime, key_dir: Path | None) -> int:
    """Make the 免申即享 grants that are due (a batch); how many were made. A match that is no longer
    eligible when granted leaves the due list (`benefits.grant` brings its row in step)."""
    from wecity.enterprise import benefits  # the grant's record lives beside the 快申快享 application

    made = 0
    for row in grant_due(conn):
        made += benefits.grant(conn, row.enterprise_id, row.policy_code, now=now, key_dir=key_dir) is not None
    return made


def notify_pending(conn: Connection, *, now: datetime, limit: int = 500) -> int:
    """Tell enterprises newly eligible for a policy they must apply for (once per match), in their inbox."""
    rows = list(conn.execute(
        sa.select(policy_matches.c.enterprise_id, policy_matches.c.policy_code, policy_matches.c.amount,
                  enterprises.c.applicant_id, policies.c.document)
        .join(policies, policies.c.code == policy_matches.c.policy_code)
        .join(enterprises, enterprises.c.id == policy_matches.c.enterprise_id)
        .where(policy_matches.c.outcome == ELIGIBLE, policy_matches.c.notified_at.is_(None),
               sa.not_(policies.c.automatic), policy_matches.c.application_id.is_(None))
        .limit(limit)))
    messages: list[tuple[str, str, dict[str, object]]] = []
    for r in rows:
        amount = f"{r.amount:,.2f}" if r.amount is not None else ""
        messages.append(("in_app", f"applicant:{r.applicant_id}", {
            "title_zh": f"您的企业符合「{r.document['name_zh']}」的条件" + (f"，预计可享 {amount} 元" if amount else "") + "，可一键申报",
            "title_en": f"Your enterprise qualifies for {r.document['name_en']}" + (f" (about CNY {amount})" if amount else "")
                        + ": apply in one click",
            "body": r.policy_code, "link": f"/policies/{r.policy_code}",  # its page offers each of the citizen's firms one click
            "event": "enterprise.policy_eligible", "policy": r.policy_code}))
    if messages:
        enqueue_many(conn, messages, now=now)
        for r in rows:
            conn.execute(policy_matches.update().where(
                policy_matches.c.enterprise_id == r.enterprise_id,
                policy_matches.c.policy_code == r.policy_code).values(notified_at=now))
    return len(rows)
