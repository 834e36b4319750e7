"""The category model learns from the city's own cases, and only replaces the serving model when better.

Training rows are the cases' descriptions (the first report's text and the case's) with the category each
case has **now**: when a handler returns a case as the wrong category and the dispatch centre re-files it,
or a dispatcher re-dispatches it, the corrected category is the label the next model learns. A new city
without history starts from its categories' names and keywords, and from `wecity ai import-history`.

Each training holds back a fifth of the cases, fits on the rest, and scores the new model and the serving
one on the same held-back rows (top-1, top-3, macro-F1, per category). Which fifth is fixed per case (a
hash of its id), so a case held back from one training was held back from the one before too: the serving
model is never graded on cases it learnt from. The new
model serves only when its macro-F1 there is higher; either way it is kept, with its figures (the model
card), in `ai_models`. The runner retrains daily (`ai.retrain`); `wecity ai train`, `POST /api/v1/ai/train` and the button on
`/staff/ai` do it on demand.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import pickle
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from wecity.ai.models import ai_history, ai_models
from wecity.cases.models import cases, categories, reports
from wecity.core.errors import Conflict, ValidationFailed
from wecity.core.models import periodic_tasks
from wecity.core.runner import hold_periodic, release_periodic
from wecity.geo.service import city_timezone

log = logging.getLogger(__name__)
KIND = "category"
MIN_ROWS = 20          # below this the city has too little history to hold any back
MAX_ROWS = 200_000     # the newest cases, when a city has more


def training_rows(conn: Connection) -> tuple[list[str], list[str]]:
    """(texts, categories): every case with a description, newest first, under its current category; then
    the imported history (`ai_history`) in categories the city still has."""
    texts, labels, _ = keyed_training_rows(conn)
    return texts, labels


def keyed_training_rows(conn: Connection) -> tuple[list[str], list[str], list[str]]:
    """`training_rows` with what each row is (`case:<id>`, `history:<id>`): the key that decides whether
    it is held back."""
    first_report = sa.select(reports.c.description).where(reports.c.case_id == cases.c.id) \
        .order_by(reports.c.id).limit(1).scalar_subquery()
    # Cases of categories the city no longer takes are not learnt: the model would keep suggesting them.
    rows = conn.execute(sa.select(sa.func.coalesce(first_report, cases.c.description), cases.c.category_code, cases.c.id)
                        .join(categories, categories.c.code == cases.c.category_code)
                        .where(cases.c.merged_into_id.is_(None), categories.c.active)
                        .order_by(cases.c.id.desc()).limit(MAX_ROWS)).all()
    found = [(str(text).strip(), str(code), f"case:{i}") for text, code, i in rows if text and str(text).strip()]
    room = MAX_ROWS - len(found)
    if room > 0:
        found += [(str(text), str(code), f"history:{i}") for text, code, i in conn.execute(
            sa.select(ai_history.c.text, ai_history.c.category_code, ai_history.c.id)
            .join(categories, categories.c.code == ai_history.c.category_code)
            .where(categories.c.active).order_by(ai_history.c.id.desc()).limit(room))]
    return [t for t, _, _ in found], [c for _, c, _ in found], [k for _, _, k in found]


def held_back(keys: list[str], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, held-back rows): a row is held back when the hash of its key falls in the fifth, so
    the same cases are held back in every training. A category whose rows all fall there keeps them for
    training (the model could not learn it otherwise)."""
    back = np.array([int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "big") % 5 == 0
                     for k in keys], dtype=bool)
    trained = {label for label, b in zip(labels, back, strict=True) if not b}
    back &= np.array([label in trained for label in labels], dtype=bool)
    return np.flatnonzero(~back), np.flatnonzero(back)


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


# The names the platform gives its model files (`fit`); a row naming anything else is not read.
_MODEL_FILE = re.compile(rf"{KIND}-(?:[0-9a-f]{{32}}|v[0-9]+)\.pkl")  # and versions' names of before (v<n>)


class ModelUnavailable(Exception):
    """A serving model's file is missing, unreadable or not one the platform wrote."""


def load_model(var_dir: Path, row: Any) -> Any:
    """A model file the platform wrote (never one from elsewhere: pickle runs what it reads): the row must
    name a file of the platform's own pattern in its models directory, so a changed row cannot point the
    loader at another file. ModelUnavailable when it cannot be read."""
    relative = Path(str(row.file))
    if relative.parent != MODELS_DIR or not _MODEL_FILE.fullmatch(relative.name):
        raise ModelUnavailable(f"model version {row.version} names {row.file!r}, not a model file of the platform")
    try:
        with (var_dir / relative).open("rb") as f:
            return pickle.load(f)  # noqa: S301 - the platform's own file in its own var directory
    except Exception as exc:  # missing, cut short by a crash, or from another version of the libraries
        raise ModelUnavailable(f"model version {row.version} ({row.file}) cannot be read: {exc!r}") from exc


@dataclass
class Dataset:
    texts: list[str]
    labels: list[str]
    extra_texts: list[str]
    extra_labels: list[str]
    serving: Any  # the serving model's row when the data were read, or None
    keys: list[str]  # what each of `texts` is (`case:<id>`): decides the held-back fifth

    @property
    def digest(self) -> str:
        """What the model would learn from, in 16 hex digits: equal digests, equal models."""
        h = hashlib.sha256()
        for text, label in zip([*self.texts, *self.extra_texts], [*self.labels, *self.extra_labels], strict=True):
            h.update(f"{label}\t{text}\n".encode())
        return h.hexdigest()[:16]


def collect(conn: Connection) -> Dataset:
    texts, labels, keys = keyed_training_rows(conn)
    extra_texts, extra_labels = vocabulary_rows(conn)
    return Dataset(texts, labels, extra_texts, extra_labels, serving(conn), keys)


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
    file: Path  # the model's file under the var directory, written whole before the transaction records it


MODELS_DIR = Path("ai") / "models"
KEEP_RETIRED = 1  # model files kept of versions that served before: a process may be loading the last one


def fit(data: Dataset, var_dir: Path) -> Candidate:
    """Fit a model on all but the held-back cases and score it and the serving model on those: CPU work,
    outside any transaction (a city's history takes a minute; the database is not held meanwhile)."""
    from wecity.ai.model import ReportClassifier

    texts, labels = data.texts, data.labels
    if len(texts) >= MIN_ROWS and len(set(labels)) >= 2:
        train_idx, hold_idx = held_back(data.keys, labels)
    else:
        train_idx, hold_idx = np.arange(len(texts)), np.arange(0)
    fit_texts = [texts[i] for i in train_idx] + data.extra_texts
    fit_labels = [labels[i] for i in train_idx] + data.extra_labels
    model = ReportClassifier().fit(fit_texts, fit_labels)
    hold_texts, hold_labels = [texts[i] for i in hold_idx], [labels[i] for i in hold_idx]
    theirs = _serving_figures(data, var_dir, hold_texts, hold_labels)
    # The method goes on the card: which members the cross-validation chose, and their settings.
    mine = {**figures(model, hold_texts, hold_labels), "data_digest": data.digest, "method": model.chosen_}
    # Named once and for all here: the transaction that records the version moves no file, so running it
    # again (SQLite's grouped commits retry a group one write at a time) finds everything as it was.
    relative = MODELS_DIR / f"{KIND}-{uuid.uuid4().hex}.pkl"
    path = var_dir / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as f:
        pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())  # on disk before the database names it: a power cut leaves no empty model file
    temporary.replace(path)  # whole or not at all
    _sync_directory(path.parent)
    return Candidate(model, len(fit_texts), len(hold_texts), mine, theirs,
                     data.serving.version if data.serving is not None else None, relative)


def _serving_figures(data: Dataset, var_dir: Path, texts: list[str], labels: list[str]) -> dict[str, Any] | None:
    """The serving model's figures on the held-back rows; a serving model that cannot be read scores
    nothing (macro-F1 None), so the candidate replaces it instead of every training failing on it."""
    if data.serving is None:
        return None
    try:
        return figures(load_model(var_dir, data.serving), texts, labels)
    except ModelUnavailable as exc:
        log.error("%s: the new model will replace it", exc)
        return {"top1": None, "top3": None, "macro_f1": None, "n": 0, "per_category": {}, "unreadable": True}


def _sync_directory(path: Path) -> None:
    """The directory's entry for a renamed file on disk too (POSIX; elsewhere nothing to do)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
    if better and current is not None:
        conn.execute(ai_models.update().where(ai_models.c.id == current.id).values(state="retired"))
    card = {"kind": KIND, "version": version, "trained_at": now, "trained_by": by,
            "rows_train": candidate.rows_train, "rows_holdout": candidate.rows_holdout,
            "labels": [str(c) for c in candidate.model.classes_], "metrics": mine, "serving_metrics": theirs,
            "state": "serving" if better else "rejected", "file": str(candidate.file)}
    conn.execute(ai_models.insert().values(**card))
    _prune_files(conn, var_dir)
    return {**card, "trained_at": now.isoformat(), "replaced": current.version if better and current else None}


def _prune_files(conn: Connection, var_dir: Path) -> None:
    """Model files nothing will load again: of rejected versions, and of retired ones but the newest. Their
    cards stay. (A rolled-back transaction leaves only files of versions that never served.)"""
    rows = conn.execute(sa.select(ai_models.c.state, ai_models.c.file).where(
        ai_models.c.kind == KIND, ai_models.c.state.in_(("rejected", "retired")))
        .order_by(ai_models.c.version.desc())).all()
    retired = [r.file for r in rows if r.state == "retired"]
    for name in [r.file for r in rows if r.state == "rejected"] + retired[KEEP_RETIRED:]:
        if name:
            (var_dir / name).unlink(missing_ok=True)
    # Files of trainings never recorded (the process stopped, the transaction failed), a day on.
    recorded = {Path(f).name for f in conn.execute(sa.select(ai_models.c.file).where(ai_models.c.kind == KIND)).scalars()
                if f}
    for stray in [*(var_dir / MODELS_DIR).glob(f"{KIND}-*.tmp"), *(var_dir / MODELS_DIR).glob(f"{KIND}-*.pkl")]:
        if stray.name not in recorded and stray.stat().st_mtime < time.time() - 24 * 3600:
            stray.unlink(missing_ok=True)


# The runner's daily retrain; an on-demand training holds it too, so two never run at once.
RETRAIN_TASK = "ai.retrain"
# A training may take minutes (a big city's history, a busy machine): the runner cuts it off at half of
# this, and one that dies while training keeps the task from the others for as long.
RETRAIN_LEASE_SECONDS = 4 * 3600.0


def _under_way() -> Conflict:
    return Conflict("a training of the category model is under way; its model card will be listed when it ends",
                    message_zh="类别模型正在训练，训练结束后可在模型列表中查看", code="ai.training_under_way")


def _holder(by: str) -> str:
    return f"{by[:48]}:{uuid.uuid4().hex[:12]}"  # claimed_by holds 64


def train_sync(db: Any, *, var_dir: Path, now: datetime, by: str) -> dict[str, Any]:
    """`wecity ai train`: read, fit, decide, holding the retrain task meanwhile (Conflict if it is held)."""
    holder = _holder(by)
    if not db.write_sync(lambda c: hold_periodic(c, RETRAIN_TASK, now=now, holder=holder,
                                                 lease_seconds=RETRAIN_LEASE_SECONDS)):
        raise _under_way()
    error: str | None = "interrupted"
    try:
        candidate = fit(db.read_sync(collect), var_dir)
        card = dict(db.write_sync(lambda c: decide(c, candidate, var_dir=var_dir, now=now, by=by)))
        error = None
        return card
    except Exception as exc:
        error = _error_text(exc)
        raise
    finally:
        db.write_sync(lambda c: release_periodic(c, RETRAIN_TASK, holder=holder, ran_at=now, error=error))


async def begin_training(ctx: Any, *, by: str) -> tuple[dict[str, Any], Callable[[], Awaitable[None]]]:
    """An administrator's "train now" (`POST /api/v1/ai/train`, the button on `/staff/ai`): take the retrain
    task (Conflict when the runner or another administrator is training), and return the state to answer
    with and the training itself, for the caller to run once the answer is sent. A big city's training takes
    minutes, longer than a reverse proxy waits for an answer; its model card is listed when it ends, and
    the task's `last_error` says if it failed."""
    holder = _holder(by)
    now = ctx.clock.now()
    if not await ctx.db.write(lambda c: hold_periodic(c, RETRAIN_TASK, now=now, holder=holder,
                                                      lease_seconds=RETRAIN_LEASE_SECONDS)):
        raise _under_way()

    async def run() -> None:
        error: str | None = "interrupted"
        try:
            card = await train_async(ctx, by=by)
            assert card is not None  # trained whatever the data
            error = None
            log.info("category model trained on demand", extra={"fields": {
                "version": card["version"], "state": card["state"], "by": by}})
        except Exception as exc:
            error = _error_text(exc)
            log.exception("training the category model failed")
        finally:
            await ctx.db.write(lambda c: release_periodic(c, RETRAIN_TASK, holder=holder, ran_at=now, error=error))

    return await ctx.db.read(lambda c: training_state(c, now=now)), run


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


def training_state(conn: Connection, *, now: datetime) -> dict[str, Any]:
    """Whether a training is under way (the runner's or an administrator's), since when and by whom, and how
    the last one ended: for the model cards' page and `GET /api/v1/ai/models`."""
    row = conn.execute(sa.select(periodic_tasks).where(periodic_tasks.c.name == RETRAIN_TASK)).first()
    if row is None:
        return {"under_way": False, "by": None, "since": None, "last_run_at": None, "last_error": None}
    under_way = row.claimed_until is not None and row.claimed_until > now
    # Both the runner and "train now" hold the task for RETRAIN_LEASE_SECONDS from the start.
    since = row.claimed_until - timedelta(seconds=RETRAIN_LEASE_SECONDS) if under_way else None
    return {"under_way": under_way,
            "by": row.claimed_by.rsplit(":", 1)[0] if under_way and row.claimed_by else None,
            "since": since, "last_run_at": row.last_run_at, "last_error": row.last_error}


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
