"""`make bench`: run every benchmark module under bench/, print one markdown table, write results/latest.json.

A benchmark module is any `bench/<name>.py` not starting with `_` (and not this file) that has
`run() -> list[dict]`; each row has the keys workload, figure, unit, ceiling, ceiling_unit, ratio, goal and
note (see bench._common.row). `ceilings` runs first; the ceilings it measures are cached, so the modules
after it compare against the same figures. A module that fails is reported in the table and makes the
exit status non-zero; the others still run.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import platform
import re
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench
from bench._common import connections, row, seconds

RESULTS = Path(__file__).resolve().parent / "results"
FIRST = ("ceilings",)


def modules() -> list[str]:
    """Benchmark modules, `ceilings` first, the rest by name (BENCH_ONLY=a,b picks some)."""
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__)
                   if not m.name.startswith("_") and m.name != "run")
    only = [n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()]
    if only:
        names = [n for n in names if n in only or n in FIRST]
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import sqlite3

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "sqlite": sqlite3.sqlite_version}


_GOAL = re.compile(r"^\s*(>=|<=|>|<)\s*([\d,_.]+)\s*(?:([kKM])(?![A-Za-z]))?")


def met(r: dict[str, Any]) -> bool | None:
    """Whether the row's figure meets its goal (">= 2,000", "< 50 ms", ">= 20k", ">= 1M"); None when unknown."""
    if "met" in r:
        return r["met"]
    goal, figure = r.get("goal"), r.get("figure")
    if not goal or figure is None:
        return None
    m = _GOAL.match(str(goal))
    if not m:
        return None
    value = float(m.group(2).replace(",", "").replace("_", "")) * {None: 1, "k": 1e3, "K": 1e3, "M": 1e6}[m.group(3)]
    return {">=": figure >= value, "<=": figure <= value, ">": figure > value, "<": figure < value}[m.group(1)]


def number(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| workload | figure | ceiling | ratio | goal | met? |", "|---|---:|---:|---:|---|:---:|"]
    for r in rows:
        figure = f"{number(r.get('figure'))} {r.get('unit') or ''}".strip() if r.get("figure") is not None else "—"
        ceiling = (f"{number(r.get('ceiling'))} {r.get('ceiling_unit') or ''}".strip()
                   if r.get("ceiling") is not None else "—")
        ratio = f"{r['ratio']:.2f}" if r.get("ratio") is not None else "—"
        ok = {True: "yes", False: "**no**", None: "—"}[met(r)]
        lines.append(f"| {r['workload']} | {figure} | {ceiling} | {ratio} | {r.get('goal') or '—'} | {ok} |")
    return "\n".join(lines)


def notes(rows: list[dict[str, Any]]) -> str:
    return "\n".join(f"- {r['workload']}: {r['note']}" for r in rows if r.get("note"))


def busy_share(interval: float = 1.0) -> float | None:
    """Share of all CPU time spent busy over `interval` while no benchmark runs: other work on the machine."""
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else None


def describe_machine(m: dict[str, Any], busiest: float | None = None) -> str:
    text = (f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['os']}, SQLite {m['sqlite']}. "
            f"Each HTTP workload: wrk, 1 thread, {connections()} connections, {seconds():.0f} s on 127.0.0.1 "
            f"after a 1 s warm-up. ratio = figure ÷ ceiling.")
    if busiest is not None and busiest > 0.25:
        text += (f" **The machine was busy with other work** (up to {busiest:.0%} of its CPU busy while no"
                 f" benchmark ran, sampled for 1 s before each module): figures are lower than on an idle machine.")
    elif busiest is not None:
        text += f" Other work on the machine before each module: at most {busiest:.0%} of its CPU."
    return text


def print_rows(rows: list[dict[str, Any]]) -> None:
    """What a module prints when run alone (`python -m bench.<name>`)."""
    print(table(rows))
    print()
    print(notes(rows))


def main() -> int:
    started = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    failures = 0
    timings: dict[str, float] = {}
    loads: dict[str, float] = {}
    for name in modules():
        busy = busy_share()
        if busy is not None:
            loads[name] = busy
        print(f"running bench.{name} (CPU busy before: {busy or 0:.0%}) ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
            if not callable(getattr(module, "run", None)):
                continue
            got = module.run()
            for r in got:
                r.setdefault("module", name)
            rows.extend(got)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failures += 1
            traceback.print_exc(file=sys.stderr)
            failed = row(f"bench.{name}", None, "", note=f"failed: {exc.__class__.__name__}: {exc}"[:400])
            failed["module"] = name
            rows.append(failed)
        timings[name] = time.perf_counter() - t0
        print(f"  bench.{name}: {timings[name]:.1f} s", file=sys.stderr, flush=True)
    info = machine()
    markdown = "\n".join([table(rows), "", describe_machine(info, max(loads.values(), default=None)), "",
                          "Notes:", "", notes(rows)])
    print(markdown)
    RESULTS.mkdir(exist_ok=True)
    for r in rows:
        r["met"] = met(r)
    result = {"started_at": started.isoformat(), "finished_at": datetime.now(UTC).isoformat(),
              "machine": info, "bench_seconds": seconds(), "connections": connections(),
              "module_seconds": timings, "cpu_busy_before": loads, "rows": rows, "markdown": markdown}
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    (RESULTS / "latest.md").write_text(markdown + "\n")
    print(f"\nwritten: {RESULTS / 'latest.json'} and latest.md", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
