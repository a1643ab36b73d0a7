"""Stages that fit a classical classifier to a table: a random forest on the labs, a kernel SVM on the genes.

Taught in chapter 12 ("The complete system"), for the ``medfusion`` preset (random forest and
SVM on structured data); the classifiers are built in chapter 10
(:mod:`oncolab.fusion.classical`), the table features in chapters 6 and 7.

* labs ``forest``: :class:`oncolab.features.LabFeatures` -> :class:`oncolab.fusion.RandomForest`
  (300 trees, at least 3 patients per leaf). Trees need no scaling and split on the "not
  measured" flags as readily as on the values.
* genes ``svm``: :class:`oncolab.features.GeneFeatures` (log-CPM, per-gene scaling, PCA to
  ``gene_components`` whitened components) -> :class:`oncolab.fusion.KernelSVM` (RBF kernel,
  probabilities calibrated on out-of-fold decision values).

Both learn from the diagnosis, so both are cross-fitted
(:class:`~oncolab.pipeline.stages.base.CrossFittedStage`): the fusion model reads, for each
training patient, the class log-probabilities of the fold model that did not see it; a new
patient gets the log of the fold models' mean probabilities. The features are fitted once on
all fitting patients (they learn no label). Everything saves as arrays: the fitted features'
state and each fold model's trees or support vectors.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import CrossFittedStage, prefixed
from .tables import GenesPCA, read_table

__all__ = ["ClassicalStage", "GenesSVM", "LabsForest"]


class ClassicalStage(CrossFittedStage):
    """A table's features (a :mod:`oncolab.features` transformer) -> a classical classifier, cross-fitted.

    A subclass names its classifier (``model_name``, a class of :mod:`oncolab.fusion.classical`)
    and its features (``transformer_name``, a class of :mod:`oncolab.features`), and implements
    ``read`` and, where needed, :meth:`table` and :meth:`transformer_options`.
    """

    model_name: ClassVar[str] = ""
    transformer_name: ClassVar[str] = ""

    def __init__(self, folds: int = 3, seed: int = 0, progress: bool = False):
        super().__init__(folds, seed, progress)
        self.transformer = None

    @classmethod
    def from_config(cls, config) -> ClassicalStage:
        return cls(folds=config.folds, seed=config.seed, progress=config.progress)

    @classmethod
    def model_class(cls):
        """The classifier class named by ``model_name``."""
        from ... import fusion

        return getattr(fusion, cls.model_name)

    @classmethod
    def transformer_class(cls):
        """The :mod:`oncolab.features` class named by ``transformer_name``."""
        from ... import features

        return getattr(features, cls.transformer_name)

    def table(self, raw):
        """The table (patients x columns) inside the raw input."""
        return raw

    def transformer_options(self, raw, rows: np.ndarray) -> dict:
        """Keyword arguments of the features' transformer, fitted on the rows ``rows`` of ``raw``."""
        return {}

    def usable(self, raw) -> np.ndarray:
        return ~self.table(raw).isna().all(axis=1).to_numpy()

    def prepare(self, raw, rows, targets):
        table = self.table(raw)
        if targets is not None:
            self.transformer = self.transformer_class()(**self.transformer_options(raw, rows)).fit(table.iloc[rows])
        idx = np.flatnonzero(self.usable(raw))
        X = np.zeros((len(table), len(self.transformer.get_feature_names_out())))
        if len(idx):
            X[idx] = self.transformer.transform(table.iloc[idx])
        return X

    def fit_model(self, inputs, rows, y, n_classes, seed):
        return self.model_class()(seed=seed).fit(inputs[rows], y, n_classes)

    def predict_model(self, model, inputs, rows):
        return model.predict_proba(inputs[rows])

    def settings(self) -> dict:
        return {"folds": self.folds, "seed": self.seed}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "transformer": self.transformer.state()[0],
                "models": [m.state()[0] for m in self.models]}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"features.{k}": v for k, v in self.transformer.state()[1].items()}
        for j, m in enumerate(self.models):
            out.update({f"fold{j}.{k}": v for k, v in m.state()[1].items()})
        return out

    def restore(self, config, arrays):
        self.classes_ = list(config["classes"])
        self.transformer = self.transformer_class().from_state(config["transformer"], prefixed(arrays, "features."))
        self.models = [self.model_class().from_state(c, prefixed(arrays, f"fold{j}."))
                       for j, c in enumerate(config["models"])]


class LabsForest(ClassicalStage):
    """Lab values (:class:`oncolab.features.LabFeatures`) -> random forest, cross-fitted -> class log-probabilities."""

    modality: ClassVar[str] = "labs"
    name: ClassVar[str] = "forest"
    model_name: ClassVar[str] = "RandomForest"
    transformer_name: ClassVar[str] = "LabFeatures"

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        return read_table(cohort, "labs")


class GenesSVM(ClassicalStage):
    """Gene counts (:class:`oncolab.features.GeneFeatures`, PCA) -> kernel SVM, cross-fitted -> class log-probabilities.

    Parameters
    ----------
    components : int
        Whitened principal components the SVM reads (at most the fitting patients and genes).
    folds, seed, progress
        As for every cross-fitted stage.
    """

    modality: ClassVar[str] = "genes"
    name: ClassVar[str] = "svm"
    model_name: ClassVar[str] = "KernelSVM"
    transformer_name: ClassVar[str] = "GeneFeatures"

    def __init__(self, components: int = 16, folds: int = 3, seed: int = 0, progress: bool = False):
        super().__init__(folds, seed, progress)
        self.components = int(components)

    @classmethod
    def from_config(cls, config) -> GenesSVM:
        return cls(config.gene_components, config.folds, config.seed, config.progress)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        return GenesPCA.read(cohort, config, on_bad_image)

    def table(self, raw):
        return raw["table"]

    def transformer_options(self, raw, rows):
        k = min(self.components, len(rows), raw["table"].shape[1])
        return {"n_components": k, "whiten": True, "values": raw["values"] or "counts"}

    def prepare(self, raw, rows, targets):
        if targets is None and raw["values"] not in (None, self.transformer.values):
            raise ValueError(f"this cohort's gene values are {raw['values']!r}, but the genes stage was fitted on "
                             f"{self.transformer.values!r} (cohort.json 'gene_values')")
        return super().prepare(raw, rows, targets)

    def settings(self) -> dict:
        return {"components": self.components, **super().settings()}
