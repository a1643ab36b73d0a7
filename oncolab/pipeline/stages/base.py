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
A stage that learns from survival instead (:class:`RiskCrossFittedStage`, chapter 14) is
cross-fitted by the same loop: its folds are stratified by the event indicator and it hands
the fusion one standardised risk per patient.

Adding an encoder is one class (a subclass of :class:`Stage`, :class:`CrossFittedStage` or
:class:`RiskCrossFittedStage`) and one line in the registry of :mod:`oncolab.pipeline.stages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

__all__ = ["CrossFittedStage", "Inputs", "RiskCrossFittedStage", "Stage", "Targets", "check_image", "crossfit_folds",
           "load_torch", "log_proba", "prefixed", "present", "read_images", "subset_raw", "torch_arrays"]


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
    time, event : ndarray (n,) or None
        Follow-up time and event indicator of every patient, for a stage that learns from
        survival (:class:`RiskCrossFittedStage`); None when the cohort has no survival.
    """

    y: np.ndarray
    classes: list[str]
    boxes: np.ndarray | None = None
    time: np.ndarray | None = None
    event: np.ndarray | None = None


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


def read_images(cohort, modality: str, config, describe=None, on_bad_image: str = "raise", check=None):
    """Every patient's image of ``modality`` (one at a time), optionally described, with the usable mask.

    Parameters
    ----------
    cohort : Cohort
        The patients; an image is read only for a patient whose ``presence`` says it exists.
    modality : {"radiograph", "pathology", "mri"}
        Which image (the radiograph; the slide, a region or a pyramid; the MRI volume), read
        with the cohort's ``radiograph``, ``slide`` or ``mri`` accessor.
    config : SystemConfig
        For the progress bar.
    describe : callable, optional
        Applied to each image right after it is read (e.g. tile features), so that only the
        description is kept in memory.
    on_bad_image : {"raise", "mask"}
        A corrupt image raises a ValueError naming the patient, or is masked and noted.
    check : callable, optional
        ``check(image)`` returns the image when it is usable and raises a ValueError or
        TypeError saying why when not. Default: :func:`check_image` of a grayscale radiograph
        or an RGB slide region; required for ``"mri"`` and for a slide pyramid.

    Returns
    -------
    tuple
        ``(values, usable, notes)``: an object array (None where absent), a bool array and
        the notes ``"<patient id>: <modality> masked (<why>)"``.
    """
    accessors = {"radiograph": "radiograph", "pathology": "slide", "mri": "mri"}
    if modality not in accessors:
        raise ValueError(f"cannot read images of modality {modality!r}; expected one of {list(accessors)}")
    if check is None:
        if modality == "mri":
            raise ValueError("reading MRI volumes needs a check= function")
        what, ndim = {"radiograph": ("radiograph", 2), "pathology": ("slide region", 3)}[modality]

        def check(img):
            return check_image(img, what, ndim)
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
    read = getattr(cohort, accessors[modality]) if has else None
    for i in it if has else ():
        if not pres[i]:
            continue
        pid = cohort.ids[i]
        try:
            img = check(read(pid))
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
    target: ClassVar[str | None] = None
    """What a supervised stage learns from: ``"diagnosis"`` or ``"survival"`` (None: no label)."""
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

    The cross-fitting loop (:meth:`fit_transform`) is shared with :class:`RiskCrossFittedStage`;
    what differs between learning a diagnosis and learning survival is in four small methods:
    :meth:`start` (the output width), :meth:`strata` (what the folds are stratified by),
    :meth:`labels` (what one fold model learns from) and :meth:`to_output` (a prediction as
    output columns), plus :meth:`calibrate`.
    """

    supervised = True
    target: ClassVar[str | None] = "diagnosis"

    def __init__(self, folds: int = 3, seed: int = 0, progress: bool = False):
        self.folds, self.seed, self.progress = int(folds), int(seed), bool(progress)
        self.models: list = []
        self.classes_: list[str] = []

    # -- to implement --------------------------------------------------------------------
    def prepare(self, raw, rows: np.ndarray, targets: Targets | None):
        """Inputs of the models for every patient (fitting state learnt on ``rows`` when targets given)."""
        raise NotImplementedError

    def fit_model(self, inputs, rows: np.ndarray, y, n_classes: int, seed: int):
        """One model fitted on the patients ``rows`` with their labels ``y`` (see :meth:`labels`)."""
        raise NotImplementedError

    def predict_model(self, model, inputs, rows: np.ndarray) -> np.ndarray:
        """Class probabilities ``(len(rows), n_classes)``."""
        raise NotImplementedError

    def new_model(self, n_classes: int, config: dict):
        raise NotImplementedError

    def usable(self, raw) -> np.ndarray:
        """True for patients with an input (default: every entry not None)."""
        return present(raw)

    # -- what is learnt ------------------------------------------------------------------
    def start(self, targets: Targets) -> int:
        """Take the output's description from ``targets`` (here the classes); return the output width."""
        self.classes_ = list(targets.classes)
        return len(self.classes_)

    def output_width(self) -> int:
        """Number of output columns."""
        return len(self.classes_)

    def strata(self, targets: Targets) -> np.ndarray:
        """What the folds are stratified by, one integer per patient (here the class)."""
        return np.asarray(targets.y)

    def labels(self, targets: Targets, rows: np.ndarray):
        """The labels one fold model learns from, for the patients ``rows`` (here their classes)."""
        return np.asarray(targets.y)[rows]

    def to_output(self, prediction: np.ndarray) -> np.ndarray:
        """The output columns from a (mean) prediction of the models (here log-probabilities)."""
        return log_proba(prediction)

    def calibrate(self, Z: np.ndarray, rows: np.ndarray) -> None:
        """Adjust the out-of-fold outputs ``Z[rows]`` in place once every fold is fitted (here nothing)."""

    # -- the protocol --------------------------------------------------------------------
    def fit_transform(self, raw, rows: np.ndarray, targets: Targets) -> np.ndarray:
        rows = np.asarray(rows)
        k = self.start(targets)
        inputs = self.prepare(raw, rows, targets)
        Z = np.zeros((len(self.usable(raw)), k))
        self.models = []
        folds = crossfit_folds(rows, self.strata(targets), self.folds, self.seed)
        it = folds
        if self.progress:
            from tqdm.auto import tqdm

            it = tqdm(folds, desc=f"{self.modality} {self.name} folds", leave=False)
        for j, (fit_rows, held) in enumerate(it):
            model = self.fit_model(inputs, fit_rows, self.labels(targets, fit_rows), k, self.seed + j)
            Z[held] = self.to_output(self.predict_model(model, inputs, held))
            self.models.append(model)
        self.calibrate(Z, rows)
        rest = np.setdiff1d(np.flatnonzero(self.usable(raw)), rows)
        if len(rest):
            Z[rest] = self.ensemble(inputs, rest)
        return Z

    def ensemble(self, inputs, rows: np.ndarray) -> np.ndarray:
        """The output for the patients ``rows`` from the fold models' mean prediction."""
        return self.to_output(np.mean([self.predict_model(m, inputs, rows) for m in self.models], axis=0))

    def transform(self, raw) -> np.ndarray:
        if not self.models:
            raise RuntimeError(f"the {self.modality} {self.name!r} stage is not fitted")
        inputs = self.prepare(raw, np.array([], int), None)
        usable = self.usable(raw)
        Z = np.zeros((len(usable), self.output_width()))
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
        self.load_models(config, arrays)

    def load_models(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the fold models of a saved stage (``config["n_models"]`` of them) from ``arrays``."""
        self.models = [load_torch(self.new_fold_model(j, config), prefixed(arrays, f"fold{j}."),
                                  f"{self.modality} {self.name}") for j in range(int(config["n_models"]))]

    def new_fold_model(self, fold: int, config: dict):
        """An unfitted model of the shape of fold ``fold``'s (default: :meth:`new_model`, the same for every fold)."""
        return self.new_model(self.output_width(), config)


class RiskCrossFittedStage(CrossFittedStage):
    """A stage that learns from survival, cross-fitted, handing the fusion one risk per patient.

    Taught in chapter 14. The cross-fitting loop is :class:`CrossFittedStage`'s; here the folds
    are stratified by the event indicator, :meth:`fit_model` receives the fold's survival as a
    structured array (``event``, ``time``; as :meth:`oncolab.data.Cohort.survival_y`) and
    ``n_classes=1``, and :meth:`predict_model` returns one risk per patient (higher = earlier
    event). The output is that risk standardised with the mean and standard deviation of the
    out-of-fold risks of the fitting patients, so that the fusion reads it on a unit scale;
    a new patient gets the fold models' mean risk, standardised alike.
    """

    target: ClassVar[str | None] = "survival"

    def __init__(self, folds: int = 3, seed: int = 0, progress: bool = False):
        super().__init__(folds, seed, progress)
        self.center_, self.scale_ = 0.0, 1.0

    def start(self, targets: Targets) -> int:
        if targets.time is None or targets.event is None:
            raise ValueError(f"the {self.modality} stage {self.name!r} learns from survival (time, event), "
                             "which these patients lack")
        self.center_, self.scale_ = 0.0, 1.0
        return 1

    def output_width(self) -> int:
        return 1

    def strata(self, targets: Targets) -> np.ndarray:
        return np.asarray(targets.event, bool).astype(int)

    def labels(self, targets: Targets, rows: np.ndarray) -> np.ndarray:
        from ...data import survival_array

        return survival_array(np.asarray(targets.event)[rows], np.asarray(targets.time)[rows])

    def to_output(self, prediction: np.ndarray) -> np.ndarray:
        return ((np.asarray(prediction, float).reshape(-1) - self.center_) / self.scale_)[:, None]

    def calibrate(self, Z: np.ndarray, rows: np.ndarray) -> None:
        r = Z[rows, 0]
        sd = float(r.std(ddof=1)) if len(r) > 1 else 0.0
        self.center_, self.scale_ = float(r.mean()), (sd if np.isfinite(sd) and sd > 1e-12 else 1.0)
        Z[rows, 0] = (r - self.center_) / self.scale_

    def feature_names(self) -> list[str]:
        return [f"{self.name} risk"]

    def extra_state(self) -> dict:
        return {"n_models": len(self.models), "risk_center": self.center_, "risk_scale": self.scale_}

    def restore(self, config: dict, arrays: dict[str, np.ndarray]) -> None:
        self.center_, self.scale_ = float(config["risk_center"]), float(config["risk_scale"])
        self.load_models(config, arrays)
