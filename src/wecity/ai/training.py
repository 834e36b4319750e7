"""The category model learns from the city's own cases, and only replaces the serving model when better.

Training rows are the cases' descriptions (the first report's text and the case's) with the category each
case has **now**: when a handler returns a case as the wrong category and the dispatch centre re-files it,
or a dispatcher re-dispatches it, the corrected category is the label the next model learns. A new city
without history starts from its categories' names and keywords, and from `wecity ai import-history`.

Each training holds back a stratified fifth of the cases (seed 42), fits on the rest, and scores the new
model and the serving one on the same held-back rows (top-1, top-3, macro-F1, per category). The new
model serves only when its macro-F1 there is higher; either way it is kept, with its figures (the model
card), in `ai_models`. The runner retrains daily (`ai.retrain`); `wecity ai train` does it on demand.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import pickle
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.ai.models import ai_history, ai_models
from wecity.ai.splits import stratified_split
from wecity.cases.models import cases, categories, reports
from wecity.core.errors import ValidationFailed
from wecity.geo.service import city_timezone

KIND = "category"
MIN_ROWS = 20          # below this the city has too little history to hold any back
MAX_ROWS = 200_000     # the newest cases, when a city has more
HOLDOUT = 0.2
SEED = 42


def training_rows(conn: Connection) -> tuple[list[str], list[str]]:
    """(texts, categories): every case with a description, newest first, under its current category; then
    the imported history (`ai_history`) in categories the city still has."""
    first_report = sa.select(reports.c.description).where(reports.c.case_id == cases.c.id) \
        .order_by(reports.c.id).limit(1).scalar_subquery()
    rows = conn.execute(sa.select(sa.func.coalesce(first_report, cases.c.description), cases.c.category_code)
                        .where(cases.c.merged_into_id.is_(None)).order_by(cases.c.id.desc()).limit(MAX_ROWS)).all()
    pairs = [(str(text).strip(), str(code)) for text, code in rows if text and str(text).strip()]
    room = MAX_ROWS - len(pairs)
    if room > 0:
        pairs += [(str(text), str(code)) for text, code in conn.execute(
            sa.select(ai_history.c.text, ai_history.c.category_code)
            .join(categories, categories.c.code == ai_history.c.category_code)
            .where(categories.c.active).order_by(ai_history.c.id.desc()).limit(room))]
    return [t for t, _ in pairs], [c for _, c in pairs]


def import_history(conn: Connection, path: Path, *, text: list[str], label: str, lat: str | None = None,
                   long: str | None = None, time: str | None = None, now: datetime) -> dict[str, int]:
    """Past cases from a CSV file (UTF-8, a header row) as training rows, all or nothing. Every label must be
    a category code of the city; rows without a label or a text, and repeated texts, are counted and left
    out; a coordinate or time that cannot be read is left empty."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in [*text, label, *(c for c in (lat, long, time) if c)] if c not in header]
        if missing:
            raise ValidationFailed(f"{path.name} has no column {', '.join(missing)}",
                                   message_zh=f"{path.name} 中没有列 {'、'.join(missing)}", code="ai.bad_file")
        counts = {"read": 0, "without_label": 0, "without_text": 0, "repeated": 0}
        zone = city_timezone(conn)
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for record in reader:
            counts["read"] += 1
            if counts["read"] > MAX_ROWS:
                raise ValidationFailed(f"more than {MAX_ROWS:,} rows", message_zh=f"超过 {MAX_ROWS:,} 行",
                                       code="ai.bad_file")
            code = (record.get(label) or "").strip()
            words = " ".join((record.get(c) or "").strip() for c in text).strip()
            if not code:
                counts["without_label"] += 1
                continue
            if not words:
                counts["without_text"] += 1
                continue
            if words in seen:
                counts["repeated"] += 1
                continue
            seen.add(words)
            rows.append({"text": words[:4000], "category_code": code[:64], "lat": _number(record, lat),
                         "long": _number(record, long), "at": _moment(record, time, zone)})
    unknown = sorted({r["category_code"] for r in rows} - set(conn.execute(sa.select(categories.c.code)).scalars()))
    if unknown:
        raise ValidationFailed(f"{path.name}: labels that are no category of the city: {', '.join(unknown[:20])}",
                               message_zh=f"{path.name}：以下标签不是本市的类别：{'、'.join(unknown[:20])}",
                               code="ai.unknown_category")
    if rows:
        conn.execute(ai_history.insert(), [{**r, "source": path.name[:200], "imported_at": now} for r in rows])
    return {"imported": len(rows), **counts}


def _number(record: dict[str, Any], column: str | None) -> float | None:
    try:
        value = float((record.get(column) or "").strip()) if column else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _moment(record: dict[str, Any], column: str | None, zone: ZoneInfo) -> datetime | None:
    """The time of a row; one without an offset is read in the city's own zone."""
    try:
        at = datetime.fromisoformat((record.get(column) or "").strip()) if column else None
    except ValueError:
        return None
    return at.replace(tzinfo=zone) if at is not None and at.tzinfo is None else at


def vocabulary_rows(conn: Connection) -> tuple[list[str], list[str]]:
    """Each active category's names and keywords as rows of their own: what a city starts with."""
    texts, labels = [], []
    for r in conn.execute(sa.select(categories.c.code, categories.c.name_zh, categories.c.name_en,
                                    categories.c.keywords).where(categories.c.active)):
        for text in (r.name_zh, r.name_en, *(r.keywords or "").split()):
            if text:
                texts.append(text)
                labels.append(r.code)
    return texts, labels


def figures(model: Any, texts: list[str], labels: list[str]) -> dict[str, Any]:
    """top1, top3, macro-F1 and per-category F1 of `model` on the rows given."""
    from sklearn.metrics import f1_score

    if not texts:
        return {"top1": None, "top3": None, "macro_f1": None, "n": 0, "per_category": {}}
    ranked = model.top_k(texts, k=3)
    predicted = [r[0][0] for r in ranked]
    top3 = float(np.mean([label in {c for c, _ in r} for label, r in zip(labels, ranked, strict=True)]))
    present = sorted(set(labels))
    per = f1_score(labels, predicted, labels=present, average=None, zero_division=0)
    return {"top1": round(float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)])), 4),
            "top3": round(top3, 4), "n": len(texts),
            "macro_f1": round(float(f1_score(labels, predicted, labels=present, average="macro", zero_division=0)), 4),
            "per_category": {code: round(float(f), 4) for code, f in zip(present, per, strict=True)}}


def serving(conn: Connection) -> Any:
    return conn.execute(sa.select(ai_models).where(ai_models.c.kind == KIND, ai_models.c.state == "serving")
                        .order_by(ai_models.c.version.desc()).limit(1)).first()


def load_model(var_dir: Path, row: Any) -> Any:
    """A model file the platform wrote (never one from elsewhere: pickle runs what it reads)."""
    with (var_dir / row.file).open("rb") as f:
        return pickle.load(f)  # noqa: S301 - the platform's own file in its own var directory


@dataclass
class Dataset:
    texts: list[str]
    labels: list[str]
    extra_texts: list[str]
    extra_labels: list[str]
    serving: Any  # the serving model's row when the data were read, or None

    @property
    def digest(self) -> str:
        """What the model would learn from, in 16 hex digits: equal digests, equal models."""
        h = hashlib.sha256()
        for text, label in zip([*self.texts, *self.extra_texts], [*self.labels, *self.extra_labels], strict=True):
            h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()[:16]


def collect(conn: Connection) -> Dataset:
    texts, labels = training_rows(conn)
    extra_texts, extra_labels = vocabulary_rows(conn)
    return Dataset(texts, labels, extra_texts, extra_labels, serving(conn))


def last_digest(conn: Connection) -> str | None:
    """The data digest of the newest version (served or not)."""
    metrics = conn.execute(sa.select(ai_models.c.metrics).where(ai_models.c.kind == KIND)
                           .order_by(ai_models.c.version.desc()).limit(1)).scalar()
    return (metrics or {}).get("data_digest")


@dataclass
class Candidate:
    model: Any
    rows_train: int
    rows_holdout: int
    metrics: dict[str, Any]
    serving_metrics: dict[str, Any] | None
    serving_version: int | None


def fit(data: Dataset, var_dir: Path) -> Candidate:
    """Fit a model on all but the held-back cases and score it and the serving model on those: CPU work,
    outside any transaction (a city's history takes a minute; the database is not held meanwhile)."""
    from wecity.ai.model import ReportClassifier

    texts, labels = data.texts, data.labels
    if len(texts) >= MIN_ROWS and len(set(labels)) >= 2:
        train_idx, hold_idx = stratified_split(labels, HOLDOUT, seed=SEED)
    else:
        train_idx, hold_idx = np.arange(len(texts)), np.arange(0)
    fit_texts = [texts[i] for i in train_idx] + data.extra_texts
    fit_labels = [labels[i] for i in train_idx] + data.extra_labels
    model = ReportClassifier().fit(fit_texts, fit_labels)
    hold_texts, hold_labels = [texts[i] for i in hold_idx], [labels[i] for i in hold_idx]
    theirs = figures(load_model(var_dir, data.serving), hold_texts, hold_labels) if data.serving is not None else None
    # The method goes on the card: which members the cross-validation chose, and their settings.
    mine = {**figures(model, hold_texts, hold_labels), "data_digest": data.digest, "method": model.chosen_}
    return Candidate(model, len(fit_texts), len(hold_texts), mine, theirs,
                     data.serving.version if data.serving is not None else None)


def decide(conn: Connection, candidate: Candidate, *, var_dir: Path, now: datetime, by: str) -> dict[str, Any]:
    """Keep the candidate as the next version; it serves if there was none, or if it beat the serving model
    on the held-back cases (and that model still serves)."""
    mine, theirs = candidate.metrics, candidate.serving_metrics
    current = serving(conn)
    still = (current.version if current is not None else None) == candidate.serving_version
    better = current is None or (still and mine["macro_f1"] is not None and theirs is not None
                                 and (theirs["macro_f1"] is None or mine["macro_f1"] > theirs["macro_f1"]))
    version = int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(ai_models.c.version), 0))
                               .where(ai_models.c.kind == KIND)).scalar_one()) + 1
    relative = Path("ai") / "models" / f"{KIND}-v{version}.pkl"
    path = var_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as f:
        pickle.dump(candidate.model, f, protocol=pickle.HIGHEST_PROTOCOL)
    temporary.replace(path)  # whole or not at all
    if better and current is not None:
        conn.execute(ai_models.update().where(ai_models.c.id == current.id).values(state="retired"))
    card = {"kind": KIND, "version": version, "trained_at": now, "trained_by": by,
            "rows_train": candidate.rows_train, "rows_holdout": candidate.rows_holdout,
            "labels": [str(c) for c in candidate.model.classes_], "metrics": mine, "serving_metrics": theirs,
            "state": "serving" if better else "rejected", "file": str(relative)}
    conn.execute(ai_models.insert().values(**card))
    return {**card, "trained_at": now.isoformat(), "replaced": current.version if better and current else None}


def train_sync(db: Any, *, var_dir: Path, now: datetime, by: str) -> dict[str, Any]:
    """`wecity ai train`: read, fit, decide."""
    candidate = fit(db.read_sync(collect), var_dir)
    return dict(db.write_sync(lambda c: decide(c, candidate, var_dir=var_dir, now=now, by=by)))


async def train_async(ctx: Any, *, by: str, unless_unchanged: bool = False) -> dict[str, Any] | None:
    """The runner's retrain and the administrators' `POST /api/v1/ai/train`: the fit in a worker thread.
    With `unless_unchanged` (the runner), nothing is trained when the data are what the newest version
    learnt from (None): a quiet city does not pile up identical versions."""
    var_dir = Path(ctx.settings.var_dir)
    data = await ctx.db.read(collect)
    if unless_unchanged and await ctx.db.read(last_digest) == data.digest:
        return None
    candidate = await asyncio.to_thread(fit, data, var_dir)
    now = ctx.clock.now()
    return dict(await ctx.db.write(lambda c: decide(c, candidate, var_dir=var_dir, now=now, by=by)))


def model_cards(conn: Connection, *, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(ai_models).where(ai_models.c.kind == KIND).order_by(ai_models.c.version.desc())
                        .limit(limit))
    return [{**dict(r._mapping), "trained_at": r.trained_at.isoformat()} for r in rows]
