"""Stratified splits that also work for labels with one or two rows, seeded so that every run is the same.

scikit-learn's stratified splitters refuse (or warn about) a label with fewer rows than folds; a city's
label set often has such labels, and a model must still learn them. Here a label with a single row always
stays on the training side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _rows_by_label(labels: Sequence[str], rng: np.random.Generator) -> list[np.ndarray]:
    """Each label's row numbers, shuffled, in the order of the sorted labels."""
    array = np.asarray(labels, dtype=object)
    return [rng.permutation(np.flatnonzero(array == label)) for label in sorted(set(labels))]


def stratified_folds(labels: Sequence[str], folds: int, *, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """`folds` (train rows, held-out rows) pairs in which every label is in every training part.

    A label's rows are dealt to the folds in turn, so a label with m ≥ 2 rows is held out in at most one of
    its rows per fold (m < folds) or in about m/folds of them; a label with one row is never held out.
    """
    rng = np.random.default_rng(seed)
    fold_of = np.full(len(labels), -1)
    position = 0
    for rows in _rows_by_label(labels, rng):
        if len(rows) < 2:
            continue
        fold_of[rows] = (position + np.arange(len(rows))) % folds
        position += len(rows)
    everything = np.arange(len(labels))
    pairs = []
    for fold in range(folds):
        held_out = np.flatnonzero(fold_of == fold)
        if len(held_out):
            pairs.append((everything[fold_of != fold], held_out))
    return pairs


def stratified_subset(labels: Sequence[str], fraction: float, *, seed: int) -> np.ndarray:
    """About `fraction` of the rows, the same share of each label and at least one row of every label."""
    rng = np.random.default_rng(seed)
    chosen = [rows[: max(1, round(fraction * len(rows)))] for rows in _rows_by_label(labels, rng)]
    return np.sort(np.concatenate(chosen)) if chosen else np.arange(0)


def stratified_split(labels: Sequence[str], test_size: float, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows): `test_size` of each label's rows held out; a label with one row is kept for
    training. Where every label has two rows or more this is scikit-learn's `train_test_split` with
    `stratify`, so figures can be compared with others measured that way."""
    from sklearn.model_selection import train_test_split

    array = np.asarray(labels, dtype=object)
    values, counts = np.unique(array, return_counts=True)
    single = np.isin(array, values[counts < 2])
    rest = np.flatnonzero(~single)
    try:
        train, test = train_test_split(rest, test_size=test_size, stratify=array[rest], random_state=seed)
    except ValueError:  # fewer test rows than labels: hold out a share of each label's rows instead
        rng = np.random.default_rng(seed)
        held = [rows[: max(1, round(test_size * len(rows)))] for rows in _rows_by_label(list(array[rest]), rng)]
        test = rest[np.concatenate(held)]
        train = np.setdiff1d(rest, test)
    return np.sort(np.concatenate([train, np.flatnonzero(single)])), np.sort(test)
