"""`wecity ai evaluate`: the figures as one JSON object on the last line, for any language and label set."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wecity.cli import main

from .reports import write_en, write_zh

FIGURES = {"top1", "top3", "macro_f1", "n_test"}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[list[str], dict[str, Any]]:
    assert main(["ai", "evaluate", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    return lines[:-1], json.loads(lines[-1])


def test_chinese_reports_title_and_text_joined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_zh(tmp_path / "zh.csv")
    progress, result = _run(capsys, str(path), "--text", "title", "--text", "text", "--label", "category")
    assert progress, "progress lines come before the JSON"
    assert FIGURES <= set(result["model"]) and FIGURES <= set(result["baseline"])
    low, high = result["difference"]["ci95"]
    assert low <= result["difference"]["macro_f1"] <= high
    assert [point["fraction"] for point in result["learning_curve"]] == [0.1, 0.25, 0.5, 1.0]
    assert all(0 <= point["macro_f1"] <= 1 for point in result["learning_curve"])
    assert result["learning_curve"][-1]["macro_f1"] == result["model"]["macro_f1"]
    # 5 unlabelled rows skipped and counted, one without text, one repeating a text
    assert (result["skipped_unlabelled"], result["skipped_without_text"], result["skipped_repeated_text"]) == (5, 1, 1)
    assert result["n_train"] + result["n_test"] == 160
    assert result["n_test"] == result["model"]["n_test"] == 32  # a stratified 80/20 split
    assert result["model"]["macro_f1"] > 0.9  # the made-up categories are easy to tell apart
    assert result["model"]["top1"] <= result["model"]["top3"] <= 1
    assert 0 <= result["model"]["calibration_error"] <= 1 and result["model"]["log_loss"] >= 0


def test_the_split_column_decides_train_and_test(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_zh(tmp_path / "zh.csv")
    with path.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] and (r["title"] or r["text"])]
    seen, kept = set(), []
    for r in rows:
        if (key := f"{r['title']} {r['text']}".strip()) not in seen:
            seen.add(key)
            kept.append(r)
    _, result = _run(capsys, str(path), "--text", "title", "--text", "text", "--label", "category",
                     "--split", "part")
    assert result["n_train"] == sum(r["part"] == "train" for r in kept) == 120
    assert result["n_test"] == result["model"]["n_test"] == result["baseline"]["n_test"] == 40
    assert result["split"] == "column"


def test_english_labels_never_seen_before_with_locations(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = write_en(tmp_path / "en.csv")
    _, result = _run(capsys, str(path), "--text", "description", "--label", "kind", "--lat", "lat", "--long", "lng")
    assert result["labels"] == 5  # three common ones, one with two rows, one with a single row
    assert result["skipped_unlabelled"] == 1
    assert result["n_train"] + result["n_test"] == 93
    assert result["model"]["macro_f1"] > 0.8
    assert result["model"]["chosen"]["location_weight"] in (0.0, 0.3, 1.0)


def test_repeated_splits_give_the_mean_difference_and_its_error(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = write_en(tmp_path / "en.csv")
    progress, result = _run(capsys, str(path), "--text", "description", "--label", "kind", "--repeats", "3")
    repeated = result["repeated"]
    assert repeated["splits"] == 3 and repeated["seeds"] == [42, 44] and len(repeated["differences"]) == 3
    assert repeated["mean_difference"] == pytest.approx(np.mean(repeated["differences"]), abs=1e-4)
    assert repeated["standard_error"] == pytest.approx(
        np.std(repeated["differences"], ddof=1) / np.sqrt(3), abs=1e-4)
    # The first split is the one of the single run (seed 42): the same difference.
    assert repeated["differences"][0] == result["difference"]["macro_f1"]
    assert sum(line.startswith("split seed ") for line in progress) == 3
    for bad in (["--repeats", "1"], ["--repeats", "101"], ["--repeats", "3", "--split", "part"]):
        assert main(["ai", "evaluate", str(path), "--text", "description", "--label", "kind", *bad]) == 2
    assert "--repeats takes 2 to 100" in capsys.readouterr().err


def test_a_missing_column_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_en(tmp_path / "en.csv")
    assert main(["ai", "evaluate", str(path), "--text", "summary", "--label", "kind"]) == 2
    assert "summary" in capsys.readouterr().err


def test_the_resampled_macro_f1_is_scikit_learns() -> None:
    from sklearn.metrics import f1_score

    from wecity.ai.evaluate import _macro_f1

    rng = np.random.default_rng(1)
    truth, predicted = rng.integers(0, 6, 300), rng.integers(0, 7, 300)  # label 6 is only ever predicted
    assert _macro_f1(truth, predicted, 7) == pytest.approx(f1_score(truth, predicted, average="macro",
                                                                    zero_division=0))
