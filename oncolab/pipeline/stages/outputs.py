"""What a cross-fitted image encoder hands the fusion: class log-probabilities or deep features.

Taught in chapter 12 ("The complete system").

A supervised stage is cross-fitted (:class:`~oncolab.pipeline.stages.CrossFittedStage`): every
fitting patient gets the output of the fold model that did not see it. When the fold models
are neural encoders, :class:`CrossFittedEncoder` lets the stage hand the fusion either

* ``logp``: class log-probabilities (a training patient gets the output of the fold model
  that did not see it, a new patient the fold models' average), or
* ``features``: the layer the classification head reads (the penultimate layer,
  :func:`oncolab.vision.extract_features` with ``pre_logits=True``), reduced by a PCA to
  ``components`` values of unit variance. The fold models are different networks, so their
  features have different coordinates: each fold model gets its own PCA, fitted on its own
  fitting patients, and is then rotated onto the first fold model's components by orthogonal
  Procrustes (:func:`align_rotation`) on the training patients (a rotation fitted on
  features alone, no label read), so that a column means the same whichever fold model
  produced it. A training patient gets the aligned features of the fold model that did not
  see it, a new patient the mean of every fold model's aligned features.

A stage gains the two outputs by deriving from :class:`CrossFittedEncoder` (first among its
bases) and passing ``output``, ``components`` and ``pretrained`` to its constructor.
"""

from __future__ import annotations

import numpy as np

from .base import CrossFittedStage, crossfit_folds, prefixed

__all__ = ["OUTPUTS", "CrossFittedEncoder", "align_rotation"]

OUTPUTS = ("logp", "features")
"""What a :class:`CrossFittedEncoder` hands the fusion: class log-probabilities or reduced features."""


def align_rotation(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The orthogonal matrix ``R`` minimising ``||source @ R - target||`` (orthogonal Procrustes).

    Parameters
    ----------
    source, target : ndarray (n, k)
        The same ``n`` patients in two coordinate systems of ``k`` columns.

    Returns
    -------
    ndarray (k, k)
        ``R = U V^T`` from the SVD ``source^T target = U S V^T`` (Schönemann 1966).
    """
    source, target = np.asarray(source, float), np.asarray(target, float)
    if source.shape != target.shape or source.ndim != 2:
        raise ValueError(f"source and target must be 2-D arrays of one shape, got {source.shape} and {target.shape}")
    u, _, vt = np.linalg.svd(source.T @ target)
    return u @ vt


class CrossFittedEncoder(CrossFittedStage):
    """A cross-fitted stage whose models are image encoders: class log-probabilities or deep features.

    Subclasses (the deep stages of :mod:`oncolab.pipeline.stages.deep`) implement the
    :class:`CrossFittedStage` hooks;
    :meth:`embed_model` defaults to the penultimate layer of an image classifier applied to
    ``inputs[rows]``. See the module docstring for the ``features`` output.

    Parameters
    ----------
    *args, **kwargs
        The settings of the stage it is mixed into.
    output : {"logp", "features"}
        What the fusion receives.
    components : int
        PCA components of the ``features`` output.
    pretrained : bool
        Start the encoders from ImageNet weights (needs the hub).
    """

    def __init__(self, *args, output: str = "logp", components: int = 8, pretrained: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.set_output(output, components, pretrained)
        self.reducers_: list[tuple] = []

    def set_output(self, output: str, components: int, pretrained: bool) -> None:
        """Check and set the output settings (see the class docstring)."""
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {list(OUTPUTS)}, got {output!r}")
        if isinstance(components, bool) or not isinstance(components, int | np.integer) or components < 1:
            raise ValueError(f"components must be a positive integer, got {components!r}")
        if not isinstance(pretrained, bool):
            raise ValueError(f"pretrained must be True or False, got {pretrained!r}")
        self.output, self.components, self.pretrained = output, int(components), pretrained

    @classmethod
    def from_config(cls, config) -> CrossFittedEncoder:
        stage = super().from_config(config)
        stage.set_output(config.stage_output, config.feature_components, config.pretrained)
        return stage

    # -- the features of one fold model --------------------------------------------------
    def embed_model(self, model, inputs, rows: np.ndarray) -> np.ndarray:
        """Penultimate-layer features ``(len(rows), d)`` of ``model`` for the patients ``rows``."""
        from ...vision.encoders import extract_features

        return extract_features(model, inputs[rows], batch_size=256, progress=False, pre_logits=True)

    def _reduce(self, j: int, F: np.ndarray) -> np.ndarray:
        pca, scale, rotation = self.reducers_[j]
        return (pca.transform(F) / scale) @ rotation

    # -- the protocol ----------------------------------------------------------------------
    def fit_transform(self, raw, rows: np.ndarray, targets) -> np.ndarray:
        Z = super().fit_transform(raw, rows, targets)
        if self.output == "logp":
            return Z
        from ...omics import PCA

        rows = np.asarray(rows)
        inputs = self.prepare(raw, np.array([], int), None)   # the fitted preparation (no refit)
        idx = np.flatnonzero(self.usable(raw))
        at = {int(p): i for i, p in enumerate(idx)}
        feats = [self.embed_model(m, inputs, idx) for m in self.models]
        folds = crossfit_folds(rows, self.strata(targets), self.folds, self.seed)   # the folds of the models
        k = min(self.components, feats[0].shape[1], *(len(f) - 1 for f, _ in folds))
        train = [at[int(r)] for r in rows]
        self.reducers_, scores = [], []
        for (fit_rows, _), F in zip(folds, feats):
            pca = PCA(k).fit(F[[at[int(r)] for r in fit_rows]])
            scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
            s = pca.transform(F) / scale
            rotation = np.eye(k) if not scores else align_rotation(s[train], scores[0][train])
            self.reducers_.append((pca, scale, rotation))
            scores.append(s @ rotation)
        out = np.zeros((len(self.usable(raw)), k))
        for (_, held), s in zip(folds, scores):
            out[held] = s[[at[int(h)] for h in held]]
        rest = np.setdiff1d(idx, rows)
        if len(rest):
            out[rest] = np.mean([s[[at[int(r)] for r in rest]] for s in scores], axis=0)
        return out

    def transform(self, raw) -> np.ndarray:
        if self.output == "logp":
            return super().transform(raw)
        if not self.reducers_:
            raise RuntimeError(f"the {self.modality} {self.name!r} stage is not fitted")
        inputs = self.prepare(raw, np.array([], int), None)
        usable = self.usable(raw)
        idx = np.flatnonzero(usable)
        Z = np.zeros((len(usable), len(self.reducers_[0][1])))
        if len(idx):
            Z[idx] = np.mean([self._reduce(j, self.embed_model(m, inputs, idx)) for j, m in enumerate(self.models)],
                             axis=0)
        return Z

    def feature_names(self) -> list[str]:
        if self.output == "logp":
            return super().feature_names()
        return [f"{self.name} feature PC{k + 1}" for k in range(len(self.reducers_[0][1]))]

    def settings(self) -> dict:
        return {**super().settings(), "output": self.output, "components": self.components,
                "pretrained": self.pretrained}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "reducers": [pca.state()[0] for pca, _, _ in self.reducers_]}

    def arrays(self) -> dict[str, np.ndarray]:
        out = super().arrays()
        for j, (pca, scale, rotation) in enumerate(self.reducers_):
            out.update({f"reducer{j}.pca.{k}": v for k, v in pca.state()[1].items()})
            out[f"reducer{j}.scale"], out[f"reducer{j}.rotation"] = scale, rotation
        return out

    def restore(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        from ...omics import PCA

        super().restore(config, arrays)
        self.reducers_ = []
        for j, pc in enumerate(config.get("reducers", [])):
            a = prefixed(arrays, f"reducer{j}.")
            self.reducers_.append((PCA.from_state(pc, prefixed(a, "pca.")), a["scale"], a["rotation"]))
