"""The report-category classifier: ranked categories with calibrated probabilities, for any language and
any label set.

Features: TF-IDF (sublinear term frequency) of character 1–3-grams and of word 1–2-grams, words found
by ICU (`wecity.ai.tokens`), so Chinese needs no segmenter of its own and English no stemmer; character
1–3-grams of a report's opening (its first 40 characters, where people say what the matter is) as a block
of their own with its own weight; where reports carry coordinates, the grid cells they fall in (about
100 m, 300 m and 1 km) as further tokens.

Members, each chosen by 3-fold cross-validation on the training rows (macro-F1 of the rows held out):
- a linear SVM (scikit-learn's LinearSVC, classes weighted by their inverse frequency), its C, the weight
  of the location cells and the weight of the opening chosen by the folds;
- an NB-SVM (Wang and Manning, 2012: the same features scaled by each class's naive-Bayes log-count
  ratios, one binary SVM per class), its C chosen the same way;
- the nearest reports: the five training reports most like the new one, each class's share of their
  similarity.
Each classifier's held-out scores are divided by its own temperature, which puts them in the same units
(log-probabilities); the nearest reports' shares are added with a weight the folds choose; the sum used is
the one of SVM, NB-SVM, or both, with or without the nearest reports, that the folds rank best (a tie goes
to the simpler). Probabilities: that sum scaled by one more temperature and passed through softmax, every
temperature fitted (least log loss) to the scores the cross-validation models gave the rows they did not
see. Temperature scaling keeps the ranking and only makes the numbers honest.
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
Folds = list[tuple[np.ndarray, np.ndarray]]

C_GRID = (0.25, 0.5, 1.0, 2.0)
NB_C_GRID = (0.1, 0.3, 1.0)  # NB-SVM's features are larger (scaled by log-ratios): its best C is smaller
LOCATION_WEIGHTS = (0.0, 0.3, 1.0)  # 0: the text alone; tried only when some training rows have coordinates
CELL_DEGREES = (0.001, 0.003, 0.01)  # about 100 m, 300 m and 1 km of latitude
HEAD_CHARS = 40  # the opening of a report, weighted apart
HEAD_NGRAMS = (1, 3)
HEAD_WEIGHTS = (0.6, 0.0)  # the first is tried with every C; the others at the C chosen
KNN_NEIGHBOURS = 5
KNN_WEIGHTS = (1.0, 2.0, 4.0)  # in units of the classifiers' temperature-scaled scores
KNN_TERMS = 32  # of each report, the strongest, by which reports are compared
KNN_CHUNK = 512
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
    head_weights: Sequence[float] = HEAD_WEIGHTS
    knn_weights: Sequence[float] = KNN_WEIGHTS  # empty: no nearest reports
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
        self._head = TfidfVectorizer(analyzer="char", ngram_range=HEAD_NGRAMS, sublinear_tf=True, min_df=min_df,
                                     dtype=np.float32)
        body = sp.hstack([self._chars.fit_transform(texts), self._words.fit_transform(texts)]).tocsr()
        head = self._head.fit_transform([_opening(t) for t in texts])
        self._cells = None
        cells: sp.csr_matrix | None = None
        if locations is not None and any(loc is not None for loc in locations):
            self._cells = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True,
                                          dtype=np.float32)
            cells = self._cells.fit_transform([_cell_tokens(loc) for loc in locations])

        y = np.asarray(labels, dtype=object)
        self.classes_ = np.array(sorted(set(labels)), dtype=object)
        self._nbsvm: _NaiveBayesSVM | None = None
        self._knn: _NearestReports | None = None
        self._svm_scale, self._knn_weight = 1.0, 0.0
        splits = stratified_folds(list(labels), self.folds, seed=self.seed)
        best = self._choose_svm(body, head, cells, y, splits)
        if best is None:  # every label has one row: nothing to hold out, keep the first settings
            self._c, self._head_weight, self._weight, self._temperature = 0.5, self.head_weights[0], 0.0, 1.0
            self.chosen_ = {"C": self._c, "head_weight": self._head_weight, "location_weight": self._weight,
                            "members": ["svm"], "temperature": 1.0}
            features = _joined(body, [(head, self._head_weight)])
        else:
            f1, self._c, self._head_weight, self._weight, scores, rows = best
            features = _joined(body, [(head, self._head_weight), (cells, self._weight)])
            self._choose_members(features, y, splits, f1, scores, rows)
        if self._svm_scale:
            self._svm = self._classifier(self._c).fit(features, y)
            assert list(self._svm.classes_) == list(self.classes_)  # the score columns are `classes_`
        else:
            self._svm = None
        if "nbsvm" in self.chosen_["members"]:
            self._nbsvm = _NaiveBayesSVM(self.chosen_["C_nbsvm"], self._classifier).fit(features, y)
        if "knn" in self.chosen_["members"]:
            self._knn = _NearestReports(KNN_NEIGHBOURS).fit(features, np.searchsorted(self.classes_, y),
                                                            len(self.classes_))
        return self

    def _choose_svm(self, body: sp.csr_matrix, head: sp.csr_matrix, cells: sp.csr_matrix | None, y: np.ndarray,
                    splits: Folds) -> tuple[float, float, float, float, np.ndarray, np.ndarray] | None:
        """The SVM's C and the location weight by cross-validation (the opening at its first weight), then the
        opening's weight at that C: (macro-F1, C, opening weight, location weight, held-out scores, rows)."""
        best: tuple[float, float, float, float, np.ndarray, np.ndarray] | None = None
        head_weight = self.head_weights[0]
        for weight in self.location_weights if cells is not None else (0.0,):
            features = _joined(body, [(head, head_weight), (cells, weight)])
            for c in self.c_grid:
                f1, scores, rows = self._cross_validated(features, y, splits, partial(self._classifier, c))
                if not len(rows):
                    return None
                if best is None or f1 > best[0]:
                    best = (f1, c, head_weight, weight, scores, rows)
        assert best is not None
        c, weight = best[1], best[3]
        for head_weight in self.head_weights[1:]:
            features = _joined(body, [(head, head_weight), (cells, weight)])
            f1, scores, rows = self._cross_validated(features, y, splits, partial(self._classifier, c))
            if f1 > best[0]:
                best = (f1, c, head_weight, weight, scores, rows)
        return best

    def _choose_members(self, features: sp.csr_matrix, y: np.ndarray, splits: Folds, svm_f1: float,
                        svm_scores: np.ndarray, rows: np.ndarray) -> None:
        """Which of SVM, NB-SVM and nearest reports to sum, by the macro-F1 of the sum on the held-out rows;
        sets the members' scales, the last temperature and `chosen_`."""
        truth = np.searchsorted(self.classes_, y[rows])
        self._svm_scale = 1 / _fit_temperature(svm_scores, truth)
        held_out = {"svm": (svm_f1, self._svm_scale * svm_scores)}
        self.chosen_ = {"C": self._c, "head_weight": self._head_weight, "location_weight": self._weight}
        temperatures = {"svm": round(1 / self._svm_scale, 4)}
        nb_c, nb_scores, nb_f1 = self._choose_nbsvm(features, y, splits)
        if nb_scores is not None:
            self._nb_scale = 1 / _fit_temperature(nb_scores, truth)
            temperatures["nbsvm"] = round(1 / self._nb_scale, 4)
            both = held_out["svm"][1] + self._nb_scale * nb_scores
            held_out["nbsvm"] = (nb_f1, self._nb_scale * nb_scores)
            held_out["svm+nbsvm"] = (_macro_f1(y[rows], self.classes_[both.argmax(axis=1)]), both)
            self.chosen_["C_nbsvm"] = nb_c
        knn_weights: dict[str, float] = {}
        if self.knn_weights:
            near = self._held_out_neighbours(features, y, splits)
            for name, (_, scores) in list(held_out.items()):
                for weight in self.knn_weights:  # the first weight that does best, for each sum
                    summed = scores + weight * near
                    f1 = _macro_f1(y[rows], self.classes_[summed.argmax(axis=1)])
                    if f1 > held_out.get(f"{name}+knn", (-1.0,))[0]:
                        held_out[f"{name}+knn"] = (f1, summed)
                        knn_weights[f"{name}+knn"] = weight
        chosen = max(held_out, key=lambda k: held_out[k][0])  # a tie goes to the simpler, listed first
        f1, scores = held_out[chosen]
        members = chosen.split("+")
        if "svm" not in members:
            self._svm_scale = 0.0
        self._knn_weight = knn_weights.get(chosen, 0.0)
        self._temperature = _fit_temperature(scores, truth)
        self.chosen_ |= {"members": members, "knn_weight": self._knn_weight, "member_temperatures": temperatures,
                         "cv_macro_f1_of": {k: round(v[0], 4) for k, v in held_out.items()},
                         "cv_macro_f1": round(f1, 4), "temperature": round(self._temperature, 4)}

    def _held_out_neighbours(self, features: sp.csr_matrix, y: np.ndarray, splits: Folds) -> np.ndarray:
        """The nearest-report scores each fold gives the rows it did not see, in the order of the rows."""
        index = np.searchsorted(self.classes_, y)
        parts = [_NearestReports(KNN_NEIGHBOURS).fit(features[train], index[train], len(self.classes_))
                 .scores(features[held_out]) for train, held_out in splits]
        return np.vstack(parts)

    def _choose_nbsvm(self, features: sp.csr_matrix, y: np.ndarray,
                      splits: Folds) -> tuple[float, np.ndarray | None, float]:
        """NB-SVM's C by the same folds: (C, its held-out scores, their macro-F1); no scores when not tried."""
        best: tuple[float, np.ndarray | None, float] = (0.0, None, -1.0)
        for c in self.nb_c_grid:
            f1, scores, _ = self._cross_validated(features, y, splits, partial(_NaiveBayesSVM, c, self._classifier))
            if f1 > best[2]:
                best = (c, scores, f1)
        return best

    def _classifier(self, c: float) -> Any:
        from sklearn.svm import LinearSVC

        return LinearSVC(C=c, class_weight="balanced", dual="auto", random_state=self.seed, max_iter=5000)

    def _cross_validated(self, features: sp.csr_matrix, y: np.ndarray, splits: Folds,
                         make: Callable[[], Any]) -> tuple[float, np.ndarray, np.ndarray]:
        """The macro-F1 of the held-out scores (below), the scores and their rows; -1 when nothing is held out."""
        scores, rows = self._held_out_scores(features, y, splits, make)
        f1 = _macro_f1(y[rows], self.classes_[scores.argmax(axis=1)]) if len(rows) else -1.0
        return f1, scores, rows

    def _held_out_scores(self, features: sp.csr_matrix, y: np.ndarray, splits: Folds,
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
        head_weight = getattr(self, "_head_weight", 0.0)  # 0 in models saved before the opening was added
        if head_weight:
            parts.append(head_weight * self._head.transform([_opening(t) for t in texts]))
        if self._weight:
            assert self._cells is not None
            cells = [_cell_tokens(loc) for loc in (locations if locations is not None else [None] * len(texts))]
            parts.append(self._weight * self._cells.transform(cells))
        return sp.hstack(parts).tocsr()

    def decision_function(self, texts: Sequence[str], locations: Sequence[Location] | None = None) -> np.ndarray:
        """The members' scores, one column per class, before the last temperature: each classifier's scores
        over its own temperature, and the nearest reports' shares times their weight, summed over the members
        the cross-validation chose."""
        features = self._features(texts, locations)
        # Models saved before NB-SVM and the nearest reports were added have neither.
        nbsvm, knn = getattr(self, "_nbsvm", None), getattr(self, "_knn", None)
        scale = getattr(self, "_svm_scale", 1.0)
        total = scale * _scores(self._svm, features) if self._svm is not None else 0.0
        if nbsvm is not None:
            total = total + self._nb_scale * nbsvm.decision_function(features)
        if knn is not None:
            total = total + self._knn_weight * knn.scores(features)
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


class _NearestReports:
    """The training reports most like a new one (cosine of their TF-IDF features): each class's share of the
    similarity of the `k` nearest. A report that repeats or retells one the city has seen gets that one's
    category, which a linear model, weighing every term of every report at once, can miss.

    Each report is compared by its `KNN_TERMS` strongest terms only: the model file keeps every training
    report's, and on zh that is 14 times smaller than all their terms for the same held-out macro-F1."""

    def __init__(self, k: int) -> None:
        self.k = k

    def fit(self, features: sp.csr_matrix, labels: np.ndarray, classes: int) -> _NearestReports:
        self._features, self._labels, self._classes = _strongest(features).T.tocsr(), labels, classes
        return self

    def scores(self, features: sp.csr_matrix) -> np.ndarray:
        features = _strongest(features)
        out = np.zeros((features.shape[0], self._classes))
        k = min(self.k, len(self._labels))
        for start in range(0, features.shape[0], KNN_CHUNK):  # a dense block of similarities at a time
            similarity = (features[start:start + KNN_CHUNK] @ self._features).toarray()
            nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
            weights = np.take_along_axis(similarity, nearest, axis=1)
            block = out[start:start + KNN_CHUNK]
            np.add.at(block, (np.repeat(np.arange(len(block)), k), self._labels[nearest].ravel()), weights.ravel())
        totals = out.sum(axis=1, keepdims=True)
        return np.divide(out, totals, out=np.zeros_like(out), where=totals > 0)


def _strongest(features: sp.csr_matrix, terms: int = KNN_TERMS) -> sp.csr_matrix:
    """Each row with only its `terms` largest entries (ties at the cut kept), scaled to unit length again."""
    from sklearn.preprocessing import normalize

    kept = features.tocsr(copy=True)
    for row in range(kept.shape[0]):
        values = kept.data[kept.indptr[row]:kept.indptr[row + 1]]  # a view: zeroing it edits `kept`
        if len(values) > terms:
            values[values < np.partition(values, len(values) - terms)[len(values) - terms]] = 0
    kept.eliminate_zeros()
    return normalize(kept).astype(np.float32)


def _joined(base: sp.csr_matrix, blocks: Sequence[tuple[sp.csr_matrix | None, float]]) -> sp.csr_matrix:
    """`base` with each further block times its weight beside it; a block weighted 0 (or absent) left out."""
    parts = [weight * block for block, weight in blocks if block is not None and weight]
    return sp.hstack([base, *parts]).tocsr() if parts else base


def _opening(text: str) -> str:
    """The first characters of a report, where people say what the matter is (a title, a first sentence)."""
    return text[:HEAD_CHARS]


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
