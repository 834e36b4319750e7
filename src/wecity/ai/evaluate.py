"""Evaluating the report-category classifier on a labelled CSV file, beside a plain baseline trained on the
same rows in the same run, with figures anyone can reproduce (fixed seeds, no choice made on test rows).

Rows: the text columns joined with a space; a row without a label, without text, or whose text repeats an
earlier row's is left out and counted (a repeated text would otherwise be scored on a copy of a training
row). Split: a split column's `train` rows train and the others test, or else a stratified 80/20 split
with seed 42. The baseline is the one measured in the data's README: TF-IDF of character 1–3-grams and a
linear SVM with fixed settings.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wecity.ai.model import Location, ReportClassifier
from wecity.ai.splits import stratified_split, stratified_subset
from wecity.core.errors import ValidationFailed

SEED = 42
TEST_SIZE = 0.2
CURVE = (0.1, 0.25, 0.5, 1.0)
TOP_K = 3


@dataclass
class Rows:
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    locations: list[Location] | None = None
    splits: list[str] | None = None
    read: int = 0
    unlabelled: int = 0
    without_text: int = 0
    repeated: int = 0


def _float(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def read_rows(path: Path, *, text: Sequence[str], label: str, lat: str | None = None, long: str | None = None,
              split: str | None = None) -> Rows:
    """The usable rows of a UTF-8 CSV file with a header row, and how many were left out and why."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        wanted = [*text, label, *(c for c in (lat, long, split) if c)]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ValidationFailed(f"{path.name} has no column {', '.join(missing)} (it has {', '.join(header)})",
                                   message_zh=f"{path.name} 中没有列 {', '.join(missing)}")
        rows = Rows(locations=[] if lat and long else None, splits=[] if split else None)
        seen: set[str] = set()
        for record in reader:
            rows.read += 1
            category = (record[label] or "").strip()
            joined = " ".join((record[c] or "").strip() for c in text).strip()
            if not category:
                rows.unlabelled += 1
                continue
            if not joined:
                rows.without_text += 1
                continue
            if joined in seen:
                rows.repeated += 1
                continue
            seen.add(joined)
            rows.texts.append(joined)
            rows.labels.append(category)
            if rows.locations is not None and lat and long:
                y, x = _float(record[lat] or ""), _float(record[long] or "")
                rows.locations.append((y, x) if y is not None and x is not None else None)
            if rows.splits is not None and split:
                rows.splits.append((record[split] or "").strip().lower())
    return rows


def scores_of(ranked: np.ndarray, classes: np.ndarray, truth: Sequence[str]) -> dict[str, Any]:
    """top1, top3 and macro-F1 from per-class scores (any monotone score: probabilities or SVM margins)."""
    from sklearn.metrics import f1_score

    order = np.argsort(-ranked, axis=1, kind="stable")
    truth_array = np.asarray(truth, dtype=object)
    predicted = classes[order[:, 0]]
    in_top = (classes[order[:, :TOP_K]] == truth_array[:, None]).any(axis=1)
    return {"top1": round(float(np.mean(predicted == truth_array)), 4),
            "top3": round(float(np.mean(in_top)), 4),
            "macro_f1": round(float(f1_score(truth_array, predicted, average="macro", zero_division=0)), 4),
            "n_test": len(truth_array)}


def baseline() -> Any:
    """Character 1–3-gram TF-IDF and a linear SVM, as measured in the data's README."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2, max_features=400000),
        LinearSVC(C=0.5, class_weight="balanced", dual="auto", random_state=SEED))


def _pick(values: Sequence[Any] | None, rows: np.ndarray) -> list[Any] | None:
    return None if values is None else [values[i] for i in rows]


def evaluate(rows: Rows, *, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train the platform's model and the baseline on the training rows; score both on the test rows; and
    the platform's model's macro-F1 after 10 %, 25 %, 50 % and all of the training rows."""
    started = time.monotonic()
    labels = np.asarray(rows.labels, dtype=object)
    if rows.splits is not None:
        is_train = np.array([s == "train" for s in rows.splits])
        train, test = np.flatnonzero(is_train), np.flatnonzero(~is_train)
        how = "the split column"
    else:
        train, test = stratified_split(rows.labels, TEST_SIZE, seed=SEED)
        how = f"a stratified {round(100 * (1 - TEST_SIZE))}/{round(100 * TEST_SIZE)} split, seed {SEED}"
    if not len(train) or not len(test):
        raise ValidationFailed("both training and test rows are needed", message_zh="训练行与测试行都不能为空")
    train_labels = [rows.labels[i] for i in train]
    test_labels = [rows.labels[i] for i in test]
    unseen = sorted(set(test_labels) - set(train_labels))
    say(f"{rows.read} rows read: {len(rows.texts)} used, {rows.unlabelled} without a label, "
        f"{rows.without_text} without text, {rows.repeated} repeating an earlier text")
    say(f"{len(train)} training rows, {len(test)} test rows ({how}); {len(set(train_labels))} labels"
        + (f"; {len(unseen)} test labels never seen in training" if unseen else ""))

    def texts(selection: np.ndarray) -> list[str]:
        return [rows.texts[i] for i in selection]

    result: dict[str, Any] = {}
    curve = []
    for fraction in CURVE:
        part = train if fraction == 1.0 else train[stratified_subset(train_labels, fraction, seed=SEED)]
        tick = time.monotonic()
        model = ReportClassifier(seed=SEED).fit(texts(part), list(labels[part]), _pick(rows.locations, part))
        proba = model.predict_proba(texts(test), _pick(rows.locations, test))
        figures = scores_of(proba, model.classes_, test_labels)
        curve.append({"fraction": fraction, "n_train": len(part), "macro_f1": figures["macro_f1"]})
        say(f"platform model on {round(100 * fraction)}% of the training rows ({len(part)}): "
            f"macro-F1 {figures['macro_f1']:.4f} in {time.monotonic() - tick:.1f} s, chose {model.chosen_}")
        if fraction == 1.0:
            model_predicted = model.classes_[proba.argmax(axis=1)]
            result["model"] = {**figures, "log_loss": _log_loss(proba, model.classes_, test_labels),
                               "calibration_error": _calibration_error(proba, model.classes_, test_labels),
                               "chosen": model.chosen_}
    tick = time.monotonic()
    base = baseline().fit(texts(train), labels[train])
    base_scores = _columns(base.decision_function(texts(test)))
    result["baseline"] = scores_of(base_scores, base.classes_, test_labels)
    difference = _difference(test_labels, model_predicted, base.classes_[base_scores.argmax(axis=1)])
    say(f"baseline: macro-F1 {result['baseline']['macro_f1']:.4f} in {time.monotonic() - tick:.1f} s")
    return {"model": result["model"], "baseline": result["baseline"], "difference": difference,
            "learning_curve": curve,
            "rows_read": rows.read, "skipped_unlabelled": rows.unlabelled, "skipped_without_text": rows.without_text,
            "skipped_repeated_text": rows.repeated, "n_train": len(train), "n_test": len(test),
            "labels": len(set(rows.labels)), "test_labels_unseen_in_training": unseen,
            "split": "column" if rows.splits is not None else f"stratified {TEST_SIZE} seed {SEED}",
            "seconds": round(time.monotonic() - started, 1)}


def repeated(rows: Rows, repeats: int, first: float, *, say: Callable[[str], None] = print) -> dict[str, Any]:
    """The model's macro-F1 minus the baseline's on `repeats` stratified 80/20 splits (seeds 42, 43, …), each
    trained and scored afresh: their mean and its standard error say what one split cannot on a small file.
    `first` is the seed-42 split's difference, which `evaluate` has measured already."""
    started = time.monotonic()
    labels = np.asarray(rows.labels, dtype=object)
    gaps = [first]
    say(f"split seed {SEED}: model minus baseline {100 * first:+.2f} macro-F1 points (the run above)")
    for seed in range(SEED + 1, SEED + repeats):
        train, test = stratified_split(rows.labels, TEST_SIZE, seed=seed)
        truth = [rows.labels[i] for i in test]
        texts = [rows.texts[i] for i in train]
        model = ReportClassifier(seed=SEED).fit(texts, list(labels[train]), _pick(rows.locations, train))
        predicted = model.predict([rows.texts[i] for i in test], _pick(rows.locations, test))
        base = baseline().fit(texts, labels[train])
        gap = _difference(truth, np.asarray(predicted, dtype=object),
                          base.predict([rows.texts[i] for i in test]), resamples=0)["macro_f1"]
        gaps.append(gap)
        say(f"split seed {seed}: model minus baseline {100 * gap:+.2f} macro-F1 points")
    mean = float(np.mean(gaps))
    se = float(np.std(gaps, ddof=1) / np.sqrt(len(gaps))) if len(gaps) > 1 else None
    return {"splits": repeats, "seeds": [SEED, SEED + repeats - 1], "differences": gaps,
            "mean_difference": round(mean, 4), "standard_error": None if se is None else round(se, 4),
            "seconds": round(time.monotonic() - started, 1)}


def _difference(truth: Sequence[str], model: np.ndarray, base: np.ndarray, resamples: int = 1000) -> dict[str, Any]:
    """The model's macro-F1 minus the baseline's, and a 95 % interval for it from resampling the test rows
    (the same resample for both), which says how much of a difference the test set can tell apart."""
    names = sorted({*truth, *model, *base})
    code = {name: i for i, name in enumerate(names)}
    t, m, b = (np.array([code[x] for x in values]) for values in (truth, model, base))

    def gap(rows: np.ndarray) -> float:
        return _macro_f1(t[rows], m[rows], len(names)) - _macro_f1(t[rows], b[rows], len(names))

    whole = round(gap(np.arange(len(t))), 4)
    if not resamples:
        return {"macro_f1": whole}
    rng = np.random.default_rng(SEED)
    gaps = [gap(rng.integers(0, len(t), len(t))) for _ in range(resamples)]
    low, high = np.percentile(gaps, [2.5, 97.5])
    return {"macro_f1": whole, "ci95": [round(low, 4), round(high, 4)]}


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """scikit-learn's f1_score(average="macro", zero_division=0) on label codes, without its per-call checks
    (it runs a thousand times): the mean of 2·TP / (true + predicted) over the labels that occur."""
    hits = np.bincount(truth[truth == predicted], minlength=classes)
    occurring = np.bincount(truth, minlength=classes) + np.bincount(predicted, minlength=classes)
    present = occurring > 0
    return float(np.mean(2 * hits[present] / occurring[present]))


def _columns(scores: np.ndarray) -> np.ndarray:
    return np.column_stack([-scores, scores]) if scores.ndim == 1 else scores


def _log_loss(proba: np.ndarray, classes: np.ndarray, truth: Sequence[str]) -> float | None:
    """Mean log loss on the test rows whose label the model knows (None if there are none)."""
    index = {label: j for j, label in enumerate(classes)}
    known = [(i, index[label]) for i, label in enumerate(truth) if label in index]
    if not known:
        return None
    rows, columns = np.array(known).T
    return round(float(-np.log(np.clip(proba[rows, columns], 1e-15, 1.0)).mean()) + 0.0, 4)  # no "-0.0"


def _calibration_error(proba: np.ndarray, classes: np.ndarray, truth: Sequence[str], bins: int = 10) -> float:
    """Expected calibration error of the top category: over ten bins of its probability, the gap between
    the mean probability and the share of rows it was right, weighted by the rows in the bin."""
    confidence = proba.max(axis=1)
    right = classes[proba.argmax(axis=1)] == np.asarray(truth, dtype=object)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(confidence[which == b].mean() - right[which == b].mean()) * np.sum(which == b)
            for b in range(bins) if np.any(which == b)]
    return round(float(np.sum(gaps) / len(confidence)), 4)
