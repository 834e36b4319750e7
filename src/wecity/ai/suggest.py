"""Category suggestion: the serving model's likeliest categories for a description, with their calibrated
probabilities, and whether the first is sure enough to route the case without a person.

The serving model is read from its file once per version and kept in the app (`ctx.services`); each call
asks the database which version serves (one indexed row), so a retrain elsewhere (the runner) is picked up
at the next suggestion. Below AUTO_THRESHOLD (0.6) a suggestion is marked for the dispatch centre to sort;
above it, routing may follow it. Only the categories the city takes now (active) are suggested.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.ai.training import ModelUnavailable, load_model, serving
from wecity.cases.models import categories

log = logging.getLogger(__name__)
MAX_TEXT = 2000
AUTO_THRESHOLD = 0.6
# Where a report goes when the model is not sure enough: the category the dispatch centre sorts.
FALLBACK = "other"
AUTOMATIC, PERSON = "automatic", "dispatch_centre"
ID_SLICE = 10_000


@dataclass
class Serving:
    version: int
    model: Any
    names: dict[str, tuple[str, str]]  # the categories the city takes now (active): only these are suggested
    channels: dict[str, list[str] | None]  # the intake channels each category is offered on (None: all)
    read_at: float | None = None  # when `names` and `channels` were read (time.monotonic); None: not yet


CATEGORIES_TTL = 10.0  # seconds: a category retired, renamed or moved to other channels is followed this soon
RETRY_SECONDS = 60.0  # a model file that could not be read is tried again after this long


class ModelCache:
    """The serving model of one app, loaded once per version (on a big city a file of about 100 MB, loaded in
    a second or two). A new version is loaded in a thread of its own while the one before goes on serving,
    so suggestions and the database reads they ride on never wait for it; only the first model of a process
    is loaded on the spot. A file that cannot be read (missing, cut short) is logged and retried after a
    minute: meanwhile nothing is suggested and reports go to the dispatch centre, as without a model."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Serving | None = None
        self._loading: int | None = None  # the version a thread is loading
        self._failed: dict[int, float] = {}  # version -> when it could not be read
        self._thread: threading.Thread | None = None

    def get(self, conn: Connection, var_dir: Path) -> Serving | None:
        row = serving(conn)
        if row is None:
            return None
        current = self._current
        if current is None or current.version != row.version:
            current = self._switch(row, var_dir, current)
        if current is not None and (current.read_at is None or time.monotonic() - current.read_at > CATEGORIES_TTL):
            current = self._with_categories(conn, current)
        return current

    def _switch(self, row: Any, var_dir: Path, current: Serving | None) -> Serving | None:
        failed = self._failed.get(row.version)
        if failed is not None and time.monotonic() - failed < RETRY_SECONDS:
            return current
        if current is None:
            with self._lock:  # the first model of the process: loaded here, once
                if self._current is None or self._current.version != row.version:
                    self._load(row, var_dir)
                return self._current
        with self._lock:
            if self._loading is not None:
                return current
            self._loading = row.version
            self._thread = threading.Thread(target=self._load, args=(row, var_dir), name="ai-model-load",
                                            daemon=True)
        self._thread.start()
        return current

    def join(self, timeout: float | None = None) -> None:
        """Wait for a new version being loaded (if any): what a caller that must see it next does."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _load(self, row: Any, var_dir: Path) -> None:
        try:
            model = load_model(var_dir, row)
        except ModelUnavailable as exc:
            log.error("%s: suggestions go on without it", exc)
            self._failed[row.version] = time.monotonic()
        else:
            # names and channels are read at the next call (read_at None), in that call's transaction
            self._current = Serving(row.version, model, {}, {})
        finally:
            self._loading = None

    def _with_categories(self, conn: Connection, current: Serving) -> Serving:
        rows = conn.execute(sa.select(categories.c.code, categories.c.name_zh, categories.c.name_en,
                                      categories.c.channels).where(categories.c.active)).all()
        fresh = Serving(current.version, current.model, {r.code: (r.name_zh, r.name_en) for r in rows},
                        {r.code: r.channels for r in rows}, time.monotonic())
        if self._current is current:
            self._current = fresh
        return fresh


def suggest(conn: Connection, cache: ModelCache, var_dir: Path, text: str, *, k: int = 3,
            threshold: float = AUTO_THRESHOLD, channel: str | None = None) -> dict[str, Any]:
    """The top `k` categories for `text` (of those `channel` takes, when given); `route` is "automatic"
    when the first is at least `threshold` likely, else "dispatch_centre". Without a trained model: none."""
    found = cache.get(conn, var_dir)
    text = (text or "").strip()[:MAX_TEXT]
    if found is None or not text:
        return {"model_version": found.version if found else None, "suggestions": [], "route": PERSON,
                "threshold": threshold}
    ranked = [(code, p) for code, p in found.model.top_k([text], k=len(found.model.classes_))[0]
              if code in found.names and (channel is None or found.channels.get(code) is None
                                          or channel in (found.channels.get(code) or []))][:k]
    out = [{"code": code, "name_zh": found.names.get(code, (code, code))[0],
            "name_en": found.names.get(code, (code, code))[1], "probability": round(p, 4)} for code, p in ranked]
    sure = bool(out) and out[0]["probability"] >= threshold
    return {"model_version": found.version, "suggestions": out, "threshold": threshold,
            "route": AUTOMATIC if sure else PERSON}


def cache_of(ctx: Any) -> ModelCache:
    """The app's model cache (one per app, made on first use)."""
    found = ctx.services.get("ai_model_cache")
    if found is None:
        found = ctx.services["ai_model_cache"] = ModelCache()
    return found  # type: ignore[no-any-return]


def route(conn: Connection, cache: ModelCache, var_dir: Path, text: str, *, channel: str,
          threshold: float = AUTO_THRESHOLD) -> tuple[str | None, dict[str, Any]]:
    """The category for a report whose reporter let the city decide: the model's first choice when it is
    at least `threshold` likely, else FALLBACK (sorted by a person). (code or None without a fallback,
    the routing record kept on the case's timeline)."""
    answer = suggest(conn, cache, var_dir, text, k=3, threshold=threshold, channel=channel)
    top = answer["suggestions"][0] if answer["suggestions"] else None
    record = {"model_version": answer["model_version"], "route": answer["route"], "threshold": threshold,
              "suggested": top["code"] if top else None, "probability": top["probability"] if top else None}
    if answer["route"] == AUTOMATIC and top is not None:
        return top["code"], record
    fallback = conn.execute(sa.select(categories.c.code).where(categories.c.code == FALLBACK,
                                                               categories.c.active)).scalar()
    return fallback, {**record, "route": PERSON}


def routing_counts(conn: Connection, *, since: Any) -> dict[str, Any]:
    """Reports whose category the model chose since `since`: how many it routed itself and how many it left
    to the dispatch centre, and of the latter how many staff re-filed (改类) since; in all and per intake
    channel (the portal's "not sure", Open311's service_code=auto)."""
    from wecity.cases.models import timeline

    rows = conn.execute(sa.select(timeline.c.case_id, timeline.c.channel, timeline.c.detail).where(
        timeline.c.at >= since, timeline.c.event.in_(("submitted", "report_merged")),
        sa.cast(timeline.c.detail, sa.Text).like('%"routing"%'))).all()
    counts = {AUTOMATIC: 0, PERSON: 0}
    by_channel: dict[str, dict[str, int]] = {}
    cases_by_route: dict[str, set[int]] = {AUTOMATIC: set(), PERSON: set()}
    for case_id, channel, detail in rows:
        found = (detail or {}).get("routing") or {}
        kind = found.get("route")
        if kind in counts:
            counts[kind] += 1
            by_channel.setdefault(channel, {AUTOMATIC: 0, PERSON: 0})[kind] += 1
            cases_by_route[kind].add(case_id)
    # In slices: a year of a big city's automatic routes is more ids than a statement may bind (65,535 on
    # PostgreSQL); the slices hold different cases, so their counts add up.
    routed = sorted(cases_by_route[AUTOMATIC])
    refiled = sum(conn.execute(sa.select(sa.func.count(sa.distinct(timeline.c.case_id))).where(
        timeline.c.event == "recategorised", timeline.c.case_id.in_(routed[start:start + ID_SLICE]))).scalar_one()
        for start in range(0, len(routed), ID_SLICE))
    return {"automatic": counts[AUTOMATIC], "dispatch_centre": counts[PERSON], "automatic_refiled_by_staff": refiled,
            "by_channel": by_channel}
