"""Seeded stratified splits that keep labels with one or two rows."""

from __future__ import annotations

import numpy as np

from wecity.ai.splits import stratified_folds, stratified_split, stratified_subset

LABELS = ["a"] * 20 + ["b"] * 7 + ["c"] * 2 + ["d"]


def test_every_label_is_in_every_training_part() -> None:
    folds = stratified_folds(LABELS, 3, seed=42)
    assert len(folds) == 3
    held = np.concatenate([test for _, test in folds])
    assert sorted(held) == sorted(set(range(len(LABELS))) - {LABELS.index("d")})  # the single row stays
    for train, test in folds:
        assert {LABELS[i] for i in train} == set(LABELS)
        assert not set(train) & set(test)


def test_subsets_keep_shares_and_every_label() -> None:
    rows = stratified_subset(LABELS, 0.1, seed=42)
    assert [LABELS[i] for i in rows].count("a") == 2
    assert {LABELS[i] for i in rows} == set(LABELS)
    assert list(rows) == list(stratified_subset(LABELS, 0.1, seed=42))


def test_split_holds_out_a_fifth_and_keeps_single_rows_for_training() -> None:
    train, test = stratified_split(LABELS, 0.2, seed=42)
    assert len(test) == 6 and LABELS.index("d") in train
    assert sorted([*train, *test]) == list(range(len(LABELS)))
    tiny_train, tiny_test = stratified_split(["x", "x", "y", "y", "z", "z"], 0.2, seed=42)
    assert len(tiny_test) == 3 and len(tiny_train) == 3
