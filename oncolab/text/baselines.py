"""Baselines for the text route: the numeric panel itself, and TF-IDF + logistic regression.

Taught in chapter 6 ("From blood tests to sentences"): a text model of lab results should be
compared with a model of the numbers it was written from.

* :class:`PanelFeaturizer`: log of each value, standardised with the training mean and
  standard deviation, a missing value set to 0 (the training mean) plus a 0/1 "missing"
  indicator per biomarker;
* :func:`numeric_panel_model`, :func:`tfidf_model`, :func:`embedding_model`: scikit-learn
  pipelines ending in a multinomial logistic regression;
* :func:`macro_auc_ci`: macro one-vs-rest AUC with a patient bootstrap confidence interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from oncolab.data.labs import BIOMARKERS, biomarker

__all__ = ["PanelFeaturizer", "embedding_model", "macro_auc_ci", "numeric_panel_model", "tfidf_model"]


class PanelFeaturizer(TransformerMixin, BaseEstimator):
    """Lab table -> standardised (log) values and missing-value indicators, 2 columns per biomarker."""

    def __init__(self, log: bool = True):
        self.log = log

    def _values(self, labs) -> np.ndarray:
        if not isinstance(labs, pd.DataFrame):
            raise TypeError(f"expected the lab table (a DataFrame), got {type(labs).__name__}")
        for c in labs.columns:
            biomarker(c)  # unknown names raise
        missing = [b.name for b in BIOMARKERS if b.name not in labs.columns]
        if missing:
            raise ValueError(f"lab table lacks columns {missing}; expected {[b.name for b in BIOMARKERS]}")
        x = labs[[b.name for b in BIOMARKERS]].to_numpy(float)
        if (x < 0).any():
            r, c = np.argwhere(x < 0)[0]
            raise ValueError(f"{BIOMARKERS[c].name}: a concentration cannot be negative, got {x[r, c]} (row {r})")
        return np.log1p(x) if self.log else x

    def fit(self, labs, y=None):
        x = self._values(labs)
        self.mean_ = np.nanmean(x, axis=0)
        self.scale_ = np.nanstd(x, axis=0)
        bad = ~np.isfinite(self.mean_)
        if bad.any():
            raise ValueError(f"no measured value in the training data for {[BIOMARKERS[i].name for i in np.where(bad)[0]]}")
        self.scale_[self.scale_ == 0] = 1.0
        return self

    def transform(self, labs):
        x = self._values(labs)
        miss = np.isnan(x)
        z = np.where(miss, 0.0, (x - self.mean_) / self.scale_)
        return np.hstack([z, miss.astype(float)])

    def get_feature_names_out(self, input_features=None):
        return np.array([b.name for b in BIOMARKERS] + [f"{b.name}_missing" for b in BIOMARKERS])


def _logreg(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000)


def numeric_panel_model(C: float = 1.0) -> Pipeline:
    """Numeric baseline: :class:`PanelFeaturizer` then logistic regression (fit on the lab table)."""
    return make_pipeline(PanelFeaturizer(), _logreg(C))


def tfidf_model(C: float = 10.0, ngram_range: tuple[int, int] = (1, 2), min_df: int = 2) -> Pipeline:
    """Text baseline: TF-IDF of words and word pairs then logistic regression (fit on texts)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, sublinear_tf=True,
                          token_pattern=r"(?u)\b\w+\b")
    return make_pipeline(vec, _logreg(C))


def embedding_model(C: float = 1.0) -> Pipeline:
    """Probe for embeddings: standardise each dimension then logistic regression."""
    return make_pipeline(StandardScaler(), _logreg(C))


def macro_auc_ci(y: np.ndarray, proba: np.ndarray, n_boot: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Macro one-vs-rest AUC and a percentile bootstrap interval over patients: ``(auc, lo, hi)``.

    Bootstrap samples that miss a class are drawn again (they have no macro AUC).
    """
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or len(proba) != len(y):
        raise ValueError(f"proba must be (n, n_classes) with n = len(y) = {len(y)}, got {proba.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    k = proba.shape[1]
    if set(np.unique(y)) != set(range(k)):
        raise ValueError(f"y must contain every class 0..{k - 1}, got {sorted(set(np.unique(y)))}")

    def auc(yy, pp):
        return float(roc_auc_score(yy, pp, multi_class="ovr", average="macro", labels=list(range(k))))

    point = auc(y, proba)
    rng = np.random.default_rng(seed)
    stats = []
    while len(stats) < n_boot:
        idx = rng.integers(0, len(y), len(y))
        if len(np.unique(y[idx])) < k:
            continue
        stats.append(auc(y[idx], proba[idx]))
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)
