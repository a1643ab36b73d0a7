"""Baselines for the text route: the numeric panel itself, and TF-IDF + logistic regression.

Taught in chapter 6 ("From blood tests to sentences"): a text model of lab results should be
compared with a model of the numbers it was written from.

* :func:`numeric_panel_model`: the panel's numbers through :class:`oncolab.features.LabFeatures`
  (the ``log1p`` lab transform, the training median for a missing value plus a 0/1 "missing"
  flag per biomarker, standardised);
* :func:`tfidf_model`, :func:`embedding_model`: the text, or its embedding;

each a scikit-learn pipeline ending in a multinomial logistic regression.
"""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from oncolab.features import LabFeatures

__all__ = ["embedding_model", "numeric_panel_model", "tfidf_model"]


def _logreg(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=5000)


def numeric_panel_model(C: float = 1.0) -> Pipeline:
    """Numeric baseline: :class:`oncolab.features.LabFeatures` then logistic regression.

    Taught in chapter 6.

    Parameters
    ----------
    C : float
        Inverse strength of the L2 penalty of the logistic regression.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; fit it on the lab table (one column per biomarker, canonical units, NaN =
        not measured) and the diagnoses.
    """
    return make_pipeline(LabFeatures(), _logreg(C))


def tfidf_model(C: float = 10.0, ngram_range: tuple[int, int] = (1, 2), min_df: int = 2) -> Pipeline:
    """Text baseline: TF-IDF of words and word pairs then logistic regression.

    Taught in chapter 6.

    Parameters
    ----------
    C : float
        As in :func:`numeric_panel_model`.
    ngram_range : tuple of int
        Smallest and largest number of words in a term.
    min_df : int
        A term must appear in at least this many training texts.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; fit it on a list of texts and the diagnoses.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=ngram_range, min_df=min_df, sublinear_tf=True,
                          token_pattern=r"(?u)\b\w+\b")
    return make_pipeline(vec, _logreg(C))


def embedding_model(C: float = 1.0) -> Pipeline:
    """Probe for embeddings: standardise each dimension then logistic regression.

    Taught in chapter 6, where it reads the embeddings of the lab narratives.

    Parameters
    ----------
    C : float
        As in :func:`numeric_panel_model`.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted, to be fitted on an (n, d) array of embeddings and the diagnoses.
    """
    return make_pipeline(StandardScaler(), _logreg(C))
