"""The report-category classifier: ranked categories with calibrated probabilities, for any language and
any label set.

Features: TF-IDF (sublinear term frequency) of character 1–3-grams and of word 1–2-grams, words found
by ICU (`wecity.ai.tokens`), so Chinese needs no segmenter of its own and English no stemmer; where
reports carry coordinates, the grid cells they fall in (about 100 m, 300 m and 1 km) as further tokens.
Classifiers: a linear SVM (scikit-learn's LinearSVC, classes weighted by their inverse frequency), its
regularisation C and the weight of the location tokens chosen by 3-fold cross-validation on the training
rows (macro-F1); and an NB-SVM (Wang and Manning, 2012: the same features scaled by each class's naive
Bayes log-count ratios, one binary SVM per class), its C chosen the same way. Each one's held-out scores
are scaled by its own temperature, which puts them in the same units (log-probabilities), and the sum of
the two is used where the cross-validation says it beats either alone. Probabilities: those scores scaled
by one more temperature and passed through softmax, every temperature fitted (least log loss) to the
scores the cross-validation models gave the rows they did not see. Temperature scaling keeps the ranking
and only makes the numbers honest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from wecity.ai.splits import stratified_folds
from wecity.ai.tokens import words
from wecity.core.errors import ValidationFailed

Location = tuple[float, float] | None  # (latitude, longitude) in degrees, or None where unknown

C_GRID = (0.25, 0.5, 1.0, 2.0)
NB_C_GRID = (0.1, 0.3, 1.0)  # NB-SVM's features are larger (scaled by log-ratios): its best C is smaller
LOCATION_WEIGHTS = (0.0, 0.3, 1.0)  # 0: the text alone; tried only when some training rows have coordinates
CELL_DEGREES = (0.001, 0.003, 0.01)  # about 100 m, 300 m and 1 km of latitude
FOLDS = 3
SEED = 42
SMALL = 100  # below this many rows a term seen once is kept: pruning it could leave no terms at all


def _word_tokens(text: str) -> list[str]:
    return words(text)


def _cell_tokens(location: Location) -> str:
    if location is None:
        return ""
    lat, long = location
    return " ".join(f"{size}:{int(np.floor(lat / size))}:{int(np.floor(long / size))}" for size in CELL_DEGREES)


@dataclass
class ReportClassifier:
    """Learns categories from labelled report texts (and, if given, where the reports were made).

    `fit(texts, labels)`, then `predict_proba(texts)` (one column per entry of `classes_`),
    `predict(texts)` or `top_k(texts, k)`. `chosen_` says what the cross-validation picked.
    """

    c_grid: Sequence[float] = C_GRID
    nb_c_grid: Sequence[float] = NB_C_GRID  # empty: the SVM alone
    location_weights: Sequence[float] = LOCATION_WEIGHTS
    folds: int = FOLDS
    seed: int = SEED
    char_ngrams: tuple[int, int] = (1, 3)
    word_ngrams: tuple[int, int] = (1, 2)
    classes_: np.ndarray = field(init=False, repr=False)
    chosen_: dict[str, Any] = field(init=False, repr=False, default_factory=dict)

    def fit(self, texts: Sequence[str], labels: Sequence[str],
            locations: Sequence[Location] | None = None) -> ReportClassifier:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if len(texts) != len(labels) or (locations is not None and len(locations) != len(texts)):
            raise ValidationFailed("texts, labels and locations must have one entry per report",
                                   message_zh="文本、类别与位置须逐条对应")
        if len(set(labels)) < 2:
            raise ValidationFailed("at least two categories are needed to learn from",
                                   message_zh="至少需要两个类别才能训练")
        min_df = 2 if len(texts) >= SMALL else 1
        self._chars = TfidfVectorizer(analyzer="char", ngram_range=self.char_ngrams, sublinear_tf=True, min_df=min_df,
                                      dtype=np.float32)
        self._words = TfidfVectorizer(tokenizer=_word_tokens, token_pattern=None, ngram_range=self.word_ngrams,
                                      sublinear_tf=True, min_df=min_df, dtype=np.float32)
        text_features = sp.hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)]).tocsr()
        self._cells = None
        cells: sp.csr_matrix | None = None
        if locations is not None and any(loc is not None for loc in locations):
            self._cells = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True,
                                          dtype=np.float32)
            cells = self._cells.fit_transform([_cell_tokens(loc) for loc in locations])
        weights = self.location_weights if cells is not None else (0.0,)

        y = np.asarray(labels, dtype=object)
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        self._nbsvm: _NaiveBayesSVM | None = None
        best: tuple[float, float, float, np.ndarray, np.ndarray] | None = None
        splits = stratified_folds(list(labels), self.folds, seed=self.seed)
        for weight in weights:
            features = _joined(text_features, cells, weight)
            for c in self.c_grid:
                scores, rows = self._held_out_scores(features, y, splits, partial(self._classifier, c))
                if not len(rows):
                    break  # every label has one row: nothing to hold out, keep the first setting
                f1 = _macro_f1(y[rows], self.classes_[scores.argmax(axis=1)])
                if best is None or f1 > best[0]:
                    best = (f1, weight, c, scores, rows)
        if best is None:
            self._weight, self._c, self._temperature, self._svm_scale = weights[0], 0.5, 1.0, 1.0
            self.chosen_ = {"C": self._c, "location_weight": self._weight, "members": ["svm"], "temperature": 1.0}
            features = _joined(text_features, cells, self._weight)
        else:
            f1, self._weight, self._c, scores, rows = best
            features = _joined(text_features, cells, self._weight)
            truth = np.searchsorted(self.classes_, y[rows])
            self._svm_scale = 1 / _fit_temperature(scores, truth)
            self.chosen_ = {"C": self._c, "location_weight": self._weight}
            nb_c, nb_scores, nb_f1 = self._choose_nbsvm(features, y, splits, rows)
            held_out = {"svm": (f1, self._svm_scale * scores)}
            if nb_scores is not None:
                self._nb_scale = 1 / _fit_temperature(nb_scores, truth)
                both = held_out["svm"][1] + self._nb_scale * nb_scores
                held_out["nbsvm"] = (nb_f1, self._nb_scale * nb_scores)
                held_out["svm+nbsvm"] = (_macro_f1(y[rows], self.classes_[both.argmax(axis=1)]), both)
                self.chosen_ |= {"C_nbsvm": nb_c,
                                 "cv_macro_f1_of": {k: round(v[0], 4) for k, v in held_out.items()},
                                 "member_temperatures": {"svm": round(1 / self._svm_scale, 4),
                                                         "nbsvm": round(1 / self._nb_scale, 4)}}
            chosen = max(held_out, key=lambda k: held_out[k][0])  # a tie goes to the simpler, listed first
            f1, scores = held_out[chosen]
            if chosen == "nbsvm":
                self._svm_scale = 0.0
            if chosen != "svm":
                self._nbsvm = _NaiveBayesSVM(nb_c, self._classifier).fit(features, y)
            self._temperature = _fit_temperature(scores, truth)
            self.chosen_ |= {"members": chosen.split("+"), "cv_macro_f1": round(f1, 4),
                             "temperature": round(self._temperature, 4)}
        self._svm = self._classifier(self._c).fit(features, y) if self._svm_scale else None
        assert self._svm is None or list(self._svm.classes_) == list(self.classes_)  # score columns: `classes_`
        return self

    def _choose_nbsvm(self, features: sp.csr_matrix, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                      rows: np.ndarray) -> tuple[float, np.ndarray | None, float]:
        """NB-SVM's C by the same folds: (C, its held-out scores, their macro-F1); no scores when not tried."""
        best: tuple[float, np.ndarray | None, float] = (0.0, None, -1.0)
        for c in self.nb_c_grid:
            scores, _ = self._held_out_scores(features, y, splits, partial(_NaiveBayesSVM, c, self._classifier))
            f1 = _macro_f1(y[rows], self.classes_[scores.argmax(axis=1)])
            if f1 > best[2]:
                best = (c, scores, f1)
        return best

    def _classifier(self, c: float) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=c, class_weight="balanced", dual="auto", random_state=self.seed, max_iter=5000)

    def _held_out_scores(self, features: sp.csr_matrix, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                         make: Callable[[], Any]) -> tuple[np.ndarray, np.ndarray]:
        """The scores each fold's model gives the rows it did not see (every label is in every training part,
        so the columns are `classes_`), and those rows."""
        scores, rows = [], []
        for train, held_out in splits:
            svm = make().fit(features[train], y[train])
            scores.append(_scores(svm, features[held_out]))
            rows.append(held_out)
        if not rows:
            return np.zeros((0, len(self.classes_))), np.zeros(0, dtype=int)
        return np.vstack(scores), np.concatenate(rows)

    def _features(self, texts: Sequence[str], locations: Sequence[Location] | None) -> sp.csr_matrix:
        parts = [self._chars.transform(texts), self._words.transform(texts)]
        if self._weight:
            assert self._cells is not None
            cells = [_cell_tokens(loc) for loc in (locations if locations is not None else [None] * len(texts))]
            parts.append(self._weight * self._cells.transform(cells))
        return sp.hstack(parts).tocsr()

    def decision_function(self, texts: Sequence[str], locations: Sequence[Location] | None = None) -> np.ndarray:
        """The classifiers' scores, one column per class, before the last temperature: each one's scores over
        its own temperature, summed over the classifiers the cross-validation chose."""
        features = self._features(texts, locations)
        nbsvm = getattr(self, "_nbsvm", None)  # None in models saved before NB-SVM was added
        scale = getattr(self, "_svm_scale", 1.0)
        total = scale * _scores(self._svm, features) if self._svm is not None else 0.0
        if nbsvm is not None:
            total = total + self._nb_scale * nbsvm.decision_function(features)
        return np.asarray(total, dtype=np.float64)

    def predict_proba(self, texts: Sequence[str], locations: Sequence[Location] | None = None) -> np.ndarray:
        """Calibrated probabilities, one row per text and one column per entry of `classes_`; rows sum to 1."""
        return softmax(self.decision_function(texts, locations) / self._temperature, axis=1)

    def predict(self, texts: Sequence[str], locations: Sequence[Location] | None = None) -> list[str]:
        return [str(label) for label in self.classes_[self.decision_function(texts, locations).argmax(axis=1)]]

    def top_k(self, texts: Sequence[str], k: int = 3,
              locations: Sequence[Location] | None = None) -> list[list[tuple[str, float]]]:
        """For each text its `k` likeliest categories with their probabilities, the likeliest first."""
        proba = self.predict_proba(texts, locations)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        return [[(str(self.classes_[j]), float(p[j])) for j in row] for p, row in zip(proba, order, strict=True)]


class _NaiveBayesSVM:
    """NB-SVM (Wang and Manning, 2012), one-vs-rest: for each class the features scaled by the log-ratio of how
    often each term occurs in the class's rows and in the others' (add-one smoothed), and a binary linear SVM
    on them. The scaling makes terms that tell the class apart count for more before the SVM weighs them."""

    def __init__(self, c: float, classifier: Callable[[float], Any]) -> None:
        self.c, self._classifier = c, classifier

    def fit(self, features: sp.csr_matrix, y: np.ndarray) -> _NaiveBayesSVM:
        present = features.copy()
        present.data[:] = 1
        self.classes_ = np.array(sorted(set(y)), dtype=object)
        weights, intercepts = [], []
        for label in self.classes_:
            mine = y == label
            p = np.asarray(present[mine].sum(axis=0)).ravel() + 1
            q = np.asarray(present[~mine].sum(axis=0)).ravel() + 1
            ratio = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
            svm = self._classifier(self.c).fit(features @ sp.diags(ratio), mine)
            # (x · ratio) · w + b = x · (ratio · w) + b: one weight column per class serves every prediction
            weights.append(ratio * svm.coef_.ravel())
            intercepts.append(svm.intercept_[0])
        self._weights = np.column_stack(weights).astype(np.float32)
        self._intercepts = np.array(intercepts)
        return self

    def decision_function(self, features: sp.csr_matrix) -> np.ndarray:
        return np.asarray(features @ self._weights, dtype=np.float64) + self._intercepts


def _joined(text_features: sp.csr_matrix, cells: sp.csr_matrix | None, weight: float) -> sp.csr_matrix:
    if cells is None or not weight:
        return text_features
    return sp.hstack([text_features, weight * cells]).tocsr()


def _scores(svm: Any, features: sp.csr_matrix) -> np.ndarray:
    """One column per class even for two classes, where LinearSVC gives one score (for its second class)."""
    scores = svm.decision_function(features)
    if scores.ndim == 1:
        scores = np.column_stack([np.zeros_like(scores), scores])
    return np.asarray(scores, dtype=np.float64)


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def _fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The T > 0 for which softmax(scores / T) gives the true classes the least log loss (Guo et al., 2017)."""
    picked = np.arange(len(truth))

    def loss(log_t: float) -> float:
        return float(-log_softmax(scores / np.exp(log_t), axis=1)[picked, truth].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-5.0, 5.0), method="bounded").x))
