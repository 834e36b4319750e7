"""The KPI dashboard at a million cases: the figures for any filter (goal p99 < 100 ms) on SQLite and, when
a PostgreSQL server is given (BENCH_PG_URL or WECITY_TEST_PG_URL), on PostgreSQL; the page in Chromium
(goal < 2 s).

A loader writes what the intake and the case engine write for a year of cases (`cases`, `reports`,
`case_events`: submitted, dispatched, acknowledged, started, resolved, rated, verified, closed, with the
returned, re-filed, escalated and reopened cases a city has), in large batches through SQLAlchemy. The
rollup is then rebuilt from those events by `wecity.insight.rollup.rebuild` (timed: what `wecity insight
rebuild` costs at this size). Timed: `queries.figures` with the process's copy of the rollup (as the API
and the pages call it) — the KPIs and their previous period, open and overdue cases now, the next level of
the drill-down — for 300 filters drawn at random (periods of 1 to 366
days ending on random days; no filter, or a district, department, category and channel in any
combination), each on a connection of its own pool as the API uses it. Ceiling: the same rollup sum as one
raw SELECT with the driver (what a hand-written dashboard would run for the KPIs alone).

BENCH_INSIGHT_CASES changes the size (default 1,000,000); BENCH_INSIGHT_BACKENDS=sqlite or postgresql runs one.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bench._common import free_port, pg_admin_url, row, workdir

CASES = int(os.environ.get("BENCH_INSIGHT_CASES", "1000000"))
CALLS = 300
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
BATCH = 20_000
CHANNELS = ("portal", "portal", "open311", "hotline", "sensor", "enterprise")


def _events_of(rng: random.Random, case_id: int, opened: datetime, dept: int, code: str, other_code: str,
               now: datetime) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """The events a case's life writes, and the case's final state."""
    events: list[dict[str, Any]] = []

    def add(at: datetime, event: str, **extra: Any) -> None:
        events.append({"case_id": case_id, "at": at, "event": event, "actor": "system", "channel": "system",
                       "department_id": extra.pop("department_id", dept), "public": True, "detail": None,
                       "reason": None, **extra})

    add(opened, "submitted", department_id=None, detail={"area_id": 0})
    add(opened, "dispatched", detail={"rule": "category x area"})
    add(opened, "report_added", department_id=None, detail={"report_id": case_id})
    state: dict[str, Any] = {"status": "dispatched", "category_code": code, "closed_at": None, "resolved_at": None,
                             "acknowledged_at": None, "ack_due_at": opened + timedelta(hours=1),
                             "resolve_due_at": opened + timedelta(days=3)}
    t = opened
    if rng.random() < 0.01:
        t += timedelta(minutes=20)
        add(t, "recategorised", detail={"from": code, "to": other_code})
        state["category_code"] = other_code
    if rng.random() < 0.03:
        t += timedelta(minutes=30)
        add(t, "returned", reason="not_our_duty")
        t += timedelta(minutes=40)
        add(t, "dispatched")
    ack = t + timedelta(minutes=rng.choice([5, 10, 20, 40, 90]))
    if ack > now:
        return "dispatched", events, state
    if ack > state["ack_due_at"]:
        add(state["ack_due_at"], "ack_escalated")
    add(ack, "acknowledged")
    state.update(status="acknowledged", acknowledged_at=ack)
    add(ack + timedelta(minutes=30), "started")
    state["status"] = "in_progress"
    done = ack + timedelta(hours=rng.choice([2, 6, 12, 24, 48, 90]))
    if done > now:
        return "in_progress", events, state
    if done > state["resolve_due_at"]:
        add(state["resolve_due_at"], "resolve_escalated")
    add(done, "resolved")
    state.update(status="resolved", resolved_at=done)
    t = done + timedelta(hours=rng.uniform(1, 20))
    if t > now:
        return "resolved", events, state
    if rng.random() < 0.6:
        stars = rng.choices([5, 4, 3, 2, 1], [55, 25, 10, 6, 4])[0]
        add(t, "rated", department_id=None, detail={"stars": stars, "tags": ["没解决"] if stars <= 2 else []})
    add(t, "verified")
    add(t + timedelta(hours=1), "closed")
    state.update(status="closed", closed_at=t + timedelta(hours=1))
    if rng.random() < 0.01 and t + timedelta(days=1) < now:
        add(t + timedelta(days=1), "reopened")
        state.update(status="dispatched", closed_at=None)
    return str(state["status"]), events, state


def _load(url: str, n: int) -> tuple[float, int]:
    """A year of `n` cases with their reports and events; returns (seconds, events written)."""
    from wecity.cases.models import cases, categories, reports, timeline
    from wecity.core.db import Database
    from wecity.demo.changsha import seed_city
    from wecity.geo.models import areas

    db = Database(url, pool_size=1)
    start = time.perf_counter()
    written = 0
    try:
        def setup(conn: sa.Connection) -> tuple[list[Any], list[int]]:
            seed_city(conn, NOW)
            return (list(conn.execute(sa.select(categories.c.code, categories.c.department_id)).all()),
                    [r[0] for r in conn.execute(sa.select(areas.c.id))])

        codes, area_ids = db.write_sync(setup)
        rng = random.Random(17)
        first = 1
        while first <= n:
            last = min(n, first + BATCH - 1)
            case_rows, report_rows, event_rows = [], [], []
            for case_id in range(first, last + 1):
                # Evenly over the year, a little more recently (a city that grows).
                opened = NOW - timedelta(days=365 * (1 - (case_id / n) ** 0.9), minutes=rng.uniform(0, 600))
                code, dept = rng.choice(codes)
                other = rng.choice(codes)[0]
                status, events, state = _events_of(rng, case_id, opened, dept or 1, code, other, NOW)
                case_rows.append({"id": case_id, "category_code": state["category_code"], "status": status,
                                  "department_id": dept, "area_id": rng.choice(area_ids),
                                  "lat": 28.19 + rng.random() / 10, "long": 112.97 + rng.random() / 10,
                                  "description": "路面破损", "source": "sensor" if rng.random() < 0.05 else "citizen",
                                  "created_at": opened, "updated_at": opened, "dispatched_at": opened,
                                  "acknowledged_at": state["acknowledged_at"], "resolved_at": state["resolved_at"],
                                  "closed_at": state["closed_at"], "ack_due_at": state["ack_due_at"],
                                  "resolve_due_at": state["resolve_due_at"]})
                channel = rng.choice(CHANNELS)
                case_rows[-1]["channel"] = channel
                report_rows.append({"id": case_id, "case_id": case_id, "token": f"b{case_id:09d}", "service_code": code,
                                    "description": "路面破损", "channel": channel, "requested_at": opened,
                                    "updated_at": opened})
                event_rows.extend(events)
            db.write_sync(lambda c, a=case_rows, b=report_rows, e=event_rows: (
                c.execute(cases.insert(), a), c.execute(reports.insert(), b), c.execute(timeline.insert(), e)))
            written += len(event_rows)
            first = last + 1
        return time.perf_counter() - start, written
    finally:
        db.close()


def _filters(rng: random.Random, codes: dict[str, list[str]]) -> Any:
    from wecity.insight.queries import Filters

    days = rng.choice([1, 7, 7, 30, 30, 30, 90, 180, 366])
    end = NOW.date() - timedelta(days=rng.randint(0, 60))
    pick = {name: (rng.choice(values) if rng.random() < 0.35 else None) for name, values in codes.items()}
    return Filters(end - timedelta(days=days - 1), end, **pick)


def _measure(url: str) -> dict[str, Any]:
    from wecity.core.db import Database
    from wecity.geo.models import areas
    from wecity.identity.models import departments
    from wecity.insight import queries
    from wecity.insight.frame import RollupFrame
    from wecity.insight.rollup import rebuild

    db = Database(url, pool_size=2)
    try:
        started = time.perf_counter()
        covered = db.write_sync(lambda c: rebuild(c, now=NOW))
        rebuilt = time.perf_counter() - started
        codes = db.read_sync(lambda c: {
            "district": [r[0] for r in c.execute(sa.select(areas.c.code))],
            "department": [r[0] for r in c.execute(sa.select(departments.c.code))],
            "category": [r[0] for r in c.execute(sa.text("SELECT code FROM categories"))],
            "channel": list(dict.fromkeys(CHANNELS))})
        rng = random.Random(5)
        filters = [_filters(rng, codes) for _ in range(CALLS)]
        copy = RollupFrame()  # the process's copy of the rollup, as the API and the pages use it
        t0 = time.perf_counter()
        db.read_sync(copy.current)
        first_read = time.perf_counter() - t0
        for f in filters[:20]:  # warm the caches
            db.read_sync(lambda c, f=f: queries.figures(c, f, NOW, copy.current(c)))
        times, raw_times = [], []
        for f in filters:
            t0 = time.perf_counter()
            db.read_sync(lambda c, f=f: queries.figures(c, f, NOW, copy.current(c)))
            times.append(time.perf_counter() - t0)
        rows = db.read_sync(lambda c: c.execute(sa.text("SELECT count(*) FROM insight_daily")).scalar_one())
        raw = sa.create_engine(url)
        with raw.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            mark = "?" if conn.dialect.name == "sqlite" else "%s"
            sql = (f"SELECT sum(received), sum(resolved), sum(resolved_on_time), sum(rated), sum(solved) "
                   f"FROM insight_daily WHERE day BETWEEN {mark} AND {mark}")
            for f in filters:
                t0 = time.perf_counter()
                cursor.execute(sql, (f.start.isoformat() if conn.dialect.name == "sqlite" else f.start,
                                     f.end.isoformat() if conn.dialect.name == "sqlite" else f.end))
                cursor.fetchall()
                raw_times.append(time.perf_counter() - t0)
        raw.dispose()
        return {"rebuild": rebuilt, "events": covered, "rollup_rows": rows, "times": times, "raw": raw_times,
                "first_read": first_read}
    finally:
        db.close()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _page_seconds(url: str, tmp: Any) -> float:
    """Seconds Chromium takes to load /insight (the city's last 30 days) to its load event, median of 5."""
    from bench._common import wecity_server

    env = {**os.environ, "WECITY_DATABASE_URL": url, "WECITY_VAR_DIR": str(tmp), "WECITY_SECRET_KEY": "b" * 40}
    from playwright.sync_api import sync_playwright

    with wecity_server(port=free_port(), env=env, log_path=tmp / "server.log", runner=False) as server, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page()
        page.goto(f"{server.url}/login")
        page.fill("#username", "supervisor")
        page.fill("#password", "wecity-demo")
        page.locator("form button[type=submit]").last.click()
        page.wait_for_url("**/staff")
        took = []
        for _ in range(6):
            t0 = time.perf_counter()
            page.goto(f"{server.url}/insight", wait_until="load")
            took.append(time.perf_counter() - t0)
        browser.close()
    return statistics.median(took[1:])


def run() -> list[dict[str, Any]]:
    out = []
    backends = [("SQLite", None)] + ([("PostgreSQL", pg_admin_url())] if pg_admin_url() else [])
    only = os.environ.get("BENCH_INSIGHT_BACKENDS")  # e.g. "PostgreSQL": one of them
    backends = [b for b in backends if not only or b[0].lower() in only.lower().split(",")]
    for name, admin in backends:
        with workdir(f"insight-{name.lower()}") as tmp:
            if admin is None:
                url = f"sqlite:///{tmp / 'city.db'}"
                drop = None
            else:
                url, drop = _pg_database(admin)
            try:
                from wecity.core.db import Database
                from wecity.core.migrate import upgrade

                setup = Database(url, pool_size=1)
                upgrade(setup.engine)
                setup.close()
                loaded, events = _load(url, CASES)
                m = _measure(url)
                page = _page_seconds(url, tmp) if name == "SQLite" else None
            finally:
                if drop:
                    drop()
        p99, p50 = _p(m["times"], 0.99) * 1000, _p(m["times"], 0.5) * 1000
        ceiling = _p(m["raw"], 0.99) * 1000
        result = row(f"KPI figures for a random filter, {CASES:,} cases ({name})", p99, "ms p99", ceiling=ceiling,
                     ceiling_unit="ms p99", goal="p99 < 100 ms",
                     note=f"p50 {p50:.1f} ms over {CALLS} filters; {events:,} events loaded in {loaded:.0f} s; rollup "
                          f"rebuilt from them in {m['rebuild']:.0f} s ({m['rollup_rows']:,} rows), read into the process's "
                          f"copy in {m['first_read']:.2f} s (once; then only the days that change); ceiling: the "
                          "KPI sums alone as one raw SELECT over the rollup's rows of the period")
        result["met"] = p99 < 100
        out.append(result)
        if page is not None:
            out.append(row(f"/insight in Chromium, {CASES:,} cases ({name})", page * 1000, "ms", goal="< 2 s",
                           note="load event, median of 5 after a first load; the last 30 days, whole city"))
            out[-1]["met"] = page < 2
    return out


def _pg_database(admin: str) -> tuple[str, Any]:
    from sqlalchemy.engine import make_url

    name = f"wecity_bench_insight_{os.getpid()}"
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()

    return make_url(admin).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
