"""Under PostgreSQL, a report and a merge (or a closure) of the case it would join may run at once: the
report joins only a case still open once the other has committed, else it opens a case of its own."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.choices import CaseStatus
from wecity.cases.intake import IntakeResult, NewReport, submit_report
from wecity.cases.models import reports
from wecity.geo.service import load_area_index

from ..conftest import City
from .conftest import WUYI_SQUARE, Staff, case_row, open_case


def _waiting_for_a_lock(city: City) -> bool:
    with city.db.engine.connect() as conn:
        return bool(conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND datname = current_database()")).scalar())


def test_a_report_does_not_join_a_case_merged_while_it_was_filed(city: City, staff: Staff) -> None:
    if city.backend != "postgres":
        pytest.skip("SQLite has one writer: the report and the merge cannot overlap")
    near = open_case(city)                           # the report below is 0 m from it
    survivor = open_case(city, lat=WUYI_SQUARE[0] + 0.01)  # 1 km north: no candidate for the report
    index = city.db.read_sync(load_area_index)
    report = NewReport(service_code="manhole", lat=WUYI_SQUARE[0], long=WUYI_SQUARE[1], description="又一个",
                       attributes={"cover_state": "missing"})
    filed: list[IntakeResult] = []

    def file() -> None:
        with city.db.engine.begin() as conn:
            filed.append(submit_report(conn, report, area_index=index, now=city.clock.now()))

    with city.db.engine.connect() as merging:
        with merging.begin():
            engine.merge(merging, near, survivor, staff.dispatcher, city.clock.now())
            other = threading.Thread(target=file)
            other.start()
            for _ in range(100):  # the report read its candidate, then waits for the merge's lock
                if _waiting_for_a_lock(city):
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the report never waited for the merge")
        other.join(timeout=30)
    [result] = filed
    assert case_row(city, near).status == CaseStatus.MERGED
    assert not result.merged and result.case_id not in (near, survivor)
    joined = city.db.read_sync(lambda c: c.execute(sa.select(reports.c.case_id).where(
        reports.c.id == result.report_id)).scalar_one())
    assert joined == result.case_id and case_row(city, joined).status == CaseStatus.DISPATCHED
