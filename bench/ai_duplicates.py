"""The duplicate finder on the demo history: how often its automatic merges are right.

For each seed, a fresh demo city gets its 30 days of history (`wecity.demo.history.seed_history`), in which
some problems are reported twice a street corner away, in other words and perhaps under a neighbouring
category, with another photo of the scene; and some different problems lie close to earlier ones. The
history knows which problem each case is (the truth). The finder runs after each report as the runner
would (`wecity.ai.duplicates.review_case`). Measured against the truth:

- **precision of automatic merges**: merges by the platform joining two cases of one problem, of all its
  merges (the issue's figure; goal >= 0.95);
- **recall**: of the pairs of cases of one problem that the finder could see (the older still open when
  the newer came, within its window and radius: every pair it scored, at any score), those it merged or
  proposed;
- **proposal precision**: of the proposals left for dispatchers, those of one problem.

The seed 2026 is the demo's own, on which the thresholds were set; the others were not looked at before.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from bench._common import row, workdir

SEEDS = [int(s) for s in os.environ.get("BENCH_DUPLICATE_SEEDS", "2026,1,2,3,4").split(",")]
NOW = datetime(2026, 11, 20, 3, 0, tzinfo=UTC)


def _one_city(seed: int) -> dict[str, Any]:
    from wecity.ai import duplicates
    from wecity.ai.duplicates import MERGED, PLATFORM, PROPOSED
    from wecity.ai.models import ai_duplicates
    from wecity.core.db import Database
    from wecity.core.migrate import upgrade
    from wecity.core.settings import Settings
    from wecity.demo.changsha import seed_city
    from wecity.demo.history import seed_history

    scored: list[Any] = []
    pairs_for = duplicates.pairs_for

    def seen(conn: sa.Connection, case_id: int) -> list[Any]:
        found = pairs_for(conn, case_id)
        scored.extend(found)
        return found

    duplicates.pairs_for = seen  # type: ignore[assignment]  # every pair scored, for the recall's denominator
    with workdir(f"duplicates-{seed}") as tmp:
        settings = Settings(database_url=f"sqlite:///{tmp / 'city.db'}", media_dir=tmp / "media",
                            secret_key="bench-" + "k" * 40, var_dir=tmp, run_background=False)
        db = Database(settings.database_url, pool_size=1)
        try:
            upgrade(db.engine)
            problems: dict[int, int] = {}

            def seed_it(conn: sa.Connection) -> list[Any]:
                seed_city(conn, NOW)
                seed_history(conn, NOW, settings, seed=seed, problems=problems)
                return conn.execute(sa.select(ai_duplicates)).all()

            found = db.write_sync(seed_it)
        finally:
            db.close()
            duplicates.pairs_for = pairs_for  # type: ignore[assignment]
    same = [problems.get(r.case_id) == problems.get(r.candidate_id) for r in found]
    auto = [s for r, s in zip(found, same, strict=True) if r.state == MERGED and r.decided_by == PLATFORM]
    proposed = [s for r, s in zip(found, same, strict=True) if r.state == PROPOSED]
    visible = {(p.case_id, p.candidate_id) for p in scored if problems.get(p.case_id) == problems.get(p.candidate_id)}
    caught = {(r.case_id, r.candidate_id) for r in found} & visible
    return {"seed": seed, "cases": len(problems), "repeats": len(visible), "auto": len(auto), "auto_right": sum(auto),
            "proposed": len(proposed), "proposed_right": sum(proposed), "problems_caught": len(caught)}


def run() -> list[dict[str, Any]]:
    results = [_one_city(seed) for seed in SEEDS]
    auto, right = sum(r["auto"] for r in results), sum(r["auto_right"] for r in results)
    proposed, proposed_right = sum(r["proposed"] for r in results), sum(r["proposed_right"] for r in results)
    repeats, caught = sum(r["repeats"] for r in results), sum(r["problems_caught"] for r in results)
    detail = "; ".join(f"seed {r['seed']}: {r['auto_right']}/{r['auto']} merges right, "
                       f"{r['proposed_right']}/{r['proposed']} proposals right, {r['problems_caught']} of "
                       f"{r['repeats']} visible repeats caught, {r['cases']} cases" for r in results)
    precision = right / auto if auto else None
    out = row("Duplicate finder on the demo history: precision of automatic merges", precision, "",
              goal="precision >= 0.95", note=detail)
    out["met"] = precision is not None and precision >= 0.95
    return [out,
            row("Duplicate finder: recall (visible repeats merged or proposed)",
                caught / repeats if repeats else None, "", note=f"{caught} of {repeats}"),
            row("Duplicate finder: proposals of one problem, of all proposals",
                proposed_right / proposed if proposed else None, "", note=f"{proposed_right} of {proposed}")]


def main() -> None:
    from bench.run import print_rows

    print_rows(run())


if __name__ == "__main__":
    main()
