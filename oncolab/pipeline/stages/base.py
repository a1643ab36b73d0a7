"""The stage protocol: what every stage of the complete system does, and cross-fitting.

Taught in chapter 12 ("The complete system").

A *stage* turns one modality's raw inputs into a small matrix with named columns that the
fusion model (chapter 10) reads. Every stage, hand-made or learned, follows one protocol:

``read(cohort, config, on_bad_image)`` (a class method)
    the stage's raw inputs for every patient of a cohort, an :class:`Inputs` entry. It reads
    the patients' *data* only: images, tables of measurements, never a label table, except
    where the configuration names an annotation on purpose (the ``annotated`` detector).
``fit_transform(raw, rows, targets)``
    fit on the positions ``rows`` (training patients who have the modality) and return the
    output of *every* patient. ``targets`` holds the labels of the fitting patients
    (:class:`Targets`); a stage may read them only for ``rows``.
``transform(raw)``
    the output for any patients, from their raw inputs alone.
``feature_names()``
    one name per output column.
``state()`` / ``from_state(config, arrays)``
    a JSON-able dict plus a dict of NumPy arrays, and back; the system stores them in
    ``config.json`` and ``model.safetensors`` (no pickle: loading runs no code).

A *supervised* stage (one that learns from the diagnosis) is **cross-fitted**, and the
protocol does it, not each stage: :class:`CrossFittedStage` splits the fitting patients into
``folds`` parts, fits one model per part on the other parts, and hands every fitting patient
the output of the model that did not see it (Wolpert's stacking, 1992). The fusion model is
trained on these out-of-fold outputs; a new patient gets the average of the fold models.
Without it the fusion would learn from memorised, over-confident outputs for exactly the
patients it is trained on. A supervised stage only says how to fit and apply one model.

Adding an encoder is one class (a subclass of :class:`Stage` or :class:`CrossFittedStage`)
and one line in the registry of :mod:`oncolab.pipeline.stages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["CrossFittedStage", "Inputs", "Stage", "Targets", "check_image", "crossfit_folds", "load_torch", "log_proba",
           "prefixed", "present", "read_images", "subset_raw", "torch_arrays"]


@dataclass
class Targets:
    """The labels of a cohort, given to stages in ``fit`` only.

    Parameters
    ----------
    y : ndarray of int
        Class of every patient (position in ``classes``).
    classes : list of str
        The class names.
    boxes : ndarray (n, 4) or None
        Annotated lesion boxes (NaN where none), for training a detector.
    """

    y: np.ndarray
    classes: list[str]
    boxes: np.ndarray | None = None


@dataclass
class Inputs:
    """Raw inputs of every modality for the patients of one cohort.

    Attributes
    ----------
    raw : dict
        ``{modality: raw inputs}`` in the format the modality's stage reads.
    presence : DataFrame
        Patients x modalities, True where the modality can be used for that patient.
    notes : list of str
        ``"<patient id>: <what happened>"`` (an image masked, a value converted, ...).
    """

    raw: dict[str, Any]
    presence: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def subset(self, positions) -> Inputs:
        """The rows ``positions`` (same order as :meth:`oncolab.data.Cohort.subset`)."""
        pos = np.asarray(positions)
        ids = set(self.presence.index[pos])
        return Inputs({m: subset_raw(v, pos) for m, v in self.raw.items()}, self.presence.iloc[pos],
                      [n for n in self.notes if n.split(":")[0] in ids])


def subset_raw(value, positions):
    """Rows ``positions`` of a raw input (DataFrame, array, or dict of them; scalars kept)."""
    if isinstance(value, pd.DataFrame):
        return value.iloc[positions]
    if isinstance(value, dict):
        return {k: subset_raw(v, positions) for k, v in value.items()}
    if value is None or np.isscalar(value):
        return value
    return np.asarray(value)[positions]


def check_image(img, what: str, ndim: int) -> np.ndarray:
    """``img`` as an array if it is a finite image of ``ndim`` dimensions (3 channels when 3-D).

    Parameters
    ----------
    img : array-like
        The image.
    what : str
        What it is, for the error message.
    ndim : int
        2 (grayscale) or 3 (RGB).

    Returns
    -------
    ndarray
    """
    img = np.asarray(img)
    if img.ndim != ndim or img.size == 0 or not np.isfinite(img.astype(float)).all():
        shape = "(H, W)" if ndim == 2 else "(H, W, 3)"
        raise ValueError(f"{what} must be a finite {shape} image, got shape {img.shape}")
    if ndim == 3 and img.shape[2] != 3:
        raise ValueError(f"{what} must have 3 colour channels, got shape {img.shape}")
    return img


def read_images(cohort, modality: str, config, describe=None, on_bad_image: str = "raise"):
    """Every patient's image of ``modality`` (one at a time), optionally described, with the usable mask.

    Parameters
    ----------
    cohort : Cohort
        The patients; an image is read only for a patient whose ``presence`` says it exists.
    modality : {"radiograph", "pathology"}
        Which image (the radiograph, or the slide region).
    config : SystemConfig
        For the progress bar.
    describe : callable, optional
        Applied to each image right after it is read (e.g. tile features), so that only the
        description is kept in memory.
    on_bad_image : {"raise", "mask"}
        A corrupt image raises a ValueError naming the patient, or is masked and noted.

    Returns
    -------
    tuple
        ``(values, usable, notes)``: an object array (None where absent), a bool array and
        the notes ``"<patient id>: <modality> masked (<why>)"``.
    """
    what, ndim, read = {"radiograph": ("radiograph", 2, cohort.radiograph),
                        "pathology": ("slide region", 3, cohort.slide)}[modality]
    n = len(cohort)
    out = np.empty(n, dtype=object)
    usable = np.zeros(n, bool)
    notes: list[str] = []
    has = cohort.images is not None and modality in cohort.modalities
    pres = cohort.presence[modality].to_numpy(bool) if modality in cohort.presence else np.ones(n, bool)
    it = range(n)
    if has and config.progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=f"{modality} images", leave=False)
    for i in it if has else ():
        if not pres[i]:
            continue
        pid = cohort.ids[i]
        try:
            img = check_image(read(pid), what, ndim)
            out[i] = img if describe is None else describe(img)
            usable[i] = True
        except (ValueError, TypeError, OSError) as e:
            if on_bad_image == "raise":
                raise ValueError(f"patient {pid}: bad {modality} image ({e})") from e
            notes.append(f"{pid}: {modality} masked ({e})")
    return out, usable, notes


def present(values) -> np.ndarray:
    """True where an entry of an object array is not None."""
    return np.array([v is not None for v in values], bool)


def log_proba(p: np.ndarray) -> np.ndarray:
    """Class log-probabilities, clipped at ``log(1e-6)`` so that a confident model stays finite."""
    return np.log(np.clip(p, 1e-6, 1.0))


def crossfit_folds(rows: np.ndarray, y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified ``(fit_positions, held_out_positions)`` pairs over the positions ``rows``.

    Parameters
    ----------
    rows : array of int
        Positions of the fitting patients.
    y : array of int
        Class of every patient (indexed by position).
    k : int
        Number of folds (at least 2).
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of (ndarray, ndarray)
        Fitting and held-out positions of each fold.
    """
    from sklearn.model_selection import StratifiedKFold

    rows = np.asarray(rows)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"folds must be an integer >= 2, got {k!r}")
    counts = np.bincount(np.asarray(y)[rows])
    if len(rows) < 2 * k or counts[counts > 0].min() < k:
        raise ValueError(f"cross-fitting with {k} folds needs at least {k} patients of every class among "
                         f"the {len(rows)} fitting patients (counts {counts.tolist()})")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [(rows[a], rows[b]) for a, b in skf.split(np.zeros(len(rows)), np.asarray(y)[rows])]


class Stage:
    """Base class of every stage (see the module docstring for the protocol).

    Subclasses set ``modality`` and ``name`` (the registry key), and take their settings from
    :class:`oncolab.pipeline.SystemConfig` in ``from_config``.
    """

    modality: ClassVar[str] = ""
    name: ClassVar[str] = ""
    supervised: ClassVar[bool] = False
    reads_labels_at_prediction: ClassVar[bool] = False
    """True only for a stage that reads an annotation of the patients it predicts (named in the config)."""

    @classmethod
    def from_config(cls, config) -> Stage:
        """A new, unfitted stage with the settings of ``config`` (a SystemConfig)."""
        return cls()

    @classmethod
    def read(cls, cohort, config, on_bad_image: str = "raise") -> tuple[Any, np.ndarray, list[str]]:
        """Raw inputs of every patient, the usable-mask ``(n,)`` and notes (see the module docstring)."""
        raise NotImplementedError

    def fit_transform(self, raw, rows: np.ndarray, targets: Targets) -> np.ndarray:
        raise NotImplementedError

    def transform(self, raw) -> np.ndarray:
        raise NotImplementedError

    def feature_names(self) -> list[str]:
        raise NotImplementedError

    def notes(self) -> list[tuple[int, str]]:
        """``(position, note)`` pairs of the last ``fit_transform``/``transform`` (e.g. no lesion found)."""
        return list(getattr(self, "notes_", []))

    def settings(self) -> dict:
        """The JSON-able settings this stage was built with."""
        return {}

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted numbers of this stage."""
        return {}

    def restore(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        """Set the fitted numbers from ``state()``'s output (settings are already in place)."""

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(config, arrays)``: the stage's registry key, settings and fitted state."""
        return ({"modality": self.modality, "name": self.name, "settings": self.settings(), **self.extra_state()},
                self.arrays())

    def extra_state(self) -> dict:
        """JSON-able fitted state besides the arrays (vocabularies, names)."""
        return {}

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> Stage:
        """A fitted stage from ``state()``'s output."""
        if config.get("modality") != cls.modality or config.get("name") != cls.name:
            raise ValueError(f"saved stage {config.get('modality')!r}/{config.get('name')!r} is not "
                             f"{cls.modality!r}/{cls.name!r}")
        stage = cls(**config.get("settings", {}))
        stage.restore(config, arrays)
        return stage


def prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose key starts with ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def torch_arrays(model) -> dict[str, np.ndarray]:
    """A torch module's weights as NumPy arrays."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def load_torch(model, arrays: dict[str, np.ndarray], what: str):
    """Put ``arrays`` into ``model`` (strict); a mismatch raises a ValueError naming ``what``."""
    import torch

    try:
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}, strict=True)
    except RuntimeError as e:
        raise ValueError(f"the saved {what} weights do not fit its configuration: {str(e).splitlines()[0]}") from e
    model.eval()
    return model


class CrossFittedStage(Stage):
    """A supervised stage whose per-patient output is class log-probabilities, cross-fitted.

    Subclasses implement :meth:`prepare` (fitted, unsupervised preprocessing shared by all
    folds, e.g. a detector or a scaler), :meth:`fit_model`, :meth:`predict_model` and
    :meth:`new_model` (an unfitted model for loading), and list their output classes.
    """

    supervised = True

    def __init__(self, folds: int = 3, seed: int = 0, progress: bool = False):
        self.folds, self.seed, self.progress = int(folds), int(seed), bool(progress)
        self.models: list = []
        self.classes_: list[str] = []

    # -- to implement --------------------------------------------------------------------
    def prepare(self, raw, rows: np.ndarray, targets: Targets | None):
        """Inputs of the models for every patient (fitting state learnt on ``rows`` when targets given)."""
        raise NotImplementedError

    def fit_model(self, inputs, rows: np.ndarray, y: np.ndarray, n_classes: int, seed: int):
        raise NotImplementedError

    def predict_model(self, model, inputs, rows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(len(rows), n_classes)``."""
        raise NotImplementedError

    def new_model(self, n_classes: int, config: dict):
        raise NotImplementedError

    def usable(self, raw) -> np.ndarray:
        """True for patients with an input (default: every entry not None)."""
        return present(raw)

    # -- the protocol --------------------------------------------------------------------
    def fit_transform(self, raw, rows: np.ndarray, targets: Targets) -> np.ndarray:
        rows = np.asarray(rows)
        self.classes_ = list(targets.classes)
        k = len(self.classes_)
        inputs = self.prepare(raw, rows, targets)
        Z = np.zeros((len(self.usable(raw)), k))
        self.models = []
        folds = crossfit_folds(rows, targets.y, self.folds, self.seed)
        it = folds
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(folds, desc=f"{self.modality} {self.name} folds", leave=False)
        for j, (fit_rows, held) in enumerate(it):
            model = self.fit_model(inputs, fit_rows, targets.y[fit_rows], k, self.seed + j)
            Z[held] = log_proba(self.predict_model(model, inputs, held))
            self.models.append(model)
        rest = np.setdiff1d(np.flatnonzero(self.usable(raw)), rows)
        if len(rest):
            Z[rest] = self.ensemble(inputs, rest)
        return Z

    def ensemble(self, inputs, rows: np.ndarray) -> np.ndarray:
        """Log of the fold models' mean probabilities for the patients ``rows``."""
        return log_proba(np.mean([self.predict_model(m, inputs, rows) for m in self.models], axis=0))

    def transform(self, raw) -> np.ndarray:
        if not self.models:
            raise RuntimeError(f"the {self.modality} {self.name!r} stage is not fitted")
        inputs = self.prepare(raw, np.array([], int), None)
        usable = self.usable(raw)
        Z = np.zeros((len(usable), len(self.classes_)))
        idx = np.flatnonzero(usable)
        if len(idx):
            Z[idx] = self.ensemble(inputs, idx)
        return Z

    def feature_names(self) -> list[str]:
        return [f"{self.name} log p({c})" for c in self.classes_]

    def arrays(self) -> dict[str, np.ndarray]:
        out = {}
        for j, m in enumerate(self.models):
            out.update({f"fold{j}.{k}": v for k, v in torch_arrays(m).items()})
        return out

    def extra_state(self) -> dict:
        return {"classes": self.classes_, "n_models": len(self.models)}

    def restore(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        self.classes_ = list(config["classes"])
        self.models = [load_torch(self.new_model(len(self.classes_), config), prefixed(arrays, f"fold{j}."),
                                  f"{self.modality} {self.name}") for j in range(int(config["n_models"]))]
