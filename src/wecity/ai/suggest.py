"""Category suggestion: the serving model's likeliest categories for a description, with their calibrated
probabilities, and whether the first is sure enough to route the case without a person.

The serving model is read from its file once per version and kept in the app (`ctx.services`); each call
asks the database which version serves (one indexed row), so a retrain elsewhere (the runner) is picked up
at the next suggestion. Below `settings.ai_auto_threshold` (default 0.6) a suggestion is marked for the
dispatch centre to sort; above it, routing may follow it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.ai.training import load_model, serving
from wecity.cases.models import categories

MAX_TEXT = 2000
AUTO_THRESHOLD = 0.6


@dataclass
class Serving:
    version: int
    model: Any
    names: dict[str, tuple[str, str]]
    channels: dict[str, list[str] | None]  # the intake channels each category is offered on (None: all)


class ModelCache:
    """The serving model of one app, loaded once per version (a few MB; loading takes ~100 ms)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: Serving | None = None

    def get(self, conn: Connection, var_dir: Path) -> Serving | None:
        row = serving(conn)
        if row is None:
            return None
        current = self._current
        if current is not None and current.version == row.version:
            return current
        with self._lock:
            if self._current is None or self._current.version != row.version:
                rows = conn.execute(sa.select(categories.c.code, categories.c.name_zh, categories.c.name_en,
                                              categories.c.channels)).all()
                self._current = Serving(row.version, load_model(var_dir, row),
                                        {r.code: (r.name_zh, r.name_en) for r in rows},
                                        {r.code: r.channels for r in rows})
            return self._current


def suggest(conn: Connection, cache: ModelCache, var_dir: Path, text: str, *, k: int = 3,
            threshold: float = AUTO_THRESHOLD, channel: str | None = None) -> dict[str, Any]:
    """The top `k` categories for `text` (of those `channel` takes, when given); `route` is "automatic"
    when the first is at least `threshold` likely, else "dispatch_centre". Without a trained model: none."""
    found = cache.get(conn, var_dir)
    text = (text or "").strip()[:MAX_TEXT]
    if found is None or not text:
        return {"model_version": found.version if found else None, "suggestions": [], "route": "dispatch_centre",
                "threshold": threshold}
    ranked = [(code, p) for code, p in found.model.top_k([text], k=len(found.model.classes_))[0]
              if channel is None or (found.channels.get(code) is None or channel in (found.channels.get(code) or []))
              and code in found.names][:k]
    out = [{"code": code, "name_zh": found.names.get(code, (code, code))[0],
            "name_en": found.names.get(code, (code, code))[1], "probability": round(p, 4)} for code, p in ranked]
    sure = bool(out) and out[0]["probability"] >= threshold
    return {"model_version": found.version, "suggestions": out, "threshold": threshold,
            "route": "automatic" if sure else "dispatch_centre"}
