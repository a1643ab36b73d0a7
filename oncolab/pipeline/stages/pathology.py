"""Pathology stages: the slide region described by hand-made measurements or attention-MIL.

Taught in chapter 12 ("The complete system"); the pieces are built in chapter 5 (tiles,
stains, attention-MIL) and chapter 10 (the nuclear measurements).

* ``measurements``: :func:`oncolab.features.nuclear_measurements` of the region (nine
  numbers from colour deconvolution), standardised with the training patients' mean and sd;
* ``mil``: the region's tissue tiles, each described by :func:`oncolab.vision.slide_tile_features`
  -> gated attention-MIL trained on the diagnosis, cross-fitted -> class log-probabilities,
  and one attention weight per tile (the report draws them).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from .base import CrossFittedStage, Stage, present, read_images

__all__ = ["PathologyMIL", "PathologyMeasurements", "read_slides", "read_tiled_slides"]


def read_slides(cohort, config, describe, on_bad_image: str = "raise"):
    """``describe(region)`` for every patient's slide region (object array), the usable mask and notes."""
    return read_images(cohort, "pathology", config, describe, on_bad_image)


def read_tiled_slides(cohort, config, describe, names: tuple[str, str], on_bad_image: str = "raise"):
    """:func:`read_slides` for a ``describe`` that returns a pair (e.g. the tiles and their coordinates).

    Returns ``{names[0]: object array, names[1]: object array}`` (None where no region), the
    usable mask and the notes.
    """
    vals, usable, notes = read_slides(cohort, config, describe, on_bad_image)
    first, second = np.empty(len(vals), dtype=object), np.empty(len(vals), dtype=object)
    for i in np.flatnonzero(usable):
        first[i], second[i] = vals[i]
    return {names[0]: first, names[1]: second}, usable, notes


class PathologyMeasurements(Stage):
    """Nine nuclear measurements of the slide region, standardised (no label is used)."""

    modality: ClassVar[str] = "pathology"
    name: ClassVar[str] = "measurements"

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        from ...features import NUCLEAR_FEATURES, nuclear_measurements

        vals, usable, notes = read_slides(cohort, config, nuclear_measurements, on_bad_image)
        X = np.full((len(vals), len(NUCLEAR_FEATURES)), np.nan)
        for i in np.flatnonzero(usable):
            X[i] = vals[i]
        return X, usable, notes

    def fit_transform(self, raw, rows, targets):
        fit = np.asarray(raw, float)[rows]
        self.mean_ = np.nanmean(fit, 0)
        sd = np.nanstd(fit, 0, ddof=1)
        self.std_ = np.where(np.isfinite(sd) & (sd > 1e-12), sd, 1.0)
        return self.transform(raw)

    def transform(self, raw):
        return np.nan_to_num((np.asarray(raw, float) - self.mean_) / self.std_, nan=0.0)

    def feature_names(self) -> list[str]:
        from ...features import NUCLEAR_FEATURES

        return list(NUCLEAR_FEATURES)

    def arrays(self):
        return {"mean": self.mean_, "std": self.std_}

    def restore(self, config, arrays):
        self.mean_, self.std_ = arrays["mean"], arrays["std"]


class PathologyMIL(CrossFittedStage):
    """Tile features -> gated attention-MIL (cross-fitted) -> class log-probabilities."""

    modality: ClassVar[str] = "pathology"
    name: ClassVar[str] = "mil"

    def __init__(self, epochs: int = 40, folds: int = 3, hidden_dim: int = 32, attention_dim: int = 16,
                 tile_size: int = 64, seed: int = 0, progress: bool = False):
        super().__init__(folds, seed, progress)
        self.epochs, self.hidden_dim, self.attention_dim = int(epochs), int(hidden_dim), int(attention_dim)
        self.tile_size = int(tile_size)

    @classmethod
    def from_config(cls, config) -> PathologyMIL:
        return cls(config.mil_epochs, config.folds, tile_size=config.tile_size, seed=config.seed,
                   progress=config.progress)

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise"):
        """Every patient's tile bag ``{"bags": features (N, F), "coords": corners (N, 2)}``."""
        from ...vision.pathology import slide_tile_features

        def bag(region):
            b = slide_tile_features(region, tile_size=config.tile_size, min_tissue=0.5)
            return b.features, np.asarray(b.tiles.coords)

        return read_tiled_slides(cohort, config, bag, ("bags", "coords"), on_bad_image)

    def usable(self, raw) -> np.ndarray:
        return present(raw["bags"])

    def prepare(self, raw, rows, targets):
        bags = raw["bags"]
        if targets is not None:
            tiles = np.concatenate([bags[i] for i in rows])
            self.mean_ = tiles.mean(0)
            sd = tiles.std(0)
            self.std_ = np.where(sd > 1e-12, sd, 1.0)
        return [None if b is None else ((b - self.mean_) / self.std_).astype(np.float32) for b in bags]

    def new_model(self, n_classes: int, config: dict | None = None):
        from ...vision.mil import GatedAttentionMIL

        return GatedAttentionMIL(len(self.mean_), n_classes, self.hidden_dim, self.attention_dim)

    def fit_model(self, inputs, rows, y, n_classes, seed):
        from ...vision.mil import fit_mil

        return fit_mil([inputs[i] for i in rows], y, n_classes=n_classes, epochs=self.epochs,
                       hidden_dim=self.hidden_dim, attention_dim=self.attention_dim, seed=seed)

    def predict_model(self, model, inputs, rows):
        from ...vision.mil import predict_mil

        return predict_mil(model, [inputs[i] for i in rows])[0]

    def attention(self, raw: dict, position: int) -> tuple[np.ndarray, np.ndarray, int]:
        """One patient's tile attention (mean over the fold models), tile corners and tile size."""
        from ...vision.mil import predict_mil

        bag = raw["bags"][position]
        if bag is None:
            raise ValueError(f"patient at position {position} has no slide")
        x = [((bag - self.mean_) / self.std_).astype(np.float32)]
        att = np.mean([predict_mil(m, x)[1][0] for m in self.models], axis=0)
        return att, raw["coords"][position], self.tile_size

    def settings(self) -> dict:
        return {"epochs": self.epochs, "folds": self.folds, "hidden_dim": self.hidden_dim,
                "attention_dim": self.attention_dim, "tile_size": self.tile_size, "seed": self.seed}

    def arrays(self):
        return {**super().arrays(), "mean": self.mean_, "std": self.std_}

    def restore(self, config, arrays):
        self.mean_, self.std_ = arrays["mean"], arrays["std"]
        super().restore(config, arrays)
