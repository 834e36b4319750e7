"""The report classifier: ranked categories with calibrated probabilities."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from wecity.ai.model import ReportClassifier
from wecity.ai.tokens import words
from wecity.core.errors import ValidationFailed

from .reports import EN, ZH


def _examples(vocabulary: dict[str, list[str]], per_label: int = 12) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for label, terms in vocabulary.items():
        for i in range(per_label):
            texts.append(f"{terms[i % len(terms)]} {terms[(i + 1) % len(terms)]} {i}")
            labels.append(label)
    return texts, labels


@pytest.mark.parametrize("vocabulary", [ZH, EN], ids=["zh", "en"])
def test_top_k_is_ranked_and_sums_to_at_most_one(vocabulary: dict[str, list[str]]) -> None:
    texts, labels = _examples(vocabulary)
    model = ReportClassifier().fit(texts, labels)
    assert sorted(model.classes_) == sorted(vocabulary)
    proba = model.predict_proba(texts[:5])
    assert proba.shape == (5, len(vocabulary))
    assert np.allclose(proba.sum(axis=1), 1.0)
    for ranked in model.top_k(texts, k=3):
        probabilities = [p for _, p in ranked]
        assert len(ranked) == 3
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-9
    first = next(iter(vocabulary))
    assert model.top_k([" ".join(vocabulary[first])], k=1)[0][0][0] == first
    assert model.predict([" ".join(vocabulary[first])]) == [first]


def test_two_categories_and_a_category_of_one_report() -> None:
    texts, labels = _examples({"a": ["pothole", "crack"], "b": ["graffiti", "paint"]})
    model = ReportClassifier().fit([*texts, "a whale on the beach"], [*labels, "whale"])
    assert len(model.classes_) == 3
    assert model.predict(["deep pothole crack"]) == ["a"]
    two = ReportClassifier().fit(texts, labels)
    assert two.predict_proba(["graffiti"]).shape == (1, 2)
    assert two.top_k(["graffiti paint"], k=3)[0][0][0] == "b"  # k larger than the classes: all of them


def test_probabilities_are_temperature_scaled_from_held_out_rows() -> None:
    texts, labels = _examples(ZH, per_label=20)
    model = ReportClassifier().fit(texts, labels)
    assert model.chosen_["C"] in model.c_grid
    assert model.chosen_["temperature"] > 0
    scores = model.decision_function(texts[:3])
    assert (scores.argmax(axis=1) == model.predict_proba(texts[:3]).argmax(axis=1)).all()


def test_one_category_is_not_enough() -> None:
    with pytest.raises(ValidationFailed):
        ReportClassifier().fit(["a", "b"], ["x", "x"])


def test_words_of_any_script() -> None:
    assert words("井盖丢失了，pothole on 5th Ave!") == ["井", "盖", "丢失", "了", "pothole", "on", "5th", "Ave"]
    assert words("😀 路灯不亮 😀 lamp") == ["路灯", "不", "亮", "lamp"]  # ICU counts UTF-16 units


def test_the_members_are_chosen_by_cross_validation() -> None:
    texts, labels = _examples(ZH, per_label=20)
    model = ReportClassifier().fit(texts, labels)
    assert set(model.chosen_["members"]) <= {"svm", "nbsvm", "knn"}
    options = model.chosen_["cv_macro_f1_of"]
    assert set(options) >= {"svm", "nbsvm", "svm+nbsvm", "svm+knn", "nbsvm+knn", "svm+nbsvm+knn"}
    assert model.chosen_["cv_macro_f1"] == max(options.values())
    assert model.chosen_["head_weight"] in model.head_weights
    svm_alone = ReportClassifier(nb_c_grid=(), knn_weights=()).fit(texts, labels)
    assert svm_alone.chosen_["members"] == ["svm"]
    assert list(svm_alone.chosen_["cv_macro_f1_of"]) == ["svm"]


def test_the_nearest_reports_share_out_their_similarity_by_category() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    from wecity.ai.model import _NearestReports

    train = ["井盖丢失", "井盖不见了", "路灯不亮", "路灯坏了", "垃圾没人收"]
    vectors = TfidfVectorizer(analyzer="char").fit(train)
    near = _NearestReports(k=2).fit(vectors.transform(train), np.array([0, 0, 1, 1, 2]), 3)
    shares = near.scores(vectors.transform(["路灯不亮", "井盖丢失了", "天气很好"]))
    assert shares[0].argmax() == 1 and shares[1].argmax() == 0
    assert np.allclose(shares[:2].sum(axis=1), 1.0)
    assert (shares[2] == 0).all()  # nothing alike: no share for any category


def test_a_model_saved_before_nbsvm_still_serves() -> None:
    texts, labels = _examples(EN, per_label=20)
    model = ReportClassifier(nb_c_grid=(), knn_weights=(), head_weights=(0.0,)).fit(texts, labels)
    expected = model.predict_proba(texts[:4])
    old = pickle.loads(pickle.dumps(model))
    old._temperature = model._temperature / model._svm_scale  # what the old fit kept: one T for the raw scores
    del old._nbsvm, old._svm_scale, old._knn, old._knn_weight, old._head_weight  # what the old model never had
    assert np.allclose(old.predict_proba(texts[:4]), expected, atol=1e-6)


def test_the_nearest_reports_compare_each_report_by_its_strongest_terms() -> None:
    from wecity.ai.model import _strongest

    rows = sp.csr_matrix(np.array([[0.1, 0.5, 0.2, 0.9, 0.3], [0.0, 0.4, 0.0, 0.0, 0.0]], dtype=np.float32))
    kept = _strongest(rows, terms=2).toarray()
    assert (kept[0] > 0).tolist() == [False, True, False, True, False]  # 0.5 and 0.9, the two largest
    assert np.allclose(np.linalg.norm(kept, axis=1), 1.0)
    assert kept[1].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # fewer terms than the cut: all kept
