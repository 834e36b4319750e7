"""Where a server spends its time under load: py-spy samples, summed per thread and per platform function."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

RATE = 100  # samples per second


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def enabled() -> bool:
    return os.environ.get("BENCH_PROFILE", "1") not in ("0", "no", "false")


def profile(pid: int, seconds: float, *, top: int = 5) -> str:
    """A one-line summary: how busy each busy thread was, and the platform functions that took the most.

    Sampled without pausing the process (--nonblocking). A thread counts as busy when it runs or waits for
    the GIL; py-spy leaves out threads that wait on a socket, a lock or the disk.
    """
    tool = py_spy()
    if tool is None:
        return "not profiled (py-spy not installed; make bench installs it)"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "profile.txt"
        done = subprocess.run([tool, "record", "--pid", str(pid), "--duration", f"{seconds:.0f}", "--rate", str(RATE),
                               "--threads", "--nonblocking", "--format", "raw", "--output", str(out)],
                              capture_output=True, text=True, timeout=seconds + 60)
        if done.returncode != 0 or not out.exists():
            return f"not profiled (py-spy: {(done.stderr or done.stdout).strip()[-200:]})"
        lines = out.read_text().splitlines()
    threads: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    commit = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        thread = frames[0].split(":", 1)[-1].strip() or frames[0]
        threads[thread] += int(count)
        if any(f.startswith(("DefaultDialect.do_commit ", "Connection.commit ")) for f in frames):
            commit += int(count)
        # Charge each sample to the innermost platform function on the stack: the platform code that made
        # the call (into SQLAlchemy, the driver, Starlette ...) where the time went.
        for frame in reversed(frames[1:]):
            name, _, where = frame.partition(" (")
            if where.startswith("wecity/") or "/wecity/" in where:
                functions[f"{name} ({where.rsplit('/', 1)[-1].split(':')[0]})"] += int(count)
                break
    if not threads:
        return "not profiled (no samples)"
    expected = seconds * RATE
    total = sum(threads.values())
    busy = ", ".join(f"{name} {n / expected:.0%}" for name, n in threads.most_common(3))
    # A sample whose innermost platform frame is the CLI entry point is in the event loop, outside handlers.
    grouped: Counter[str] = Counter()
    for name, n in functions.items():
        grouped["event loop" if name.startswith(("<module>", "main ", "_serve ", "cmd_serve ")) else name] += n
    shares = ", ".join(f"{name} {n / total:.0%}" for name, n in grouped.most_common(top))
    return (f"profile over {seconds:.0f} s: threads busy (share of wall time): {busy}; innermost platform"
            f" function of the busy samples: {shares}; in a database commit: {commit / total:.0%}")
