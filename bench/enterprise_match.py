"""The batch match of enterprise policies: 100,000 enterprises x 50 policies (goal < 60 s), beside evaluating
the same rules one enterprise at a time.

The register is drawn as the demo draws it (`wecity.demo.enterprises`: industries, sizes, districts, facts,
one record in ten lacking a figure) and written straight into the tables in large batches; the policies
are the 12 demo policies and 38 variants of them (their numeric parameters scaled by 0.7 to 1.3, so that
outcomes differ), imported through `import_policies`. Timed:

- `match_all` as `wecity enterprise match` runs it, on an empty `policy_matches`: reading the register,
  evaluating the 50 policies over it as arrays, writing every eligible and unknown outcome, one transaction;
- then again with nothing changed (the nightly re-run: everything evaluated, nothing written);
- beside them, `policies.evaluate` (the one-enterprise evaluator, with its trace) over a sample of 5,000
  enterprises x 50 policies, scaled to 100,000: what the batch would take one enterprise at a time.

BENCH_ENTERPRISES changes the size of the register (default 100,000). SQLite (the embedded default).
"""

from __future__ import annotations

import copy
import os
import random
import time
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench._common import row, workdir

GOAL = "< 60 s"
POLICIES = 50
SAMPLE = 5_000
NOW = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def _variants(document: dict[str, Any], count: int, rng: random.Random) -> list[dict[str, Any]]:
    base = document["policies"]
    out = list(base)
    k = 0
    while len(out) < count:
        p = copy.deepcopy(base[k % len(base)])
        p["code"] = f"{p['code']}-v{k // len(base) + 1}"
        for name, value in list((p.get("parameters") or {}).items()):
            if isinstance(value, int | float) and not isinstance(value, bool):
                p["parameters"][name] = round(value * rng.uniform(0.7, 1.3), 4)
        out.append(p)
        k += 1
    return out


def _build(url: str, n: int) -> float:
    from wecity.core.db import Database
    from wecity.demo.changsha import seed_city
    from wecity.demo.enterprises import _enterprise, _first17, seed_enterprises
    from wecity.enterprise.catalogue import import_policies, packaged_demo_policies
    from wecity.enterprise.codes import uscc_check_character
    from wecity.enterprise.models import enterprises
    from wecity.enterprise.register import check_profile, districts, known_variables
    from wecity.identity.models import applicants

    start = time.perf_counter()
    db = Database(url, pool_size=1)
    rng = random.Random(7)

    def seed(conn: sa.Connection) -> None:
        seed_city(conn, NOW)
        seed_enterprises(conn, NOW, count=0)  # departments, matters, the 12 policies
        document = packaged_demo_policies()
        import_policies(conn, {**document, "policies": _variants(document, POLICIES, rng)}, now=NOW, actor="bench")
        known, variables = districts(conn), known_variables(conn)
        first_applicant = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(applicants.c.id), 0))).scalar_one()) + 1
        seen: set[str] = set()
        people, firms = [], []
        i = 0
        while i < n:
            data = _enterprise(rng, i, NOW)
            first17 = _first17(rng, data["district"], i)
            code = first17 + uscc_check_character(first17)
            if code in seen:
                continue
            seen.add(code)
            data["credit_code"] = code
            profile, facts, errors = check_profile(data, districts=known, variables=variables)
            assert not errors, errors
            applicant_id = first_applicant + i
            people.append({"id": applicant_id, "kind": "enterprise", "credit_code": code, "display_name": data["name"],
                           "profile": {}, "created_at": NOW})
            firms.append({**{k: profile.get(k) for k in ("credit_code", "name", "legal_form", "industry_code",
                                                         "district", "registered_on", "registered_capital", "employees",
                                                         "revenue", "total_assets", "tax_credit_grade", "size_class")},
                          "certificates": profile.get("certificates") or [], "tags": [], "facts": facts,
                          "applicant_id": applicant_id, "created_at": NOW, "updated_at": NOW, "data_version": 1,
                          "matched_version": 0})
            i += 1
            if len(firms) == 20_000 or i == n:
                conn.execute(applicants.insert(), people)
                conn.execute(enterprises.insert(), firms)
                people, firms = [], []

    db.write_sync(seed)
    db.close()
    return time.perf_counter() - start


def run() -> list[dict[str, Any]]:
    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.enterprise import catalogue
    from wecity.enterprise.matching import local_day, match_all
    from wecity.enterprise.policies import evaluate
    from wecity.enterprise.register import register_rows, variables_of

    n = int(os.environ.get("BENCH_ENTERPRISES", "100000"))
    with workdir("enterprise") as tmp:
        url = f"sqlite:///{tmp / 'city.db'}"
        engine = sa.create_engine(url)
        upgrade(engine)
        engine.dispose()
        built = _build(url, n)
        db = Database(url, pool_size=1)
        try:
            start, cpu = time.perf_counter(), time.process_time()
            first = db.write_sync(lambda c: match_all(c, now=NOW))
            batch, batch_cpu = time.perf_counter() - start, time.process_time() - cpu
            start = time.perf_counter()
            again = db.write_sync(lambda c: match_all(c, now=NOW))
            rerun = time.perf_counter() - start
            day = local_day(NOW)

            def one_at_a_time(conn: sa.Connection) -> tuple[float, int]:
                chosen = catalogue.load_all(conn, day)
                rows = register_rows(conn)[:SAMPLE]
                begin = time.perf_counter()
                for r in rows:
                    env = variables_of(r, day)
                    for p in chosen:
                        evaluate(p, env, on=day)
                return time.perf_counter() - begin, len(rows)

            sample_seconds, sampled = db.read_sync(one_at_a_time)
        finally:
            db.close()
    assert first.policies == POLICIES and first.enterprises == n, first
    assert again.written == 0 and again.removed == 0, again
    scalar = sample_seconds * n / sampled
    o = first.outcomes
    return [
        row(f"Enterprise policies: batch match, {n:,} enterprises x {POLICIES} policies (SQLite)", batch, "s",
            ceiling=scalar, ceiling_unit="s", goal=GOAL,
            note=(f"match_all in one transaction from an empty result table: {o['eligible']:,} eligible, "
                  f"{o['unknown']:,} unknown, {o['ineligible']:,} ineligible; {first.written:,} outcomes written; "
                  f"CPU {batch_cpu:.1f} s. 'Ceiling' here is the other way, not a bound: evaluate() one enterprise "
                  f"at a time, {sampled:,} x {POLICIES} timed ({sample_seconds:.1f} s) and scaled to {n:,}; "
                  f"ratio < 1 is the batch's gain. Register built in {built:.0f} s")),
        row(f"Enterprise policies: re-run with nothing changed, {n:,} x {POLICIES} (SQLite)", rerun, "s", goal=GOAL,
            note="everything evaluated again and compared with the stored outcomes; nothing written"),
    ]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
