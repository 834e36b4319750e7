"""The demo city: 30 days of history through the real engine, sensors and rules, every state present."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from wecity.cases.choices import CaseStatus
from wecity.core.db import Database
from wecity.core.migrate import upgrade
from wecity.core.settings import Settings
from wecity.demo.seed import seed_demo

NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)  # 11:00 in Changsha


def test_demo_history_is_lived_in(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'demo.db'}", media_dir=tmp_path / "media",
                        secret_key="x" * 40, var_dir=tmp_path)
    db = Database(settings.database_url)
    upgrade(db.engine)
    keys = db.write_sync(lambda c: seed_demo(c, NOW, settings))
    assert set(keys) == {"open311", "sensors", "dashboards"} and all(k.startswith("wk_") for k in keys.values())
    with db.engine.connect() as conn:
        statuses = dict(conn.exec_driver_sql("SELECT status, count(*) FROM cases GROUP BY status").all())
        for status in (CaseStatus.DISPATCHED, CaseStatus.ACKNOWLEDGED, CaseStatus.RETURNED, CaseStatus.IN_PROGRESS,
                       CaseStatus.RESOLVED, CaseStatus.VERIFIED, CaseStatus.CLOSED):
            assert statuses.get(status.value, 0) >= 1, status
        assert sum(statuses.values()) > 200
        districts = conn.exec_driver_sql("SELECT count(DISTINCT area_id) FROM cases").scalar()
        categories = conn.exec_driver_sql("SELECT count(DISTINCT category_code) FROM cases").scalar()
        assert districts >= 5 and categories >= 12
        days = conn.exec_driver_sql("SELECT min(created_at), max(created_at) FROM cases").one()
        first, last = (datetime.fromisoformat(str(d)) for d in days)
        assert (last - first).days >= 28
        assert conn.exec_driver_sql("SELECT count(*) FROM ratings").scalar() > 50
        assert conn.exec_driver_sql("SELECT count(*) FROM reports WHERE media_ids IS NOT NULL").scalar() > 50
        events = dict(conn.exec_driver_sql("SELECT event, count(*) FROM case_events GROUP BY event").all())
        assert events["report_merged"] > 0 and events["ack_escalated"] > 0 and events["returned"] > 0
        # Nothing in the history breaks the engine's own rules: every closed case was verified first.
        unverified = conn.execute(sa.text(
            "SELECT count(*) FROM cases c WHERE c.status = 'closed' AND NOT EXISTS "
            "(SELECT 1 FROM case_events e WHERE e.case_id = c.id AND e.event = 'verified')")).scalar()
        assert unverified == 0
        entities = conn.exec_driver_sql("SELECT count(*) FROM ngsild_entities").scalar()
        rules = conn.exec_driver_sql("SELECT count(*) FROM sensor_rules").scalar()
        # Data sharing in every state, with readings under the grants and refusals after expiry or revocation.
        states = dict(conn.exec_driver_sql("SELECT state, count(*) FROM data_requests GROUP BY state").all())
        assert set(states) == {"submitted", "granted", "refused", "withdrawn"}
        assert conn.exec_driver_sql("SELECT count(*) FROM data_requests WHERE escalated_at IS NOT NULL").scalar() == 1
        grants = conn.exec_driver_sql("SELECT revoked_at IS NOT NULL, expires_at < ?, count(*) FROM data_grants "
                                      "GROUP BY 1, 2", (NOW.isoformat(),)).all()
        assert {(bool(r), bool(e)) for r, e, _ in grants} == {(False, False), (False, True), (True, False)}
        outcomes = dict(conn.exec_driver_sql("SELECT outcome, count(*) FROM data_accesses GROUP BY outcome").all())
        assert outcomes["ok"] >= 8 and outcomes["expired"] == 1 and outcomes["revoked"] == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM data_disclosures").scalar() > 0
    assert rules == 3
    assert entities == 100
    db.close()
