"""The KPIs recomputed from the event log match the dashboard: a month of the demo city's history, some
cases then re-filed, returned and reopened, the rollup kept by the runner's consumer in small batches
(and rebuilt in full), against a count written here straight from the definitions in docs/insight.md."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from wecity.cases import engine
from wecity.cases.models import cases, reports, timeline
from wecity.geo.models import areas
from wecity.geo.service import city_timezone
from wecity.identity.models import departments, users
from wecity.identity.service import get_user
from wecity.insight import queries
from wecity.insight.frame import Frame, RollupFrame, load
from wecity.insight.kpis import KPIS
from wecity.insight.models import insight_daily
from wecity.insight.rollup import consume, rebuild

from ..conftest import City


def _seed(city: City) -> None:
    from wecity.demo.history import seed_history

    city.db.write_sync(lambda c: seed_history(c, city.clock.now(), None, seed=11))


def _staff(conn: sa.Connection, username: str) -> engine.Actor:
    user = get_user(conn, conn.execute(sa.select(users.c.id).where(users.c.username == username)).scalar_one())
    assert user is not None
    return engine.Actor.staff(user)


def _stir(city: City) -> None:
    """Re-file, return and reopen a few cases, as staff do, after the rollup has counted their earlier events."""
    now = city.clock.now()

    def act(conn: sa.Connection) -> None:
        dispatcher = _staff(conn, "dispatcher")
        open_ids = [r[0] for r in conn.execute(sa.select(cases.c.id).where(
            cases.c.status.in_(("dispatched", "returned"))).order_by(cases.c.id).limit(6))]
        for case_id in open_ids[:3]:
            current = conn.execute(sa.select(cases.c.category_code).where(cases.c.id == case_id)).scalar_one()
            engine.recategorise(conn, case_id, "other" if current != "other" else "garbage", dispatcher, now)
        closed = [r[0] for r in conn.execute(sa.select(cases.c.id).where(cases.c.status == "closed",
                                                                        cases.c.closed_at >= now - timedelta(days=5))
                                             .order_by(cases.c.id).limit(2))]
        for case_id in closed:
            engine.reopen(conn, case_id, dispatcher, now, note="群众反映未解决")

    city.db.write_sync(act)


def _recount(conn: sa.Connection) -> dict[tuple[date, int, int, str, str], dict[str, int]]:
    """The counters straight from the definitions, walking each case's events forwards (the rollup walks
    the categories backwards; two ways to one answer)."""
    zone = city_timezone(conn)
    channel_of: dict[int, str] = {}
    for case_id, channel in conn.execute(sa.select(reports.c.case_id, reports.c.channel).order_by(reports.c.id)):
        channel_of.setdefault(case_id, channel)
    facts = {r.id: r for r in conn.execute(sa.select(cases.c.id, cases.c.category_code, cases.c.department_id,
                                                     cases.c.area_id, cases.c.source))}
    events: dict[int, list[Any]] = defaultdict(list)
    for e in conn.execute(sa.select(timeline).order_by(timeline.c.id)):
        events[e.case_id].append(e)
    out: dict[tuple[date, int, int, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case_id, case_events in events.items():
        case = facts[case_id]
        refilings = [e for e in case_events if e.event == "recategorised"]
        category = refilings[0].detail["from"] if refilings else case.category_code
        dispatched = [e.department_id for e in case_events if e.event == "dispatched" and e.department_id]
        department = dispatched[0] if dispatched else case.department_id
        ack_escalated = resolve_escalated = False
        for e in case_events:
            if e.event in ("dispatched", "transferred", "reopened"):
                ack_escalated = resolve_escalated = False
            if e.department_id is not None:
                department = e.department_id
            key = (e.at.astimezone(zone).date(), case.area_id or 0, department or 0, category,
                   channel_of.get(case_id, case.source))
            counts = out[key]
            if e.event == "submitted":
                counts["received"] += 1
            elif e.event == "acknowledged":
                counts["acknowledged"] += 1
                counts["acknowledged_on_time"] += not ack_escalated
            elif e.event == "resolved":
                counts["resolved"] += 1
                counts["resolved_on_time"] += not resolve_escalated
            elif e.event == "closed":
                counts["closed"] += 1
            elif e.event == "rated":
                stars, tags = e.detail["stars"], set(e.detail.get("tags") or [])
                counts["rated"] += 1
                counts["stars"] += stars
                counts["satisfied"] += stars >= 4
                counts["solved"] += stars >= 3 and not tags & {"not_fixed", "没解决", "未解决"}
            elif e.event in ("returned", "recategorised", "reopened", "merged", "verification_failed"):
                counts[e.event] += 1
            elif e.event == "citizen_urged":
                counts["urged"] += 1
            elif e.event in ("ack_escalated", "resolve_escalated"):
                counts["escalated"] += 1
                ack_escalated = ack_escalated or e.event == "ack_escalated"
                resolve_escalated = resolve_escalated or e.event == "resolve_escalated"
            if e.event == "recategorised":
                category = e.detail["to"]
    return out


def _sums(recount: dict[Any, dict[str, int]], keep: Any) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for key, counts in recount.items():
        if keep(key):
            for name, n in counts.items():
                total[name] += n
    return total


def _rollup(conn: sa.Connection) -> dict[tuple[Any, ...], dict[str, int]]:
    rows = conn.execute(sa.select(insight_daily)).all()
    return {(r.day, r.area_id, r.department_id, r.category_code, r.channel):
            {k: v for k, v in r._mapping.items() if k not in ("day", "area_id", "department_id", "category_code",
                                                               "channel") and v} for r in rows}


def _frame_rows(frame: Frame) -> list[tuple[Any, ...]]:
    return sorted((int(d), int(a), int(p), frame.categories[c], frame.channels[ch], tuple(map(int, counts)))
                  for d, a, p, c, ch, counts in zip(frame.day, frame.area, frame.department, frame.category,
                                                     frame.channel, frame.counts, strict=True))


def test_every_kpi_recomputed_from_the_event_log_matches_the_dashboard(city: City) -> None:
    now = city.clock.now()
    _seed(city)
    # The runner's consumer, in small batches, catches up with the history...
    while city.db.write_sync(lambda c: consume(c, now=now, batch=997)):
        pass
    copy = RollupFrame()
    before = city.db.read_sync(copy.current)
    assert city.db.read_sync(copy.current) is before  # nothing changed: nothing read again
    # ...then staff re-file, return and reopen cases whose earlier events it has already counted.
    city.clock.advance(hours=2)
    _stir(city)
    later = city.clock.now()
    assert city.db.write_sync(lambda c: consume(c, now=later)) > 0
    assert city.db.write_sync(lambda c: consume(c, now=later)) == 0
    recount = city.db.read_sync(_recount)
    kept = city.db.read_sync(_rollup)
    assert kept == {k: {n: v for n, v in counts.items() if v} for k, counts in recount.items()
                    if any(counts.values())}
    assert sum(c.get("recategorised", 0) for c in kept.values()) == 3
    assert sum(c.get("reopened", 0) for c in kept.values()) >= 1
    # A process's copy in memory, taken before the staff acted, read only the days they touched again and
    # is the table as it is now.
    assert city.db.read_sync(copy.current) is not before  # it did read something again
    assert _frame_rows(city.db.read_sync(copy.current)) == _frame_rows(city.db.read_sync(
        lambda c: Frame.from_rows(load(c))))
    # A rebuild from nothing gives the same rollup.
    city.db.write_sync(lambda c: rebuild(c, now=later))
    assert city.db.read_sync(_rollup) == kept

    # The dashboard's figures, for the whole city and for each kind of filter, are the recount's.
    ids = city.db.read_sync(lambda c: {
        "district": dict(c.execute(sa.select(areas.c.code, areas.c.id)).all()),
        "department": dict(c.execute(sa.select(departments.c.code, departments.c.id)).all())})
    today = later.astimezone(city.db.read_sync(city_timezone)).date()
    furong = city.db.read_sync(lambda c: c.execute(sa.select(areas.c.code).where(areas.c.name_zh == "芙蓉区")).scalar_one())
    views = [
        (queries.Filters(today - timedelta(days=29), today), lambda k: True),
        (queries.Filters(today - timedelta(days=6), today), lambda k: True),
        (queries.Filters(today - timedelta(days=29), today, district=furong),
         lambda k: k[1] == ids["district"][furong]),
        (queries.Filters(today - timedelta(days=29), today, department="chengguan"),
         lambda k: k[2] == ids["department"]["chengguan"]),
        (queries.Filters(today - timedelta(days=29), today, category="other"), lambda k: k[3] == "other"),
        (queries.Filters(today - timedelta(days=29), today, channel="portal"), lambda k: k[4] == "portal"),
    ]
    for f, keep in views:
        shown = city.db.read_sync(lambda c, f=f: queries.figures(c, f, later))
        expected = _sums(recount, lambda k, f=f, keep=keep: f.start <= k[0] <= f.end and keep(k))
        for kpi, row in zip(KPIS, shown["kpis"], strict=True):
            assert row["code"] == kpi.code and row["value"] == kpi.value(expected), (f, kpi.code)
        before = _sums(recount, lambda k, f=f, keep=keep: f.previous().start <= k[0] <= f.previous().end and keep(k))
        assert [r["previous"] for r in shown["kpis"]] == [k.value(before) for k in KPIS]
    month = city.db.read_sync(lambda c: queries.figures(c, views[0][0], later))
    assert month["kpis"][0]["value"] > 150  # the month's cases are there: the comparison is not of zeros


@pytest.mark.parametrize("batch", [1, 50])
def test_the_consumer_waits_at_a_gap_then_passes_it(sqlite_city: City, batch: int) -> None:
    """An event id that is not there yet (a transaction still open on PostgreSQL) holds the cursor back for a
    minute; after that it is taken for a rolled-back insert and passed."""
    from wecity.insight.models import insight_cursor

    city = sqlite_city
    now = city.clock.now()
    _seed(city)
    last = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.max(timeline.c.id))).scalar_one())
    city.db.write_sync(lambda c: c.execute(timeline.delete().where(timeline.c.id == last - 5)))  # a hole
    while city.db.write_sync(lambda c: consume(c, now=now, batch=batch)):
        pass
    position = city.db.read_sync(lambda c: c.execute(sa.select(insight_cursor.c.position)).scalar_one())
    assert position == last - 6
    assert city.db.write_sync(lambda c: consume(c, now=now + timedelta(seconds=30), batch=batch)) == 0
    assert city.db.write_sync(lambda c: consume(c, now=now + timedelta(seconds=61), batch=batch)) > 0
    while city.db.write_sync(lambda c: consume(c, now=now + timedelta(seconds=62), batch=batch)):
        pass
    assert city.db.read_sync(lambda c: c.execute(sa.select(insight_cursor.c.position)).scalar_one()) == last


def test_a_gap_that_has_waited_is_passed_and_the_next_gap_waits_its_own_time() -> None:
    """Two gaps in one batch (105 and 108 not there yet): once 105 has waited its minute it is passed, but
    the reader stops at 108, which it only sees now, rather than passing it too and never counting 108."""
    from datetime import UTC, datetime

    from wecity.cases.event_feed import in_order

    now = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    ids = [100, 101, 102, 103, 104, 106, 107, 109]
    assert in_order(ids, 99, None, now) == (104, now)
    assert in_order(ids[5:], 104, now - timedelta(seconds=30), now) == (104, now - timedelta(seconds=30))
    assert in_order(ids[5:], 104, now - timedelta(seconds=61), now) == (107, now)
    # The gap waited for was filled meanwhile (the reader stood at 99): the next one is new.
    assert in_order(ids, 99, now - timedelta(seconds=61), now) == (104, now)
    assert in_order([106, 107, 108], 104, now - timedelta(seconds=61), now) == (108, None)
    assert in_order([105, 106, 108], 104, now - timedelta(seconds=10), now) == (106, now)  # a new gap: a new wait


def test_a_process_s_copy_never_goes_back_to_an_older_snapshot(sqlite_city: City) -> None:
    """A request whose read began before the latest change (its snapshot older than the one the copy has
    already taken) keeps the copy as it is: it neither reloads the whole rollup nor moves it back."""
    from wecity.insight.models import insight_changes

    city = sqlite_city
    now = city.clock.now()
    _seed(city)
    while city.db.write_sync(lambda c: consume(c, now=now, batch=997)):
        pass
    copy = RollupFrame()
    taken = city.db.read_sync(copy.current)
    latest = city.db.read_sync(lambda c: c.execute(sa.select(sa.func.max(insight_changes.c.seq))).scalar_one())
    assert latest > 1

    def older_snapshot(c: sa.Connection) -> Frame:  # as a snapshot from before the last change sees it
        c.execute(insight_changes.delete().where(insight_changes.c.seq == latest))
        try:
            return copy.current(c)
        finally:
            c.rollback()

    with city.db.engine.connect() as conn:
        assert older_snapshot(conn) is taken
    assert city.db.read_sync(copy.current) is taken  # and nothing to catch up with afterwards


def test_the_cases_behind_received_are_the_ones_the_figure_counts(city: City) -> None:
    """The list behind "received" counts as the rollup does: a re-filed case under the category it was
    received in, a case under the department it was first sent to, a case later merged still received."""
    _seed(city)
    city.clock.advance(hours=2)
    _stir(city)  # three cases re-filed to "other" (or from it)
    now = city.clock.now()

    def merge_one(conn: sa.Connection) -> None:
        a, b = conn.execute(sa.select(cases.c.id).where(cases.c.status.in_(("dispatched", "acknowledged")))
                            .order_by(cases.c.id.desc()).limit(2)).scalars().all()
        engine.merge(conn, a, b, _staff(conn, "dispatcher"), now)

    city.db.write_sync(merge_one)
    while city.db.write_sync(lambda c: consume(c, now=now, batch=997)):
        pass
    today = now.astimezone(city.db.read_sync(city_timezone)).date()
    moved = city.db.read_sync(lambda c: c.execute(sa.select(timeline.c.detail).where(
        timeline.c.event == "recategorised")).scalars().all())
    left = {d["from"] for d in moved}
    assert left
    for f in [queries.Filters(today - timedelta(days=29), today),
              *[queries.Filters(today - timedelta(days=29), today, category=code) for code in sorted(left | {"other"})],
              queries.Filters(today - timedelta(days=29), today, department="chengguan"),
              queries.Filters(today - timedelta(days=6), today, channel="portal")]:
        shown = city.db.read_sync(lambda c, f=f: queries.figures(c, f, now))
        listed = city.db.read_sync(lambda c, f=f: queries.case_list(c, f, now, which="received", limit=100_000))
        assert len(listed) == shown["counters"]["received"], f
